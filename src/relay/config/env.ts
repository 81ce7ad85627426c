/**
 * The environment, mapped onto the settings the file uses (schema.ts): one table says which
 * variable sets which setting. Values are trimmed; a blank value counts as unset, except for
 * the variables where blank is a mistake that would open or lock the relay (a secret, a token).
 */
import type { Env } from './types.js';

export interface EnvVar {
  readonly name: string;
  /** Where the value goes in the settings document (`envSchema`). */
  readonly path: readonly string[];
  /** Only read in quick mode (the file's routes replace them in full mode). */
  readonly quickOnly?: true;
  /** A comma-separated list. */
  readonly list?: true;
  /** Set but blank is an error (the schema says why), not "unset". */
  readonly blankIsError?: true;
}

export const ENV_VARS: readonly EnvVar[] = [
  { name: 'PORT', path: ['port'] },
  { name: 'RELAY_HOST', path: ['host'] },
  { name: 'RELAY_DATA_DIR', path: ['data_dir'] },
  { name: 'RELAY_DATABASE_URL', path: ['database_url'] },
  { name: 'RELAY_BODY_LIMIT', path: ['body_limit'] },
  { name: 'RELAY_DEDUP_WINDOW', path: ['dedup_window'] },
  { name: 'RELAY_GROUP_WINDOW', path: ['group_window'] },
  { name: 'RELAY_MAX_AGE', path: ['max_age'] },
  { name: 'RELAY_LEASE', path: ['lease'] },
  { name: 'RELAY_HEADERS_TIMEOUT', path: ['headers_timeout'] },
  { name: 'RELAY_REQUEST_TIMEOUT', path: ['request_timeout'] },
  { name: 'RELAY_MAX_CONNECTIONS', path: ['max_connections'] },
  { name: 'RELAY_MAX_BUFFERED', path: ['max_buffered'] },
  { name: 'RELAY_STALE_AFTER', path: ['stale_after'] },
  { name: 'RELAY_METRICS_TOKEN', path: ['metrics_token'], blankIsError: true },
  { name: 'RELAY_ADMIN_TOKEN', path: ['admin_token'], blankIsError: true },
  { name: 'LOG_LEVEL', path: ['log_level'] },
  { name: 'GITHUB_TOKEN', path: ['github', 'token'] },
  { name: 'GITHUB_APP_ID', path: ['github', 'app_id'] },
  { name: 'GITHUB_APP_PRIVATE_KEY', path: ['github', 'private_key'] },
  { name: 'GITHUB_API_URL', path: ['github', 'api_url'] },
  { name: 'SAUCE_USERNAME', path: ['visual_refresh', 'username'] },
  { name: 'SAUCE_ACCESS_KEY', path: ['visual_refresh', 'access_key'] },
  { name: 'SAUCE_API_URL', path: ['visual_refresh', 'api_url'] },
  { name: 'RELAY_VISUAL_REFRESH_INTERVAL', path: ['visual_refresh', 'interval'] },
  { name: 'RELAY_VISUAL_REFRESH_FOR', path: ['visual_refresh', 'for'] },
  { name: 'RELAY_VISUAL_STUCK_AFTER', path: ['visual_stuck_after'] },
  { name: 'SAUCE_WEBHOOK_SECRET', path: ['route', 'secrets'], quickOnly: true, list: true, blankIsError: true },
  { name: 'GITHUB_REPOSITORY', path: ['route', 'repo'], quickOnly: true },
  { name: 'RELAY_EVENT_TYPE', path: ['route', 'event_type'], quickOnly: true },
  { name: 'SAUCE_REGION', path: ['route', 'region'], quickOnly: true },
];

/** `a, b ,` → `[a, b]`. */
export function splitList(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** The settings document the environment describes (unknown shape: `envSchema` validates it). */
export function envToDoc(env: Env, mode: 'quick' | 'full'): Record<string, unknown> {
  const doc: Record<string, unknown> = { github: {}, visual_refresh: {} };
  for (const v of ENV_VARS) {
    if (v.quickOnly && mode !== 'quick') continue;
    const raw = env[v.name];
    if (raw === undefined) continue;
    const value = raw.trim();
    if (value === '' && !v.blankIsError) continue;
    let node = doc;
    for (const key of v.path.slice(0, -1)) {
      node[key] ??= {};
      node = node[key] as Record<string, unknown>;
    }
    node[v.path.at(-1)!] = v.list ? splitList(value) : value;
  }
  return doc;
}

/** The variable that set the value at `path` of the settings document. */
export function envNameAt(path: readonly PropertyKey[]): string | null {
  const hit = ENV_VARS.find((v) => v.path.every((key, i) => path[i] === key));
  return hit?.name ?? null;
}

/** The variable for a setting path such as `['github', 'token']`. */
export function envNameOf(...path: string[]): string {
  return envNameAt(path) ?? path.join('.');
}
