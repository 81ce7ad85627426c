/**
 * Relay configuration, validated with zod.
 *
 * - Quick mode (no `RELAY_CONFIG`): everything from the environment, one route `default` at
 *   `POST /webhook`, the target repo from `GITHUB_REPOSITORY`.
 * - Full mode (`RELAY_CONFIG=<file>`, YAML or JSON): several routes, each at
 *   `POST /webhook/<name>` (or `/webhook/<name>/<url_token>` when it has a URL token).
 *
 * Every error names the field and says how to fix it. Pure apart from reading the config file
 * through the `readFile` it is given.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { validEventType } from '../github/limits.js';
import { DEFAULT_REGION, REGIONS, isRegion, type Region } from '../sauce/urls.js';
import type { SauceFamily } from '../sauce/event.js';

export const DEFAULTS = {
  port: 8080,
  host: '0.0.0.0',
  dataDir: '.relay-data',
  bodyLimitBytes: 256 * 1024,
  dedupWindowMs: 7 * 24 * 3600_000,
  groupWindowMs: 2000,
  maxAgeMs: 3 * 24 * 3600_000,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  /** Open connections at once; past it a new connection gets 503 + Retry-After. */
  maxConnections: 1024,
  /** Request body bytes held in memory at once, over all requests; past it 503 + Retry-After. */
  maxBufferedBytes: 32 * 1024 * 1024,
  /** Job events whose own time (modification_time) is older than this are answered 202 filtered (replays). */
  staleAfterMs: 24 * 3600_000,
  visualRefreshIntervalMs: 60_000,
  visualRefreshForMs: 3 * 24 * 3600_000,
  eventType: 'saucelabs',
  /** A repo placeholder for zero-config dry-run, where nothing is ever sent. */
  dryRunRepo: 'example/dry-run',
} as const;

export const FAMILIES = ['vdc', 'rdc', 'visual'] as const satisfies readonly SauceFamily[];
export const MIN_URL_TOKEN_CHARS = 32;

export interface RouteFilters {
  /** Families relayed; null = all. */
  readonly families: readonly SauceFamily[] | null;
  /** Only failed jobs (FAILED, ERRORED, passed=false) and Visual builds ERRORED/REJECTED/UNAPPROVED. */
  readonly failedOnly: boolean;
  /** Each: null = no filter; otherwise the event must match one of the patterns (`*` = any run). */
  readonly teamId: readonly string[] | null;
  readonly orgId: readonly string[] | null;
  readonly owner: readonly string[] | null;
  readonly build: readonly string[] | null;
  readonly project: readonly string[] | null;
}

export interface RouteConfig {
  readonly name: string;
  /** `/webhook` for the quick-mode route, `/webhook/<name>[/<url_token>]` otherwise. */
  readonly path: string;
  readonly secrets: readonly string[];
  /** Fixed target `owner/repo`, or the fallback when `repoFromTags` finds no tag. */
  readonly repo: string | null;
  /** Take the repo from the saucectl tag `ci:repo:<owner/repo>`, only within `allow`. */
  readonly repoFromTags: boolean;
  /** Owners (`acme`) and repos (`acme/web`) a tag may name. Lower-case. */
  readonly allow: readonly string[];
  readonly filters: RouteFilters;
  readonly eventType: string;
  readonly region: Region;
  /** Accept requests with no `saucelabs-sign` (only with a URL token in the path). */
  readonly allowUnsigned: boolean;
  readonly urlToken: string | null;
}

export interface GitHubConfig {
  readonly token: string | null;
  readonly appId: string | null;
  readonly privateKey: string | null;
  readonly apiUrl: string | null;
}

export interface RelayConfig {
  readonly mode: 'quick' | 'full';
  /** The config file, in full mode. */
  readonly source: string | null;
  readonly port: number;
  readonly host: string;
  readonly dataDir: string;
  readonly bodyLimitBytes: number;
  readonly dedupWindowMs: number;
  readonly groupWindowMs: number;
  readonly maxAgeMs: number;
  /** Dispatcher claim lease; null = the dispatcher's default (30 s). */
  readonly leaseMs: number | null;
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  /** `RELAY_MAX_CONNECTIONS` / `max_connections`. */
  readonly maxConnections: number;
  /** `RELAY_MAX_BUFFERED` / `max_buffered`: body bytes held at once over all requests. */
  readonly maxBufferedBytes: number;
  /** `RELAY_STALE_AFTER` / `stale_after`: job events older than this by their own time are refused (202 filtered). */
  readonly staleAfterMs: number;
  /** `RELAY_METRICS_TOKEN` / `metrics_token`: when set, GET /metrics needs `Authorization: Bearer <token>`. */
  readonly metricsToken: string | null;
  readonly github: GitHubConfig;
  /** No GitHub credentials: log each dispatch instead of sending it. */
  readonly dryRun: boolean;
  readonly routes: readonly RouteConfig[];
  /** Quick mode with no SAUCE_WEBHOOK_SECRET: the caller generates one and persists it. */
  readonly needsGeneratedSecret: boolean;
  readonly logLevel: string | null;
  /** Re-read Visual builds awaiting review from Sauce's API; null = off (no Sauce credentials). */
  readonly visualRefresh: VisualRefreshConfig | null;
}

export interface VisualRefreshConfig {
  /** `SAUCE_USERNAME` / `SAUCE_ACCESS_KEY`: the account that can read the Visual builds. */
  readonly username: string;
  readonly accessKey: string;
  /** Base interval between re-reads of one build (`RELAY_VISUAL_REFRESH_INTERVAL`, default 60 s). */
  readonly intervalMs: number;
  /** Stop re-reading a build this long after it was first seen (`RELAY_VISUAL_REFRESH_FOR`, default 3 days). */
  readonly watchForMs: number;
  /** `SAUCE_API_URL`: one API origin for every build (a proxy, or a test double); null = by data center. */
  readonly apiUrl: string | null;
}

export type ConfigResult =
  | { readonly ok: true; readonly config: RelayConfig; readonly warnings: readonly string[] }
  | { readonly ok: false; readonly errors: readonly string[] };

export type Env = Readonly<Record<string, string | undefined>>;

// ---------------------------------------------------------------------------------------------
// Units

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1000,
  k: 1024,
  kib: 1024,
  mb: 1000 * 1000,
  m: 1024 * 1024,
  mib: 1024 * 1024,
};

/** `500ms`, `2s`, `10m`, `3h`, `7d` or a bare number of milliseconds. */
export function parseDuration(value: string | number): number | null {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? Math.round(value) : null;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/i.exec(value);
  if (!m || m[1] === undefined) return null;
  const unit = DURATION_UNITS[(m[2] ?? 'ms').toLowerCase()] ?? 1;
  return Math.round(Number(m[1]) * unit);
}

/** `1MiB`, `512KiB`, `1mb`, `65536` (bytes). */
export function parseSize(value: string | number): number | null {
  if (typeof value === 'number') return Number.isInteger(value) && value > 0 ? value : null;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(value);
  if (!m || m[1] === undefined) return null;
  const unit = SIZE_UNITS[(m[2] || 'b').toLowerCase()];
  if (unit === undefined) return null;
  const bytes = Math.floor(Number(m[1]) * unit);
  return bytes > 0 ? bytes : null;
}

// ---------------------------------------------------------------------------------------------
// Schema of the config file (snake_case, as users write YAML)

const REPO_RE = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})\/[A-Za-z0-9._-]{1,100}$/;
const OWNER_RE = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$/;
const ROUTE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
const URL_TOKEN_RE = /^[A-Za-z0-9_-]+$/;

export function isRepoName(value: string): boolean {
  return REPO_RE.test(value) && !value.split('/')[1]!.startsWith('.') && !value.includes('..');
}

const duration = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const ms = parseDuration(v);
  if (ms === null) {
    ctx.addIssue({ code: 'custom', message: `"${String(v)}" is not a duration: write e.g. 500ms, 2s, 10m, 3h, 7d` });
    return z.NEVER;
  }
  return ms;
});

const size = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const bytes = parseSize(v);
  if (bytes === null) {
    ctx.addIssue({ code: 'custom', message: `"${String(v)}" is not a size: write e.g. 1MiB, 512KiB or a number of bytes` });
    return z.NEVER;
  }
  return bytes;
});

const stringList = z
  .union([z.string().min(1), z.number().transform(String), z.array(z.union([z.string().min(1), z.number().transform(String)])).min(1)])
  .transform((v) => (Array.isArray(v) ? v : [v]));

const filtersSchema = z.strictObject({
  families: z
    .union([z.enum(FAMILIES), z.array(z.enum(FAMILIES)).min(1)], {
      error: `expected one or a list of ${FAMILIES.join(', ')}`,
    })
    .transform((v) => (Array.isArray(v) ? v : [v]))
    .optional(),
  failed_only: z.boolean().optional(),
  team_id: stringList.optional(),
  org_id: stringList.optional(),
  owner: stringList.optional(),
  build: stringList.optional(),
  project: stringList.optional(),
});

const routeSchema = z
  .strictObject({
    name: z.string().regex(ROUTE_NAME_RE, 'use letters, digits, "-" or "_" (it becomes the URL path /webhook/<name>)'),
    secrets: z.array(z.string().min(1, 'a secret cannot be empty')).optional(),
    secret: z.string().min(1, 'a secret cannot be empty').optional(),
    repo: z.string().refine(isRepoName, 'expected "owner/repo"').optional(),
    repo_from_tags: z.boolean().optional(),
    allow: z.array(z.string().refine((v) => OWNER_RE.test(v) || isRepoName(v), 'expected an owner ("acme") or a repo ("acme/web")')).optional(),
    filters: filtersSchema.optional(),
    event_type: z.string().refine(validEventType, 'expected 1 to 100 characters').optional(),
    region: z
      .string()
      .refine(isRegion, `expected one of ${REGIONS.join(', ')}`)
      .optional(),
    allow_unsigned: z.boolean().optional(),
    url_token: z
      .string()
      .min(MIN_URL_TOKEN_CHARS, `must be at least ${MIN_URL_TOKEN_CHARS} random characters (e.g. openssl rand -hex 24)`)
      .regex(URL_TOKEN_RE, 'use only letters, digits, "-" and "_" (it is part of the URL)')
      .optional(),
  })
  .superRefine((r, ctx) => {
    const secrets = [...(r.secrets ?? []), ...(r.secret ? [r.secret] : [])];
    if (secrets.length === 0 && !r.allow_unsigned) {
      ctx.addIssue({
        code: 'custom',
        path: ['secrets'],
        message: 'a route needs at least one secret: add secrets: ["${SAUCE_SECRET}"] (or opt in with allow_unsigned + url_token)',
      });
    }
    if (r.allow_unsigned && !r.url_token) {
      ctx.addIssue({
        code: 'custom',
        path: ['url_token'],
        message: `allow_unsigned needs a url_token of at least ${MIN_URL_TOKEN_CHARS} random characters (e.g. openssl rand -hex 24)`,
      });
    }
    if (!r.repo && !r.repo_from_tags) {
      ctx.addIssue({ code: 'custom', path: ['repo'], message: 'set repo: owner/repo, or repo_from_tags: true with an allow list' });
    }
    if (r.repo_from_tags && (r.allow ?? []).length === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['allow'],
        message: 'repo_from_tags needs an allow list of owners or owner/repo the tag may name',
      });
    }
  });

const fileSchema = z.strictObject({
  port: z.number().int().min(0).max(65535).optional(),
  host: z.string().min(1).optional(),
  data_dir: z.string().min(1).optional(),
  body_limit: size.optional(),
  dedup_window: duration.optional(),
  group_window: duration.optional(),
  max_age: duration.optional(),
  lease: duration.optional(),
  headers_timeout: duration.optional(),
  request_timeout: duration.optional(),
  max_connections: z.number().int().positive().optional(),
  max_buffered: size.optional(),
  stale_after: duration.optional(),
  metrics_token: z.string().min(1).optional(),
  log_level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).optional(),
  github: z
    .strictObject({
      token: z.string().min(1).optional(),
      app_id: z.union([z.string().min(1), z.number().transform(String)]).optional(),
      private_key: z.string().min(1).optional(),
      api_url: z.url('expected a URL such as https://ghe.example.com/api/v3').optional(),
    })
    .optional(),
  routes: z.array(routeSchema).min(1, 'define at least one route'),
});

type FileConfig = z.infer<typeof fileSchema>;
type FileRoute = z.infer<typeof routeSchema>;

// ---------------------------------------------------------------------------------------------

function issuesToErrors(error: z.ZodError, prefix: string, root: unknown): string[] {
  return error.issues.map((issue) => {
    const parts: string[] = [];
    let node: unknown = root;
    for (const key of issue.path) {
      if (typeof key === 'number') {
        const name = Array.isArray(node) && isRecord(node[key]) ? node[key]['name'] : undefined;
        parts.push(typeof name === 'string' ? `[${key}:${name}]` : `[${key}]`);
        node = Array.isArray(node) ? node[key] : undefined;
      } else {
        parts.push(parts.length === 0 ? String(key) : `.${String(key)}`);
        node = isRecord(node) ? node[String(key)] : undefined;
      }
    }
    const field = parts.join('') || '(root)';
    let message = issue.message;
    if (issue.code === 'unrecognized_keys') message = `unknown field(s) ${issue.keys.join(', ')}: remove or fix the spelling`;
    return `${prefix}${field}: ${message}`;
  });
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Replace `${NAME}` in every string of the parsed file with the environment's value. */
function expandEnv(value: unknown, env: Env, path: string, errors: string[]): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_m, name: string) => {
      const v = env[name];
      if (v === undefined || v === '') {
        errors.push(`${path || '(root)'}: environment variable ${name} is not set: export it or write the value in the file`);
        return '';
      }
      return v;
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => expandEnv(v, env, `${path}[${i}]`, errors));
  if (isRecord(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = expandEnv(v, env, path ? `${path}.${k}` : k, errors);
    return out;
  }
  return value;
}

function splitList(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

function envGitHub(env: Env, file?: FileConfig['github']): GitHubConfig {
  const pick = (a: string | undefined, b: string | undefined): string | null => (a && a.trim() !== '' ? a : b && b.trim() !== '' ? b : null);
  const key = pick(file?.private_key, env.GITHUB_APP_PRIVATE_KEY);
  return {
    token: pick(file?.token, env.GITHUB_TOKEN),
    appId: pick(file?.app_id, env.GITHUB_APP_ID),
    // Keys pasted into env often carry literal "\n".
    privateKey: key ? key.replace(/\\n/g, '\n') : null,
    apiUrl: pick(file?.api_url, env.GITHUB_API_URL),
  };
}

function checkGitHub(gh: GitHubConfig, errors: string[]): void {
  if (gh.appId && !gh.privateKey) errors.push('GITHUB_APP_PRIVATE_KEY: GITHUB_APP_ID is set but the App private key is not: set both, or neither');
  if (gh.privateKey && !gh.appId) errors.push('GITHUB_APP_ID: GITHUB_APP_PRIVATE_KEY is set but the App id is not: set both, or neither');
  if (gh.apiUrl) {
    try {
      const u = new URL(gh.apiUrl);
      if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error();
    } catch {
      errors.push(`GITHUB_API_URL: "${gh.apiUrl}" is not a URL: use e.g. https://ghe.example.com/api/v3`);
    }
  }
}

function envNumber<T>(env: Env, name: string, parse: (v: string) => T | null, fallback: T, hint: string, errors: string[]): T {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const v = parse(raw);
  if (v === null) {
    errors.push(`${name}: "${raw}" is not valid: ${hint}`);
    return fallback;
  }
  return v;
}

const parsePort = (v: string): number | null => (/^\d+$/.test(v.trim()) && Number(v) <= 65535 ? Number(v) : null);

/** Settings that both modes read from env (and the file may override). */
function envSettings(env: Env, errors: string[]) {
  const durationHint = 'write e.g. 500ms, 2s, 10m, 3h, 7d';
  return {
    port: envNumber(env, 'PORT', parsePort, DEFAULTS.port as number, 'use a port number 0-65535', errors),
    host: env.RELAY_HOST && env.RELAY_HOST.trim() !== '' ? env.RELAY_HOST.trim() : DEFAULTS.host,
    dataDir: env.RELAY_DATA_DIR && env.RELAY_DATA_DIR.trim() !== '' ? env.RELAY_DATA_DIR : DEFAULTS.dataDir,
    bodyLimitBytes: envNumber(env, 'RELAY_BODY_LIMIT', parseSize, DEFAULTS.bodyLimitBytes as number, 'write e.g. 1MiB or a number of bytes', errors),
    dedupWindowMs: envNumber(env, 'RELAY_DEDUP_WINDOW', parseDuration, DEFAULTS.dedupWindowMs as number, durationHint, errors),
    groupWindowMs: envNumber(env, 'RELAY_GROUP_WINDOW', parseDuration, DEFAULTS.groupWindowMs as number, durationHint, errors),
    maxAgeMs: envNumber(env, 'RELAY_MAX_AGE', parseDuration, DEFAULTS.maxAgeMs as number, durationHint, errors),
    leaseMs: envNumber<number | null>(env, 'RELAY_LEASE', parseDuration, null, durationHint, errors),
    headersTimeoutMs: envNumber(env, 'RELAY_HEADERS_TIMEOUT', parseDuration, DEFAULTS.headersTimeoutMs as number, durationHint, errors),
    requestTimeoutMs: envNumber(env, 'RELAY_REQUEST_TIMEOUT', parseDuration, DEFAULTS.requestTimeoutMs as number, durationHint, errors),
    maxConnections: envNumber(
      env,
      'RELAY_MAX_CONNECTIONS',
      (v) => (/^\d+$/.test(v.trim()) && Number(v) > 0 ? Number(v) : null),
      DEFAULTS.maxConnections as number,
      'a whole number above 0',
      errors,
    ),
    maxBufferedBytes: envNumber(env, 'RELAY_MAX_BUFFERED', parseSize, DEFAULTS.maxBufferedBytes as number, 'write e.g. 32MiB or a number of bytes', errors),
    staleAfterMs: envNumber(env, 'RELAY_STALE_AFTER', parseDuration, DEFAULTS.staleAfterMs as number, durationHint, errors),
    metricsToken: env.RELAY_METRICS_TOKEN && env.RELAY_METRICS_TOKEN.trim() !== '' ? env.RELAY_METRICS_TOKEN.trim() : null,
    logLevel: env.LOG_LEVEL && env.LOG_LEVEL.trim() !== '' ? env.LOG_LEVEL.trim() : null,
    visualRefresh: envVisualRefresh(env, durationHint, errors),
  };
}

function envVisualRefresh(env: Env, durationHint: string, errors: string[]): VisualRefreshConfig | null {
  const username = env.SAUCE_USERNAME?.trim() || null;
  const accessKey = env.SAUCE_ACCESS_KEY?.trim() || null;
  const intervalMs = envNumber(env, 'RELAY_VISUAL_REFRESH_INTERVAL', parseDuration, DEFAULTS.visualRefreshIntervalMs as number, durationHint, errors);
  const watchForMs = envNumber(env, 'RELAY_VISUAL_REFRESH_FOR', parseDuration, DEFAULTS.visualRefreshForMs as number, durationHint, errors);
  const apiUrl = env.SAUCE_API_URL?.trim() || null;
  if (apiUrl !== null) {
    let ok = false;
    try {
      const u = new URL(apiUrl);
      ok = (u.protocol === 'https:' || u.protocol === 'http:') && u.username === '' && u.password === '';
    } catch {
      ok = false;
    }
    if (!ok) errors.push(`SAUCE_API_URL: "${apiUrl}" is not a URL: use e.g. https://api.eu-central-1.saucelabs.com, or unset it`);
  }
  if ((username === null) !== (accessKey === null)) {
    errors.push(
      `${username === null ? 'SAUCE_USERNAME' : 'SAUCE_ACCESS_KEY'}: Visual refresh needs both SAUCE_USERNAME and SAUCE_ACCESS_KEY: set both, or neither`,
    );
    return null;
  }
  if (username === null || accessKey === null || intervalMs === 0) return null;
  return { username, accessKey, intervalMs, watchForMs, apiUrl };
}

const NO_FILTERS: RouteFilters = {
  families: null,
  failedOnly: false,
  teamId: null,
  orgId: null,
  owner: null,
  build: null,
  project: null,
};

function quickConfig(env: Env): ConfigResult {
  const errors: string[] = [];
  const warnings: string[] = [];
  const settings = envSettings(env, errors);
  const github = envGitHub(env);
  checkGitHub(github, errors);
  const dryRun = !github.token && !(github.appId && github.privateKey);
  const secrets = splitList(env.SAUCE_WEBHOOK_SECRET);
  let repo = env.GITHUB_REPOSITORY?.trim() || null;
  if (repo !== null && !isRepoName(repo)) {
    errors.push(`GITHUB_REPOSITORY: "${repo}" is not owner/repo: set it to the repository whose workflow handles Sauce events`);
  }
  if (repo === null) {
    if (dryRun) {
      repo = DEFAULTS.dryRunRepo;
      warnings.push(`GITHUB_REPOSITORY is not set: dry-run dispatches name ${repo}`);
    } else {
      errors.push('GITHUB_REPOSITORY: set the target owner/repo (GitHub credentials are set, so the relay would dispatch)');
    }
  }
  const eventType = env.RELAY_EVENT_TYPE?.trim() || DEFAULTS.eventType;
  if (!validEventType(eventType)) errors.push('RELAY_EVENT_TYPE: expected 1 to 100 characters');
  const region = env.SAUCE_REGION?.trim() || DEFAULT_REGION;
  if (!isRegion(region)) errors.push(`SAUCE_REGION: "${region}" is not a region: use one of ${REGIONS.join(', ')}`);
  if (dryRun) warnings.push('no GITHUB_TOKEN or GITHUB_APP_ID/GITHUB_APP_PRIVATE_KEY: dry-run, dispatches are logged, not sent');
  if (errors.length > 0) return { ok: false, errors };
  const route: RouteConfig = {
    name: 'default',
    path: '/webhook',
    secrets,
    repo,
    repoFromTags: false,
    allow: repo ? [repo.toLowerCase()] : [],
    filters: NO_FILTERS,
    eventType,
    region: region as Region,
    allowUnsigned: false,
    urlToken: null,
  };
  return {
    ok: true,
    warnings,
    config: {
      mode: 'quick',
      source: null,
      ...settings,
      github,
      dryRun,
      routes: [route],
      needsGeneratedSecret: secrets.length === 0,
    },
  };
}

function toRoute(r: FileRoute): RouteConfig {
  const secrets = [...(r.secrets ?? []), ...(r.secret ? [r.secret] : [])];
  const allow = new Set((r.allow ?? []).map((a) => a.toLowerCase()));
  if (r.repo) allow.add(r.repo.toLowerCase());
  const f = r.filters ?? {};
  return {
    name: r.name,
    path: r.url_token ? `/webhook/${r.name}/${r.url_token}` : `/webhook/${r.name}`,
    secrets,
    repo: r.repo ?? null,
    repoFromTags: r.repo_from_tags ?? false,
    allow: [...allow],
    filters: {
      families: f.families ?? null,
      failedOnly: f.failed_only ?? false,
      teamId: f.team_id ?? null,
      orgId: f.org_id ?? null,
      owner: f.owner ?? null,
      build: f.build ?? null,
      project: f.project ?? null,
    },
    eventType: r.event_type ?? DEFAULTS.eventType,
    region: (r.region as Region | undefined) ?? DEFAULT_REGION,
    allowUnsigned: r.allow_unsigned ?? false,
    urlToken: r.url_token ?? null,
  };
}

/** Parse a config file's text (YAML is a superset of JSON, so one parser reads both). */
export function parseConfigText(text: string, env: Env, source: string): ConfigResult {
  let raw: unknown;
  try {
    raw = parseYaml(text, { prettyErrors: true });
  } catch (err) {
    const first = (err instanceof Error ? err.message : String(err)).split('\n')[0];
    return { ok: false, errors: [`${source}: not valid YAML or JSON: ${first}`] };
  }
  if (!isRecord(raw)) return { ok: false, errors: [`${source}: expected a mapping with a routes: list at the top level`] };
  const errors: string[] = [];
  const expanded = expandEnv(raw, env, '', errors);
  const parsed = fileSchema.safeParse(expanded);
  if (!parsed.success) errors.push(...issuesToErrors(parsed.error, `${source}: `, expanded));
  if (errors.length > 0 || !parsed.success) return { ok: false, errors };
  const file = parsed.data;
  const settingErrors: string[] = [];
  const settings = envSettings(env, settingErrors);
  const github = envGitHub(env, file.github);
  checkGitHub(github, settingErrors);
  const names = new Set<string>();
  file.routes.forEach((r, i) => {
    const key = r.name.toLowerCase();
    if (names.has(key)) settingErrors.push(`${source}: routes[${i}:${r.name}].name: duplicate route name: give each route its own name`);
    names.add(key);
  });
  if (settingErrors.length > 0) return { ok: false, errors: settingErrors };
  const routes = file.routes.map(toRoute);
  const dryRun = !github.token && !(github.appId && github.privateKey);
  const warnings: string[] = [];
  if (dryRun) warnings.push('no GitHub credentials: dry-run, dispatches are logged, not sent');
  for (const r of routes) {
    if (r.allowUnsigned) warnings.push(`route ${r.name}: accepts unsigned requests (anyone with its URL can post events)`);
  }
  return {
    ok: true,
    warnings,
    config: {
      mode: 'full',
      source,
      port: file.port ?? settings.port,
      host: file.host ?? settings.host,
      dataDir: file.data_dir ?? settings.dataDir,
      bodyLimitBytes: file.body_limit ?? settings.bodyLimitBytes,
      dedupWindowMs: file.dedup_window ?? settings.dedupWindowMs,
      groupWindowMs: file.group_window ?? settings.groupWindowMs,
      maxAgeMs: file.max_age ?? settings.maxAgeMs,
      leaseMs: file.lease ?? settings.leaseMs,
      headersTimeoutMs: file.headers_timeout ?? settings.headersTimeoutMs,
      requestTimeoutMs: file.request_timeout ?? settings.requestTimeoutMs,
      maxConnections: file.max_connections ?? settings.maxConnections,
      maxBufferedBytes: file.max_buffered ?? settings.maxBufferedBytes,
      staleAfterMs: file.stale_after ?? settings.staleAfterMs,
      metricsToken: file.metrics_token ?? settings.metricsToken,
      logLevel: file.log_level ?? settings.logLevel,
      visualRefresh: settings.visualRefresh,
      github,
      dryRun,
      routes,
      needsGeneratedSecret: false,
    },
  };
}

/** Quick mode from env, or full mode from the file `RELAY_CONFIG` names. */
export function loadConfig(env: Env = process.env, options: { readFile?: (path: string) => string; cwd?: string } = {}): ConfigResult {
  const file = env.RELAY_CONFIG?.trim();
  if (!file) return quickConfig(env);
  const path = isAbsolute(file) ? file : resolve(options.cwd ?? process.cwd(), file);
  let text: string;
  try {
    text = (options.readFile ?? ((p: string) => readFileSync(p, 'utf8')))(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    return { ok: false, errors: [`RELAY_CONFIG: cannot read ${path} (${code}): check the path, or unset RELAY_CONFIG for quick mode`] };
  }
  return parseConfigText(text, env, file);
}

/** Replace the quick-mode route's (empty) secrets with a generated one. */
export function withSecrets(config: RelayConfig, secrets: readonly string[]): RelayConfig {
  return {
    ...config,
    needsGeneratedSecret: false,
    routes: config.routes.map((r, i) => (i === 0 && config.mode === 'quick' ? { ...r, secrets } : r)),
  };
}

/** A summary safe to print or log: no secrets, no tokens, no URL tokens. */
export function describeConfig(config: RelayConfig): Record<string, unknown> {
  return {
    mode: config.mode,
    source: config.source,
    listen: `${config.host}:${config.port}`,
    dataDir: config.dataDir,
    bodyLimitBytes: config.bodyLimitBytes,
    dedupWindowMs: config.dedupWindowMs,
    groupWindowMs: config.groupWindowMs,
    maxAgeMs: config.maxAgeMs,
    dryRun: config.dryRun,
    visualRefresh: config.visualRefresh
      ? { intervalMs: config.visualRefresh.intervalMs, watchForMs: config.visualRefresh.watchForMs, apiUrl: config.visualRefresh.apiUrl ?? 'by data center' }
      : 'off',
    github: {
      auth: config.github.token ? 'token' : config.github.appId ? 'app' : 'none',
      apiUrl: config.github.apiUrl ?? 'https://api.github.com',
    },
    routes: config.routes.map((r) => ({
      name: r.name,
      path: r.urlToken ? r.path.replace(r.urlToken, '<url_token>') : r.path,
      secrets: r.secrets.length,
      repo: r.repo,
      repoFromTags: r.repoFromTags,
      allow: r.allow,
      eventType: r.eventType,
      region: r.region,
      allowUnsigned: r.allowUnsigned,
      filters: r.filters,
    })),
  };
}
