import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeConfig, loadConfig, parseConfigText, parseDuration, parseSize, withSecrets } from '../../src/relay/config.js';

const TOKEN = 'a'.repeat(40);

function errorsOf(text: string, env: Record<string, string> = {}): string[] {
  const r = parseConfigText(text, env, 'relay.yaml');
  if (r.ok) throw new Error('expected errors');
  return [...r.errors];
}

describe('units', () => {
  test.each([
    ['500ms', 500],
    ['2s', 2000],
    ['10m', 600_000],
    ['3h', 10_800_000],
    ['7d', 604_800_000],
    ['0', 0],
    ['1500', 1500],
    [250, 250],
  ] as const)('duration %s', (v, ms) => expect(parseDuration(v)).toBe(ms));
  test.each(['', 'abc', '-1s', '2 weeks', -5])('bad duration %s', (v) => expect(parseDuration(v)).toBeNull());
  test.each([
    ['1MiB', 1_048_576],
    ['512KiB', 524_288],
    ['1mb', 1_000_000],
    ['65536', 65_536],
  ] as const)('size %s', (v, b) => expect(parseSize(v)).toBe(b));
  test.each(['', '0', '1 parsec', '-1'])('bad size %s', (v) => expect(parseSize(v)).toBeNull());
});

describe('quick mode (env)', () => {
  test('zero config: dry-run, defaults, a secret to generate', () => {
    const r = loadConfig({});
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const c = r.config;
    expect(c).toMatchObject({
      mode: 'quick',
      port: 8080,
      dataDir: '.relay-data',
      bodyLimitBytes: 262_144,
      dedupWindowMs: 7 * 86_400_000,
      groupWindowMs: 2000,
      dryRun: true,
      needsGeneratedSecret: true,
    });
    expect(c.routes).toHaveLength(1);
    expect(c.routes[0]).toMatchObject({ name: 'default', path: '/webhook', eventType: 'saucelabs', region: 'us-west-1', secrets: [] });
    expect(r.warnings.join(' ')).toMatch(/dry-run/);
    expect(withSecrets(c, ['x']).routes[0]!.secrets).toEqual(['x']);
  });

  test('everything from env', () => {
    const r = loadConfig({
      SAUCE_WEBHOOK_SECRET: 'new-secret, old-secret ,',
      GITHUB_TOKEN: 'ghs_x',
      GITHUB_REPOSITORY: 'acme/web',
      GITHUB_API_URL: 'http://127.0.0.1:9999',
      RELAY_DATA_DIR: '/tmp/relay',
      PORT: '9000',
      RELAY_BODY_LIMIT: '256KiB',
      RELAY_DEDUP_WINDOW: '1h',
      RELAY_GROUP_WINDOW: '0',
      SAUCE_REGION: 'eu-central-1',
    });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.config).toMatchObject({
      port: 9000,
      dataDir: '/tmp/relay',
      bodyLimitBytes: 262_144,
      dedupWindowMs: 3_600_000,
      groupWindowMs: 0,
      dryRun: false,
      needsGeneratedSecret: false,
      github: { token: 'ghs_x', apiUrl: 'http://127.0.0.1:9999' },
    });
    expect(r.config.routes[0]).toMatchObject({ secrets: ['new-secret', 'old-secret'], repo: 'acme/web', region: 'eu-central-1' });
  });

  test('GitHub App credentials; \\n in the key is unescaped', () => {
    const r = loadConfig({ GITHUB_APP_ID: '123', GITHUB_APP_PRIVATE_KEY: 'line1\\nline2', GITHUB_REPOSITORY: 'acme/web', SAUCE_WEBHOOK_SECRET: 's' });
    expect(r.ok && r.config.github.privateKey).toBe('line1\nline2');
    expect(r.ok && r.config.dryRun).toBe(false);
  });

  test.each([
    [{ PORT: 'eighty' }, /^PORT: .*port number/],
    [{ PORT: '70000' }, /^PORT:/],
    [{ RELAY_BODY_LIMIT: 'huge' }, /^RELAY_BODY_LIMIT: .*1MiB/],
    [{ RELAY_DEDUP_WINDOW: 'a week' }, /^RELAY_DEDUP_WINDOW: .*7d/],
    [{ GITHUB_REPOSITORY: 'not a repo' }, /^GITHUB_REPOSITORY: .*owner\/repo/],
    [{ GITHUB_TOKEN: 't' }, /^GITHUB_REPOSITORY: set the target/],
    [{ GITHUB_APP_ID: '1', GITHUB_REPOSITORY: 'a/b' }, /^GITHUB_APP_PRIVATE_KEY: /],
    [{ GITHUB_API_URL: 'nope' }, /^GITHUB_API_URL: .*https:\/\//],
    [{ SAUCE_REGION: 'mars-1' }, /^SAUCE_REGION: .*us-west-1/],
    [{ RELAY_CONFIG: '/definitely/not/here.yaml' }, /^RELAY_CONFIG: cannot read .*ENOENT/],
    [{ SAUCE_USERNAME: 'ci-reader' }, /^SAUCE_ACCESS_KEY: Visual refresh needs both/],
    [{ SAUCE_ACCESS_KEY: 'k' }, /^SAUCE_USERNAME: Visual refresh needs both/],
    [{ RELAY_VISUAL_REFRESH_INTERVAL: 'often' }, /^RELAY_VISUAL_REFRESH_INTERVAL: .*10m/],
    [{ RELAY_VISUAL_REFRESH_FOR: 'forever' }, /^RELAY_VISUAL_REFRESH_FOR: .*7d/],
    [{ SAUCE_API_URL: 'api.saucelabs.com' }, /^SAUCE_API_URL: .*https:\/\/api\.eu-central-1/],
    [{ SAUCE_API_URL: 'https://user:pw@api.saucelabs.com' }, /^SAUCE_API_URL: /],
  ] as const)('error names the variable and the fix: %j', (env, pattern) => {
    const r = loadConfig(env);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors.some((e) => pattern.test(e))).toBe(true);
  });
});

describe('Visual refresh settings (env, both modes)', () => {
  const creds = { SAUCE_USERNAME: 'ci-reader', SAUCE_ACCESS_KEY: 'key-1234567890' };
  test('off without Sauce credentials', () => {
    const r = loadConfig({});
    expect(r.ok && r.config.visualRefresh).toBeNull();
  });
  test('on with both; defaults every 60 s for 3 days, API host by data center', () => {
    const r = loadConfig(creds);
    expect(r.ok && r.config.visualRefresh).toEqual({
      username: 'ci-reader',
      accessKey: 'key-1234567890',
      intervalMs: 60_000,
      watchForMs: 3 * 86_400_000,
      apiUrl: null,
    });
    const printed = JSON.stringify(r.ok && describeConfig(r.config));
    expect(printed).toContain('"intervalMs":60000');
    expect(printed).not.toContain('key-1234567890');
  });
  test('interval, period and API URL from env; an interval of 0 turns it off', () => {
    const r = loadConfig({ ...creds, RELAY_VISUAL_REFRESH_INTERVAL: '30s', RELAY_VISUAL_REFRESH_FOR: '1d', SAUCE_API_URL: 'https://proxy.example.com/sauce' });
    expect(r.ok && r.config.visualRefresh).toMatchObject({ intervalMs: 30_000, watchForMs: 86_400_000, apiUrl: 'https://proxy.example.com/sauce' });
    const off = loadConfig({ ...creds, RELAY_VISUAL_REFRESH_INTERVAL: '0' });
    expect(off.ok && off.config.visualRefresh).toBeNull();
  });
  test('full mode reads the same variables', () => {
    const r = parseConfigText('routes:\n  - name: web\n    secret: s\n    repo: acme/web\n', creds, 'relay.yaml');
    expect(r.ok && r.config.visualRefresh?.username).toBe('ci-reader');
  });
});

describe('full mode (file)', () => {
  const yaml = `
port: 9090
body_limit: 512KiB
dedup_window: 2d
group_window: 500ms
routes:
  - name: web
    secrets: ["\${WEB_SECRET}", old-one]
    repo: acme/web
    event_type: sauce-web
    region: eu-central-1
    filters:
      families: [vdc, visual]
      failed_only: true
      team_id: b2d4f6a8c0e24b6d8f0a2c4e6a8c0e2f
      build: "shop-*"
  - name: mobile
    secret: m0bile
    repo_from_tags: true
    allow: [acme, other/app]
  - name: open
    allow_unsigned: true
    url_token: ${TOKEN}
    repo: acme/open
`;

  test('routes, filters, defaults, env expansion', () => {
    const r = parseConfigText(yaml, { WEB_SECRET: 'from-env' }, 'relay.yaml');
    if (!r.ok) throw new Error(r.errors.join('\n'));
    const c = r.config;
    expect(c).toMatchObject({ mode: 'full', port: 9090, bodyLimitBytes: 524_288, dedupWindowMs: 172_800_000, groupWindowMs: 500 });
    const [web, mobile, open] = c.routes;
    expect(web).toMatchObject({
      name: 'web',
      path: '/webhook/web',
      secrets: ['from-env', 'old-one'],
      repo: 'acme/web',
      eventType: 'sauce-web',
      region: 'eu-central-1',
      filters: { families: ['vdc', 'visual'], failedOnly: true, teamId: ['b2d4f6a8c0e24b6d8f0a2c4e6a8c0e2f'], build: ['shop-*'], orgId: null },
    });
    expect(mobile).toMatchObject({
      path: '/webhook/mobile',
      secrets: ['m0bile'],
      repo: null,
      repoFromTags: true,
      allow: ['acme', 'other/app'],
      eventType: 'saucelabs',
      region: 'us-west-1',
    });
    expect(open).toMatchObject({ path: `/webhook/open/${TOKEN}`, allowUnsigned: true, secrets: [] });
    expect(r.warnings.join('\n')).toMatch(/route open: accepts unsigned/);
    // Nothing secret in the printable summary.
    const printed = JSON.stringify(describeConfig(c));
    for (const secret of ['from-env', 'old-one', 'm0bile', TOKEN]) expect(printed).not.toContain(secret);
  });

  test('JSON works too, and a file is read from RELAY_CONFIG', () => {
    const dir = mkdtempSync(join(tmpdir(), 'relay-config-'));
    const file = join(dir, 'relay.json');
    writeFileSync(file, JSON.stringify({ routes: [{ name: 'a', secrets: ['x'], repo: 'acme/a' }] }));
    const r = loadConfig({ RELAY_CONFIG: file, PORT: '7000' });
    expect(r.ok && r.config.routes[0]!.path).toBe('/webhook/a');
    expect(r.ok && r.config.port).toBe(7000);
  });

  test.each([
    ['not yaml', 'routes: [unclosed', /relay\.yaml: not valid YAML or JSON/],
    ['top level list', '- a\n- b', /expected a mapping with a routes: list/],
    ['no routes', 'port: 1', /routes: /],
    ['empty routes', 'routes: []', /routes: define at least one route/],
    ['bad name', 'routes: [{name: "a b", secrets: [x], repo: a/b}]', /routes\[0:a b\]\.name: use letters/],
    ['no secret', 'routes: [{name: a, repo: a/b}]', /routes\[0:a\]\.secrets: a route needs at least one secret/],
    ['no repo', 'routes: [{name: a, secrets: [x]}]', /routes\[0:a\]\.repo: set repo: owner\/repo, or repo_from_tags/],
    ['bad repo', 'routes: [{name: a, secrets: [x], repo: "../etc"}]', /routes\[0:a\]\.repo: expected "owner\/repo"/],
    ['tags without allow', 'routes: [{name: a, secrets: [x], repo_from_tags: true}]', /routes\[0:a\]\.allow: repo_from_tags needs an allow list/],
    ['bad allow', 'routes: [{name: a, secrets: [x], repo_from_tags: true, allow: ["a/b/c"]}]', /routes\[0:a\]\.allow\[0\]: expected an owner/],
    ['unsigned without token', 'routes: [{name: a, repo: a/b, allow_unsigned: true}]', /routes\[0:a\]\.url_token: allow_unsigned needs a url_token/],
    ['short token', 'routes: [{name: a, repo: a/b, allow_unsigned: true, url_token: short}]', /routes\[0:a\]\.url_token: must be at least 32/],
    [
      'bad family',
      'routes: [{name: a, secrets: [x], repo: a/b, filters: {families: [web]}}]',
      /routes\[0:a\]\.filters\.families: expected one or a list of vdc, rdc, visual/,
    ],
    ['bad region', 'routes: [{name: a, secrets: [x], repo: a/b, region: mars}]', /routes\[0:a\]\.region: expected one of us-west-1/],
    ['long event type', `routes: [{name: a, secrets: [x], repo: a/b, event_type: ${'x'.repeat(101)}}]`, /routes\[0:a\]\.event_type: expected 1 to 100/],
    [
      'typo',
      'routes: [{name: a, secrets: [x], repo: a/b, repo_form_tags: true}]',
      /routes\[0:a\]: unknown field\(s\) repo_form_tags: remove or fix the spelling/,
    ],
    ['bad duration', 'dedup_window: forever\nroutes: [{name: a, secrets: [x], repo: a/b}]', /dedup_window: "forever" is not a duration/],
    ['duplicate names', 'routes: [{name: a, secrets: [x], repo: a/b}, {name: A, secrets: [y], repo: a/c}]', /routes\[1:A\]\.name: duplicate route name/],
    ['unset env', 'routes: [{name: a, secrets: ["${NOPE}"], repo: a/b}]', /routes\[0\]\.secrets\[0\]: environment variable NOPE is not set/],
  ])('%s → error names the field and the fix', (_n, text, pattern) => {
    const errors = errorsOf(text);
    expect(errors.some((e) => pattern.test(e))).toBe(true);
  });
});
