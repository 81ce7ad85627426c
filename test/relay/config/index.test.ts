import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeConfig, loadConfig, parseConfigText, withSecrets } from '../../../src/relay/config/index.js';

const TOKEN = 'a'.repeat(40);

function errorsOf(text: string, env: Record<string, string> = {}): string[] {
  const r = parseConfigText(text, env, 'relay.yaml');
  if (r.ok) throw new Error('expected errors');
  return [...r.errors];
}

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
      RELAY_STALE_AFTER: '30m',
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
      stuckAfterMs: 2 * 3_600_000,
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
    ['top-level typo', `portt: 1\n${'routes: [{name: a, secrets: [x], repo: a/b}]'}`, /^relay\.yaml: unknown field\(s\) portt: remove or fix the spelling$/],
    [
      'top-level typo in github',
      'github: {tokn: x}\nroutes: [{name: a, secrets: [x], repo: a/b}]',
      /^relay\.yaml: github: unknown field\(s\) tokn: remove or fix the spelling$/,
    ],
    ['bad duration', 'dedup_window: forever\nroutes: [{name: a, secrets: [x], repo: a/b}]', /dedup_window: "forever" is not a duration/],
    ['duplicate names', 'routes: [{name: a, secrets: [x], repo: a/b}, {name: A, secrets: [y], repo: a/c}]', /routes\[1:A\]\.name: duplicate route name/],
    [
      'unset env',
      'routes: [{name: a, secrets: ["${NOPE}"], repo: a/b}]',
      /^relay\.yaml: routes\[0:a\]\.secrets\[0\]: environment variable NOPE is not set: export it or write the value in the file$/,
    ],
  ])('%s → error names the field and the fix', (_n, text, pattern) => {
    const errors = errorsOf(text);
    expect(errors.some((e) => pattern.test(e))).toBe(true);
  });
});

const ROUTE = 'routes: [{name: a, secrets: [x], repo: a/b}]';

function envErrors(env: Record<string, string>): string[] {
  const r = loadConfig(env);
  if (r.ok) throw new Error('expected errors');
  return [...r.errors];
}

/** The one message that starts with `prefix`, without it. */
function messageAfter(errors: readonly string[], prefix: string): string {
  const hits = errors.filter((e) => e.startsWith(prefix));
  if (hits.length !== 1) throw new Error(`expected one error starting ${prefix}, got:\n${errors.join('\n')}`);
  return hits[0]!.slice(prefix.length);
}

describe('one schema: a setting is checked the same way in the environment and in the file', () => {
  test.each([
    ['LOG_LEVEL', 'log_level', 'verbose', /^"verbose" is not a log level: use one of fatal, error, warn, info, debug, trace, silent$/],
    ['PORT', 'port', '70000', /^"70000" is not a port number: use 0-65535/],
    ['RELAY_MAX_CONNECTIONS', 'max_connections', '1.5', /^"1.5" is not a whole number of at least 1$/],
    ['RELAY_BODY_LIMIT', 'body_limit', '1m', /^"1m" is ambiguous: write 1MiB \(1048576 bytes\) or 1MB \(1000000 bytes\)$/],
    ['RELAY_REQUEST_TIMEOUT', 'request_timeout', '0', /^"0" is out of range: use 1ms to 24d$/],
    ['RELAY_HOST', 'host', 'x\u0000y', null],
    ['RELAY_METRICS_TOKEN', 'metrics_token', ' ', /^is blank: put the token GET \/metrics must present in it/],
  ])('%s / %s = %j', (envName, key, value, message) => {
    const fromFile = parseConfigText(`${key}: ${JSON.stringify(value)}\n${ROUTE}`, {}, 'relay.yaml');
    const fromEnv = loadConfig({ [envName]: value });
    if (message === null) {
      expect(fromEnv.ok && fromFile.ok).toBe(true);
      return;
    }
    const envMessage = messageAfter(fromEnv.ok ? [] : fromEnv.errors, `${envName}: `);
    expect(envMessage).toMatch(message);
    expect(messageAfter(fromFile.ok ? [] : fromFile.errors, `relay.yaml: ${key}: `)).toBe(envMessage);
  });

  test('LOG_LEVEL from the environment is validated and normalised like log_level', () => {
    expect(loadConfig({ LOG_LEVEL: 'DEBUG' })).toMatchObject({ ok: true, config: { logLevel: 'debug' } });
    expect(parseConfigText(`log_level: WARN\n${ROUTE}`, {}, 'relay.yaml')).toMatchObject({ ok: true, config: { logLevel: 'warn' } });
  });

  test('the file overrides the environment; the environment fills what the file leaves out', () => {
    const r = parseConfigText(`port: 9090\n${ROUTE}`, { PORT: '7000', RELAY_MAX_CONNECTIONS: '64', LOG_LEVEL: 'warn' }, 'relay.yaml');
    expect(r).toMatchObject({ ok: true, config: { port: 9090, maxConnections: 64, logLevel: 'warn' } });
  });

  test('the newest settings, from either source', () => {
    const env = { RELAY_MAX_CONNECTIONS: '10', RELAY_MAX_BUFFERED: '8MiB', RELAY_STALE_AFTER: '12h', RELAY_METRICS_TOKEN: ' m-token ' };
    expect(loadConfig(env)).toMatchObject({
      ok: true,
      config: { maxConnections: 10, maxBufferedBytes: 8_388_608, staleAfterMs: 43_200_000, metricsToken: 'm-token' },
    });
    const file = parseConfigText(`max_connections: 20\nmax_buffered: 4MB\nstale_after: 2h\nmetrics_token: t\n${ROUTE}`, {}, 'relay.yaml');
    expect(file).toMatchObject({ ok: true, config: { maxConnections: 20, maxBufferedBytes: 4_000_000, staleAfterMs: 7_200_000, metricsToken: 't' } });
  });
});

describe('units: one meaning per letter', () => {
  test.each([
    [{ RELAY_BODY_LIMIT: '64KB' }, { bodyLimitBytes: 64_000 }],
    [{ RELAY_BODY_LIMIT: '64kib' }, { bodyLimitBytes: 65_536 }],
    [{ RELAY_MAX_BUFFERED: '2MB' }, { maxBufferedBytes: 2_000_000 }],
    [{ RELAY_DEDUP_WINDOW: '2880m' }, { dedupWindowMs: 172_800_000 }],
  ])('%j', (env, expected) => expect(loadConfig(env)).toMatchObject({ ok: true, config: expected }));

  test.each([
    ['RELAY_BODY_LIMIT', '512k', 'write 512KiB (524288 bytes) or 512KB (512000 bytes)'],
    ['RELAY_BODY_LIMIT', '1M', 'write 1MiB (1048576 bytes) or 1MB (1000000 bytes)'],
    ['RELAY_MAX_BUFFERED', '32m', 'write 32MiB (33554432 bytes) or 32MB (32000000 bytes)'],
  ])('%s=%s is refused with what to write', (name, value, fix) => {
    expect(envErrors({ [name]: value })).toContain(`${name}: "${value}" is ambiguous: ${fix}`);
  });
});

describe('zero and nonsense values', () => {
  test.each([
    ['RELAY_REQUEST_TIMEOUT', 'use 1ms to 24d'],
    ['RELAY_HEADERS_TIMEOUT', 'use 1ms to 24d'],
    ['RELAY_LEASE', 'use 1ms to 24d'],
    ['RELAY_DEDUP_WINDOW', 'use at least 1ms'],
    ['RELAY_MAX_AGE', 'use at least 1ms'],
    ['RELAY_STALE_AFTER', 'use at least 1ms'],
    ['RELAY_VISUAL_REFRESH_FOR', 'use at least 1ms'],
    ['RELAY_BODY_LIMIT', 'use at least 1KiB'],
    ['RELAY_MAX_BUFFERED', 'use at least 1KiB'],
  ])('%s=0 is refused with the allowed range', (name, range) => {
    expect(envErrors({ [name]: '0' })).toContain(`${name}: "0" is out of range: ${range}`);
  });

  test('RELAY_MAX_CONNECTIONS=0 is refused', () => {
    expect(envErrors({ RELAY_MAX_CONNECTIONS: '0' })).toContain('RELAY_MAX_CONNECTIONS: "0" is not a whole number of at least 1');
  });

  test.each([
    [{ RELAY_GROUP_WINDOW: '0' }, { groupWindowMs: 0 }],
    [{ PORT: '0' }, { port: 0 }],
    [{ RELAY_VISUAL_REFRESH_INTERVAL: '0', SAUCE_USERNAME: 'u', SAUCE_ACCESS_KEY: 'k' }, { visualRefresh: null }],
  ])('0 keeps its documented meaning: %j', (env, expected) => expect(loadConfig(env)).toMatchObject({ ok: true, config: expected }));

  test.each([
    ['RELAY_DEDUP_WINDOW', '99999999999999d', 'is too large: use at least 1ms'],
    ['RELAY_BODY_LIMIT', '99999999999999MiB', 'is too large: use at least 1KiB'],
  ])('too large to hold: %s=%s', (name, value, message) => {
    expect(envErrors({ [name]: value })).toContain(`${name}: "${value}" ${message}`);
  });

  test.each([
    ['RELAY_GROUP_WINDOW', '30d', 'use 0 (off) or 1ms to 24d'],
    ['RELAY_VISUAL_REFRESH_INTERVAL', '25d', 'use 0 (off) or 1ms to 24d'],
    ['RELAY_REQUEST_TIMEOUT', '25d', 'use 1ms to 24d'],
  ])('timers longer than Node can hold: %s=%s', (name, value, range) => {
    expect(envErrors({ [name]: value })).toContain(`${name}: "${value}" is out of range: ${range}`);
  });

  test('a dedup window not longer than stale_after is refused: a replay must be a duplicate or stale', () => {
    expect(envErrors({ RELAY_DEDUP_WINDOW: '1d' })).toEqual([
      expect.stringMatching(
        /^RELAY_DEDUP_WINDOW: 1d must be longer than RELAY_STALE_AFTER \(1d, the default\): .*raise RELAY_DEDUP_WINDOW or lower RELAY_STALE_AFTER$/,
      ),
    ]);
    expect(errorsOf(`dedup_window: 12h\nstale_after: 1d\n${ROUTE}`)).toEqual([
      expect.stringMatching(/^relay\.yaml: dedup_window: 12h must be longer than stale_after \(1d\)/),
    ]);
    expect(errorsOf(ROUTE, { RELAY_STALE_AFTER: '8d' })).toEqual([
      expect.stringMatching(/^RELAY_DEDUP_WINDOW: 7d, the default must be longer than RELAY_STALE_AFTER \(8d\)/),
    ]);
    expect(loadConfig({ RELAY_DEDUP_WINDOW: '1h', RELAY_STALE_AFTER: '59m' }).ok).toBe(true);
  });

  test('a headers timeout past the request timeout is refused', () => {
    expect(envErrors({ RELAY_HEADERS_TIMEOUT: '1m' })).toEqual([
      expect.stringMatching(/^RELAY_HEADERS_TIMEOUT: 1m is longer than RELAY_REQUEST_TIMEOUT \(30s, the default\)/),
    ]);
  });

  test('a buffer that cannot hold one body at the limit is refused', () => {
    expect(envErrors({ RELAY_MAX_BUFFERED: '128KiB' })).toEqual([
      expect.stringMatching(/^RELAY_MAX_BUFFERED: 128KiB is less than RELAY_BODY_LIMIT \(256KiB, the default\)/),
    ]);
  });
});

describe('${VAR} in the file', () => {
  const mobile = (secret: string) =>
    `routes:\n  - {name: web, secrets: [w], repo: acme/web}\n  - name: mobile\n    secrets: ["${secret}"]\n    repo: acme/mobile\n`;

  test('an unset variable names the file, the route and the field', () => {
    expect(errorsOf(mobile('${SAUCE_SECRET_MOBILE}'))).toEqual([
      'relay.yaml: routes[1:mobile].secrets[0]: environment variable SAUCE_SECRET_MOBILE is not set: export it or write the value in the file',
    ]);
  });

  test('$NAME without braces is an error with the fix, not a literal secret', () => {
    expect(errorsOf(mobile('$SAUCE_SECRET_MOBILE'), { SAUCE_SECRET_MOBILE: 'm' })).toEqual([
      expect.stringMatching(
        /^relay\.yaml: routes\[1:mobile\]\.secrets\[0\]: \$SAUCE_SECRET_MOBILE is not expanded without braces: write \$\{SAUCE_SECRET_MOBILE\}/,
      ),
    ]);
  });
});

describe('blank secrets and generated secrets', () => {
  const github = { GITHUB_TOKEN: 'ghs_x', GITHUB_REPOSITORY: 'acme/web' };

  test.each([
    ['with GitHub credentials', { ...github, SAUCE_WEBHOOK_SECRET: ' , ' }],
    ['in dry-run', { SAUCE_WEBHOOK_SECRET: ' , ' }],
    ['empty', { SAUCE_WEBHOOK_SECRET: '' }],
  ])('SAUCE_WEBHOOK_SECRET set but holding no secret is an error %s', (_n, env) => {
    expect(envErrors(env)).toEqual([expect.stringMatching(/^SAUCE_WEBHOOK_SECRET: is set but holds no secret: set it to the webhook's security token/)]);
  });

  test.each([
    ['a token', github],
    ['an App', { GITHUB_APP_ID: '1', GITHUB_APP_PRIVATE_KEY: 'k', GITHUB_REPOSITORY: 'acme/web' }],
  ])('with %s and no secret the relay refuses to start: a generated secret is only for dry-run', (_n, env) => {
    expect(envErrors(env)).toEqual([
      expect.stringMatching(/^SAUCE_WEBHOOK_SECRET: not set, but GitHub credentials are, .*a generated secret is only for dry-run$/),
    ]);
  });

  test.each([
    ['secrets: ["${BLANK}"]', 'secrets[0]'],
    ['secret: "${BLANK}"', 'secret'],
  ])('a route secret that expands to blank is an error: %s', (field, at) => {
    const errors = errorsOf(`routes:\n  - name: a\n    ${field}\n    repo: a/b\n`, { BLANK: '  ' });
    expect(errors).toEqual([`relay.yaml: routes[0:a].${at}: is blank: set it to the webhook's security token from Sauce Labs`]);
  });

  test('RELAY_METRICS_TOKEN set but blank is an error (an open /metrics by mistake)', () => {
    expect(envErrors({ RELAY_METRICS_TOKEN: '' })).toEqual([expect.stringMatching(/^RELAY_METRICS_TOKEN: is blank: /)]);
  });
});

describe('credentials in URLs', () => {
  test.each([
    [
      'GITHUB_API_URL',
      'https://x-access-token:ghp_inurl123@ghe.example.com/api/v3',
      /^GITHUB_API_URL: "https:\/\/\*\*\*@ghe\.example\.com\/api\/v3" has credentials in it, .*: write "https:\/\/ghe\.example\.com\/api\/v3" and put the token in GITHUB_TOKEN/,
    ],
    ['SAUCE_API_URL', 'https://reader:ghp_inurl123@api.saucelabs.com', /^SAUCE_API_URL: "https:\/\/\*\*\*@api\.saucelabs\.com\/" has credentials in it/],
    ['GITHUB_API_URL', 'ghp_inurl123@nope', /^GITHUB_API_URL: "\*\*\*@nope" is not an http\(s\) URL/],
  ])('%s with a token in it is refused, and the token is not repeated', (name, url, message) => {
    const errors = envErrors({ [name]: url });
    expect(errors).toEqual([expect.stringMatching(message)]);
    expect(errors.join('\n')).not.toContain('ghp_inurl123');
  });

  test('the same in the file', () => {
    const errors = errorsOf(`github: {api_url: "https://u:ghp_inurl123@ghe.example.com/api/v3"}\n${ROUTE}`);
    expect(errors).toEqual([expect.stringMatching(/^relay\.yaml: github\.api_url: "https:\/\/\*\*\*@ghe\.example\.com\/api\/v3" has credentials in it/)]);
    expect(errors.join('\n')).not.toContain('ghp_inurl123');
  });
});

describe('every error at once', () => {
  test('quick mode: each bad variable and each rule between the valid ones', () => {
    const errors = envErrors({ PORT: 'x', LOG_LEVEL: 'loud', RELAY_BODY_LIMIT: '1m', RELAY_DEDUP_WINDOW: '1h', GITHUB_TOKEN: 't' });
    expect(errors.map((e) => e.split(':')[0])).toEqual([
      'PORT',
      'RELAY_BODY_LIMIT',
      'LOG_LEVEL',
      'RELAY_DEDUP_WINDOW',
      'GITHUB_REPOSITORY',
      'SAUCE_WEBHOOK_SECRET',
    ]);
  });

  test('full mode: the file and the environment together', () => {
    const errors = errorsOf('dedup_window: forever\nroutes: [{name: a, repo: a/b}]', { PORT: 'eighty', RELAY_STALE_AFTER: '0' });
    expect(errors).toEqual([
      expect.stringMatching(/^PORT: "eighty" is not a port number/),
      expect.stringMatching(/^RELAY_STALE_AFTER: "0" is out of range/),
      expect.stringMatching(/^relay\.yaml: dedup_window: "forever" is not a duration/),
      expect.stringMatching(/^relay\.yaml: routes\[0:a\]\.secrets: a route needs at least one secret/),
    ]);
  });

  test('an unreadable file, and the environment too', () => {
    expect(envErrors({ RELAY_CONFIG: '/definitely/not/here.yaml', LOG_LEVEL: 'loud' })).toEqual([
      expect.stringMatching(/^LOG_LEVEL: /),
      expect.stringMatching(/^RELAY_CONFIG: cannot read/),
    ]);
  });
});
