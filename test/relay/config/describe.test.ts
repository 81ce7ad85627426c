import { describeConfig } from '../../../src/relay/config/describe.js';
import { loadConfig, type RelayConfig } from '../../../src/relay/config/index.js';

function config(env: Record<string, string>): RelayConfig {
  const r = loadConfig(env);
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return r.config;
}

const base = config({
  SAUCE_WEBHOOK_SECRET: 'whsec-123456',
  GITHUB_TOKEN: 'ghs_0123456789',
  GITHUB_REPOSITORY: 'acme/web',
  RELAY_METRICS_TOKEN: 'metrics-0123456789',
  SAUCE_USERNAME: 'reader',
  SAUCE_ACCESS_KEY: 'key-0123456789',
  LOG_LEVEL: 'debug',
});

test('every setting but no secret, token or key', () => {
  const d = describeConfig(base);
  expect(d).toMatchObject({
    logLevel: 'debug',
    maxConnections: 1024,
    maxBufferedBytes: 32 * 1_048_576,
    staleAfterMs: 86_400_000,
    metrics: 'bearer token',
    github: { auth: 'token', apiUrl: 'https://api.github.com' },
  });
  const printed = JSON.stringify(d);
  for (const secret of ['whsec-123456', 'ghs_0123456789', 'metrics-0123456789', 'key-0123456789']) expect(printed).not.toContain(secret);
});

test('the user part of a shown URL is redacted', () => {
  // The loader refuses such URLs; a config built another way must not print them either.
  const withCredentials: RelayConfig = {
    ...base,
    github: { ...base.github, apiUrl: 'https://x-access-token:ghp_inurl@ghe.example.com/api/v3' },
    visualRefresh: { ...base.visualRefresh!, apiUrl: 'https://reader:key_inurl@proxy.example.com/sauce' },
  };
  const d = describeConfig(withCredentials);
  expect(d.github).toMatchObject({ apiUrl: 'https://***@ghe.example.com/api/v3' });
  expect(d.visualRefresh).toMatchObject({ apiUrl: 'https://***@proxy.example.com/sauce' });
  const printed = JSON.stringify(d);
  expect(printed).not.toContain('ghp_inurl');
  expect(printed).not.toContain('key_inurl');
});
