/** RELAY_ADMIN_TOKEN / admin_token: at least 32 characters, refused at start otherwise, never shown. */
import { describeConfig } from '../../../src/relay/config/describe.js';
import { loadConfig, parseConfigText } from '../../../src/relay/config/index.js';

const QUICK = { SAUCE_WEBHOOK_SECRET: 'whsec-console-test' };
const TOKEN = 'a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0';
const ROUTE = 'routes:\n  - name: web\n    secret: s3cr3t\n    repo: acme/web\n';

test('unset: no console', () => {
  const r = loadConfig(QUICK);
  expect(r).toMatchObject({ ok: true, config: { adminToken: null } });
  if (r.ok) expect(describeConfig(r.config)).toMatchObject({ console: 'off' });
});

test('from the environment or the file (which wins), trimmed', () => {
  const r = loadConfig({ ...QUICK, RELAY_ADMIN_TOKEN: `  ${TOKEN} ` });
  expect(r).toMatchObject({ ok: true, config: { adminToken: TOKEN } });
  if (r.ok) {
    expect(describeConfig(r.config)).toMatchObject({ console: 'on (admin token)' });
    expect(JSON.stringify(describeConfig(r.config))).not.toContain(TOKEN);
  }
  const file = parseConfigText(`admin_token: \${ADMIN}\n${ROUTE}`, { ADMIN: TOKEN, RELAY_ADMIN_TOKEN: 'x'.repeat(40) }, 'relay.yaml');
  expect(file).toMatchObject({ ok: true, config: { adminToken: TOKEN } });
});

test.each([
  ['too short', 'short-token-31-characters-long!', /^RELAY_ADMIN_TOKEN: is 31 characters, too short to guard the console: use at least 32 random characters/],
  ['blank', '   ', /^RELAY_ADMIN_TOKEN: is blank: put the delivery console token in it/],
])('%s: refused at start, without showing it', (_name, value, message) => {
  const r = loadConfig({ ...QUICK, RELAY_ADMIN_TOKEN: value });
  expect(r.ok).toBe(false);
  if (r.ok) return;
  expect(r.errors).toEqual([expect.stringMatching(message)]);
  if (value.trim() !== '') expect(r.errors.join('\n')).not.toContain(value);
});

test('a short admin_token in the file names the file field', () => {
  const r = parseConfigText(`admin_token: too-short\n${ROUTE}`, {}, 'relay.yaml');
  expect(r).toMatchObject({ ok: false, errors: [expect.stringMatching(/^relay\.yaml: admin_token: is 9 characters, too short/)] });
  if (!r.ok) expect(r.errors.join('\n')).not.toContain('too-short');
});
