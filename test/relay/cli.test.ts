/**
 * `check-config` and `serve` share one validation: whatever check-config accepts, serve starts
 * with; whatever it refuses, serve refuses the same way (exit 2, every error, nothing secret).
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from './support/common.js';
import { ensureBuilt, tempDir } from './support/process.js';

const run = promisify(execFile);
const CLI = join(REPO_ROOT, 'lib/relay/cli.js');

function cli(args: string[], env: Record<string, string>) {
  const base = { PATH: process.env.PATH ?? '', PORT: '0', RELAY_HOST: '127.0.0.1', RELAY_DATA_DIR: tempDir() };
  return run(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, env: { ...base, ...env }, timeout: 15_000, killSignal: 'SIGKILL' }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }),
  );
}

beforeAll(() => ensureBuilt(), 120_000);

test.each([
  ['a bad LOG_LEVEL (serve used to crash on it after check-config passed)', { LOG_LEVEL: 'verbose' }, /LOG_LEVEL: "verbose" is not a log level/],
  [
    'GitHub credentials and no webhook secret (serve used to generate one and dispatch for real)',
    { GITHUB_TOKEN: 'ghs_cli_token', GITHUB_REPOSITORY: 'acme/web' },
    /SAUCE_WEBHOOK_SECRET: not set, but GitHub credentials are/,
  ],
  [
    'a blank webhook secret',
    { SAUCE_WEBHOOK_SECRET: ' , ', GITHUB_TOKEN: 'ghs_cli_token', GITHUB_REPOSITORY: 'acme/web' },
    /SAUCE_WEBHOOK_SECRET: is set but holds no secret/,
  ],
  [
    'a token inside GITHUB_API_URL',
    { GITHUB_API_URL: 'https://x-access-token:ghs_cli_token@ghe.example.com/api/v3', SAUCE_WEBHOOK_SECRET: 's' },
    /GITHUB_API_URL: "https:\/\/\*\*\*@ghe\.example\.com\/api\/v3" has credentials in it/,
  ],
])('%s: check-config and serve both exit 2 with the same error', async (_name, env, message) => {
  const [check, serve] = await Promise.all([cli(['check-config'], env), cli(['serve'], env)]);
  for (const r of [check, serve]) {
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(`${r.stdout}${r.stderr}`).not.toContain('ghs_cli_token');
  }
  expect(serve.stdout).not.toMatch(/Secret:|relay listening/);
});

test('check-config prints every error at once', async () => {
  const r = await cli(['check-config'], { PORT: 'eighty', LOG_LEVEL: 'loud', RELAY_BODY_LIMIT: '1m', RELAY_REQUEST_TIMEOUT: '0' });
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(/^configuration errors:\n {2}- PORT: .*\n {2}- RELAY_BODY_LIMIT: .*\n {2}- RELAY_REQUEST_TIMEOUT: .*\n {2}- LOG_LEVEL: .*\n$/);
});

test('check-config prints the settings it accepted, without secrets', async () => {
  const env = { SAUCE_WEBHOOK_SECRET: 'whsec_cli_secret', RELAY_METRICS_TOKEN: 'metrics_cli_token', RELAY_MAX_CONNECTIONS: '50', LOG_LEVEL: 'WARN' };
  const r = await cli(['check-config'], env);
  expect(r.code).toBe(0);
  expect(r.stdout).toContain('configuration OK');
  expect(r.stdout).toMatch(/"maxConnections": 50/);
  expect(r.stdout).toMatch(/"logLevel": "warn"/);
  expect(r.stdout).toMatch(/"metrics": "bearer token"/);
  expect(r.stdout).not.toMatch(/whsec_cli_secret|metrics_cli_token/);
});
