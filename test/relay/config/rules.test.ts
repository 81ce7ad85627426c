import { canDispatch, githubRules, type Named, type RuleInput, settingRules } from '../../../src/relay/config/rules.js';

const DEFAULTS: RuleInput = {
  dedupWindowMs: 7 * 86_400_000,
  staleAfterMs: 86_400_000,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  bodyLimitBytes: 1_048_576,
  maxBufferedBytes: 32 * 1_048_576,
};

/** Every setting from the environment, except those listed as set in relay.yaml. */
const namer =
  (inFile: string[] = [], defaults: string[] = [], invalid: string[] = []) =>
  (setting: string): Named =>
    inFile.includes(setting)
      ? { where: `relay.yaml: ${setting}`, name: setting, isDefault: false, valid: !invalid.includes(setting) }
      : { where: `ENV_${setting}`, name: `ENV_${setting}`, isDefault: defaults.includes(setting), valid: !invalid.includes(setting) };

describe('rules between settings', () => {
  test('the defaults pass', () => expect(settingRules(DEFAULTS, namer())).toEqual({ errors: [], warnings: [] }));

  test.each([
    [
      'dedup window shorter than stale_after',
      { dedupWindowMs: 3_600_000 },
      /^ENV_dedup_window: 1h must be longer than ENV_stale_after \(1d\): a replayed job body must be either a duplicate or stale.*raise ENV_dedup_window or lower ENV_stale_after$/,
    ],
    ['dedup window equal to stale_after', { dedupWindowMs: 86_400_000 }, /^ENV_dedup_window: 1d must be longer than ENV_stale_after \(1d\)/],
    [
      'headers timeout past the request timeout',
      { headersTimeoutMs: 60_000 },
      /^ENV_headers_timeout: 1m is longer than ENV_request_timeout \(30s\).*raise ENV_request_timeout$/,
    ],
    [
      'buffer smaller than one body',
      { maxBufferedBytes: 65_536 },
      /^ENV_max_buffered: 64KiB is less than ENV_body_limit \(1MiB\): a body at the limit could never be taken in/,
    ],
  ])('%s', (_n, change, message) => {
    const r = settingRules({ ...DEFAULTS, ...change }, namer());
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]).toMatch(message);
  });

  test('one second more than stale_after is enough', () => {
    expect(settingRules({ ...DEFAULTS, dedupWindowMs: 86_401_000 }, namer()).errors).toEqual([]);
  });

  test('a file field and a default are named as such', () => {
    const r = settingRules({ ...DEFAULTS, dedupWindowMs: 3_600_000 }, namer(['dedup_window'], ['stale_after']));
    expect(r.errors[0]).toMatch(/^relay\.yaml: dedup_window: 1h must be longer than ENV_stale_after \(1d, the default\)/);
  });

  test('a rule that reads an invalid setting (already reported) is skipped', () => {
    const r = settingRules(
      { ...DEFAULTS, dedupWindowMs: 1, headersTimeoutMs: 60_000, maxBufferedBytes: 1 },
      namer([], [], ['dedup_window', 'request_timeout', 'body_limit']),
    );
    expect(r.errors).toEqual([]);
  });

  test('a short stale_after is allowed, with a warning', () => {
    const r = settingRules({ ...DEFAULTS, staleAfterMs: 600_000 }, namer());
    expect(r.errors).toEqual([]);
    expect(r.warnings).toEqual([expect.stringMatching(/^ENV_stale_after: 10m is less than 1h: job events .* are answered 202 filtered/)]);
  });
});

describe('GitHub credentials', () => {
  test.each([
    [{ token: false, appId: false, privateKey: false }, [], false],
    [{ token: true, appId: false, privateKey: false }, [], true],
    [{ token: false, appId: true, privateKey: true }, [], true],
    [
      { token: false, appId: true, privateKey: false },
      ['ENV_github.private_key: ENV_github.app_id is set but the App private key is not: set both, or neither'],
      false,
    ],
    [{ token: false, appId: false, privateKey: true }, ['ENV_github.app_id: ENV_github.private_key is set but the App id is not: set both, or neither'], false],
  ])('%j', (c, errors, dispatches) => {
    expect(githubRules(c, namer())).toEqual(errors);
    expect(canDispatch(c)).toBe(dispatches);
  });
});
