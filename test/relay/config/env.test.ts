import { ENV_VARS, envNameAt, envToDoc, splitList } from '../../../src/relay/config/env.js';
import { envSchema, fileSchema } from '../../../src/relay/config/schema.js';

describe('the environment as a settings document', () => {
  test.each([
    ['a value is trimmed', { PORT: ' 9000 ' }, 'quick', { port: '9000' }],
    ['blank counts as unset', { PORT: '  ', GITHUB_TOKEN: '' }, 'quick', {}],
    [
      'nested settings',
      { GITHUB_API_URL: 'https://ghe/api/v3', SAUCE_USERNAME: 'u' },
      'quick',
      { github: { api_url: 'https://ghe/api/v3' }, visual_refresh: { username: 'u' } },
    ],
    [
      'the quick route',
      { SAUCE_WEBHOOK_SECRET: 'new, old ,', GITHUB_REPOSITORY: 'acme/web' },
      'quick',
      { route: { secrets: ['new', 'old'], repo: 'acme/web' } },
    ],
    ['full mode ignores the quick route', { SAUCE_WEBHOOK_SECRET: 'x', GITHUB_REPOSITORY: 'acme/web', PORT: '1' }, 'full', { port: '1' }],
    // Blank is a mistake here, not "unset": the schema refuses it.
    ['a blank secret list stays set', { SAUCE_WEBHOOK_SECRET: ' , ' }, 'quick', { route: { secrets: [] } }],
    ['an empty secret stays set', { SAUCE_WEBHOOK_SECRET: '' }, 'quick', { route: { secrets: [] } }],
    ['a blank metrics token stays set', { RELAY_METRICS_TOKEN: ' ' }, 'quick', { metrics_token: '' }],
  ] as const)('%s', (_name, env, mode, expected) => {
    expect(envToDoc(env, mode)).toEqual({ github: {}, visual_refresh: {}, ...expected });
  });

  test('every variable sets a setting the schema knows', () => {
    const settingKeys = new Set([...Object.keys(envSchema.shape), ...Object.keys(fileSchema.shape)]);
    for (const v of ENV_VARS) expect(settingKeys).toContain(v.path[0]);
    expect(new Set(ENV_VARS.map((v) => v.name)).size).toBe(ENV_VARS.length);
  });

  test.each([
    [['port'], 'PORT'],
    [['github', 'token'], 'GITHUB_TOKEN'],
    [['route', 'secrets', 0], 'SAUCE_WEBHOOK_SECRET'],
    [['visual_refresh', 'interval'], 'RELAY_VISUAL_REFRESH_INTERVAL'],
    [['routes'], null],
  ] as const)('the variable at %j is %s', (path, name) => expect(envNameAt(path)).toBe(name));

  test('lists', () => expect(splitList(' a,, b ,')).toEqual(['a', 'b']));
});
