/** RELAY_VISUAL_STUCK_AFTER / visual_stuck_after: when a watched Visual build still QUEUED or RUNNING becomes `error`. */
import { describeConfig, loadConfig, parseConfigText } from '../../../src/relay/config/index.js';

const creds = { SAUCE_USERNAME: 'ci-reader', SAUCE_ACCESS_KEY: 'key-1234567890' };
const FILE = 'routes:\n  - name: web\n    secret: s\n    repo: acme/web\n';

describe('visual stuck timeout', () => {
  test.each([
    [{}, 2 * 3_600_000],
    [{ RELAY_VISUAL_STUCK_AFTER: '90m' }, 90 * 60_000],
    [{ RELAY_VISUAL_STUCK_AFTER: '2s' }, 2_000],
    [{ RELAY_VISUAL_STUCK_AFTER: '0' }, null],
  ])('env %j → %s ms (null = off)', (env, expected) => {
    const r = loadConfig({ ...creds, ...env });
    expect(r.ok && r.config.visualRefresh?.stuckAfterMs).toBe(expected);
  });

  test('the file key wins over the variable, like every setting', () => {
    const r = parseConfigText(`visual_stuck_after: 45m\n${FILE}`, { ...creds, RELAY_VISUAL_STUCK_AFTER: '3h' }, 'relay.yaml');
    expect(r.ok && r.config.visualRefresh?.stuckAfterMs).toBe(45 * 60_000);
  });

  test('not a duration: the variable is named and the fix given', () => {
    const r = loadConfig({ ...creds, RELAY_VISUAL_STUCK_AFTER: 'soon' });
    expect(r.ok).toBe(false);
    expect(!r.ok && r.errors).toContain('RELAY_VISUAL_STUCK_AFTER: "soon" is not a duration: write e.g. 500ms, 2s, 10m, 3h, 7d');
  });

  test('not less than the refresh period: a warning, since the watch ends first', () => {
    const r = loadConfig({ ...creds, RELAY_VISUAL_REFRESH_FOR: '1h' });
    expect(r.ok && r.warnings.join('\n')).toMatch(/^RELAY_VISUAL_STUCK_AFTER: 2h, the default, is not less than RELAY_VISUAL_REFRESH_FOR \(1h\)/m);
    const off = loadConfig({ ...creds, RELAY_VISUAL_REFRESH_FOR: '1h', RELAY_VISUAL_STUCK_AFTER: '0' });
    expect(off.ok && off.warnings.join('\n')).not.toMatch(/RELAY_VISUAL_STUCK_AFTER/);
  });

  test('set without Sauce credentials: a warning that it does nothing', () => {
    const r = loadConfig({ RELAY_VISUAL_STUCK_AFTER: '1h' });
    expect(r.ok && r.config.visualRefresh).toBeNull();
    expect(r.ok && r.warnings.join('\n')).toMatch(/^RELAY_VISUAL_STUCK_AFTER: has no effect without Visual refresh/m);
  });

  test('check-config prints it', () => {
    const r = loadConfig({ ...creds, RELAY_VISUAL_STUCK_AFTER: '0' });
    expect(r.ok && JSON.stringify(describeConfig(r.config))).toContain('"stuckAfterMs":"off"');
  });
});
