/**
 * Relay configuration.
 *
 * - Quick mode (no `RELAY_CONFIG`): everything from the environment, one route `default` at
 *   `POST /webhook`, the target repo from `GITHUB_REPOSITORY`.
 * - Full mode (`RELAY_CONFIG=<file>`, YAML or JSON): several routes, each at
 *   `POST /webhook/<name>` (or `/webhook/<name>/<url_token>` when it has a URL token). A setting
 *   in the file overrides its environment variable.
 *
 * Both sources go through the same zod schema per setting (schema.ts), then the rules between
 * settings (rules.ts). Every error names the setting and says how to fix it, and every error is
 * reported at once. Pure apart from reading the config file through the `readFile` it is given.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { DEFAULT_REGION, type Region } from '../../sauce/urls.js';
import { envMessages, fileMessages, formatPath } from './errors.js';
import { parseFields } from './fields.js';
import { envNameOf, envToDoc } from './env.js';
import { type DocIssue, expandEnv, parseFileText } from './file.js';
import { canDispatch, githubRules, type Namer, settingRules } from './rules.js';
import { formatDuration } from './units.js';
import { type EnvSettings, envSchema, type FileRoute, type FileSettings, fileSchema } from './schema.js';
import {
  type ConfigResult,
  DEFAULTS,
  type Env,
  type GitHubConfig,
  type RelayConfig,
  type RouteConfig,
  type RouteFilters,
  type VisualRefreshConfig,
} from './types.js';

export { describeConfig } from './describe.js';
export { isRepoName } from './schema.js';
export { formatDuration, formatSize, parseDuration, parseSize, readDuration, readSize, type UnitProblem, type UnitResult } from './units.js';
export { redactUrl } from './url.js';
export * from './types.js';

const NO_FILTERS: RouteFilters = {
  families: null,
  failedOnly: false,
  teamId: null,
  orgId: null,
  owner: null,
  build: null,
  project: null,
};

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

function at(doc: unknown, path: readonly string[]): unknown {
  let node = doc;
  for (const key of path) node = typeof node === 'object' && node !== null ? (node as Record<string, unknown>)[key] : undefined;
  return node;
}

/** Schema issues at a place whose `${VAR}` already failed to expand would say the same thing twice. */
function notAt(expansion: readonly DocIssue[]) {
  return (issue: DocIssue) => !expansion.some((e) => e.path.length === issue.path.length && e.path.every((k, i) => issue.path[i] === k));
}

type FileInput = { readonly source: string; readonly text: string } | { readonly source: string; readonly unreadable: string };

interface Source<T> {
  readonly data: T;
  /** Settings set but invalid (dotted paths): rules that read them are skipped. */
  readonly invalid: ReadonlySet<string>;
}

interface ParsedFile extends Source<Partial<FileSettings>> {
  readonly source: string;
}

/** The file's valid settings, and its errors (each named `source: field`). */
function readFileSettings(file: FileInput, env: Env, errors: string[]): ParsedFile | null {
  if ('unreadable' in file) {
    errors.push(file.unreadable);
    return null;
  }
  const parsed = parseFileText(file.text);
  if (!parsed.ok) {
    errors.push(`${file.source}: ${parsed.error}`);
    return null;
  }
  const expansion: DocIssue[] = [];
  const expanded = expandEnv(parsed.doc, env, expansion);
  const fields = parseFields(fileSchema, expanded, { strict: true });
  const data = fields.data as Partial<FileSettings>;
  const issues = [...expansion, ...fields.issues.filter(notAt(expansion))];
  const names = new Set<string>();
  (data.routes ?? []).forEach((r, i) => {
    const key = r.name.toLowerCase();
    if (names.has(key)) issues.push({ path: ['routes', i, 'name'], message: 'duplicate route name: give each route its own name' });
    names.add(key);
  });
  errors.push(...fileMessages(issues, file.source, expanded));
  // A setting whose ${VAR} failed is invalid too (its schema may have taken the empty text).
  const invalid = new Set([...fields.invalid, ...expansion.map((e) => e.path.filter((k) => typeof k === 'string').join('.'))]);
  return { source: file.source, data, invalid };
}

function resolveConfig(env: Env, input: FileInput | null): ConfigResult {
  const errors: string[] = [];
  const fields = parseFields(envSchema, envToDoc(env, input ? 'full' : 'quick'), { strict: false });
  errors.push(...envMessages(fields.issues));
  const fromEnv: Source<EnvSettings> = { data: fields.data as EnvSettings, invalid: fields.invalid };
  const file = input ? readFileSettings(input, env, errors) : null;
  if (input && !file) return { ok: false, errors };
  return combine(fromEnv, file, errors);
}

/** Merge the sources (the file wins), then the rules between the settings that are valid. */
function combine(fromEnv: Source<EnvSettings>, file: ParsedFile | null, errors: string[]): ConfigResult {
  const e = fromEnv.data;
  const f: Partial<FileSettings> = file?.data ?? {};
  const warnings: string[] = [];
  const invalid = (setting: string) => fromEnv.invalid.has(setting) || (file?.invalid.has(setting) ?? false);
  const named: Namer = (setting) => {
    const path = setting.split('.');
    const valid = !invalid(setting);
    if (file && at(f, path) !== undefined) return { where: `${file.source}: ${formatPath(path, f)}`, name: setting, isDefault: false, valid };
    const name = envNameOf(...path);
    return { where: name, name, isDefault: at(e, path) === undefined, valid };
  };

  const settings = {
    port: f.port ?? e.port ?? DEFAULTS.port,
    host: f.host ?? e.host ?? DEFAULTS.host,
    dataDir: f.data_dir ?? e.data_dir ?? DEFAULTS.dataDir,
    databaseUrl: f.database_url?.trim() ?? e.database_url?.trim() ?? null,
    bodyLimitBytes: f.body_limit ?? e.body_limit ?? DEFAULTS.bodyLimitBytes,
    dedupWindowMs: f.dedup_window ?? e.dedup_window ?? DEFAULTS.dedupWindowMs,
    groupWindowMs: f.group_window ?? e.group_window ?? DEFAULTS.groupWindowMs,
    maxAgeMs: f.max_age ?? e.max_age ?? DEFAULTS.maxAgeMs,
    leaseMs: f.lease ?? e.lease ?? null,
    headersTimeoutMs: f.headers_timeout ?? e.headers_timeout ?? DEFAULTS.headersTimeoutMs,
    requestTimeoutMs: f.request_timeout ?? e.request_timeout ?? DEFAULTS.requestTimeoutMs,
    maxConnections: f.max_connections ?? e.max_connections ?? DEFAULTS.maxConnections,
    maxBufferedBytes: f.max_buffered ?? e.max_buffered ?? DEFAULTS.maxBufferedBytes,
    staleAfterMs: f.stale_after ?? e.stale_after ?? DEFAULTS.staleAfterMs,
    metricsToken: f.metrics_token ?? e.metrics_token ?? null,
    adminToken: f.admin_token ?? e.admin_token ?? null,
    logLevel: f.log_level ?? e.log_level ?? null,
  };
  const rules = settingRules(settings, named);
  errors.push(...rules.errors);
  warnings.push(...rules.warnings);

  const github: GitHubConfig = {
    token: f.github?.token ?? e.github.token ?? null,
    appId: f.github?.app_id ?? e.github.app_id ?? null,
    privateKey: f.github?.private_key ?? e.github.private_key ?? null,
    apiUrl: f.github?.api_url?.trim() ?? e.github.api_url?.trim() ?? null,
  };
  const credentials = { token: github.token !== null, appId: github.appId !== null, privateKey: github.privateKey !== null };
  // Whether the relay would dispatch is unknown while a credential is invalid: skip what depends on it.
  const credentialsKnown = ['github.token', 'github.app_id', 'github.private_key'].every((s) => !invalid(s));
  if (credentialsKnown) errors.push(...githubRules(credentials, named));
  const dryRun = !canDispatch(credentials);

  const visualRefresh = visualRefreshOf(e, f.visual_stuck_after ?? e.visual_stuck_after, named, errors, warnings);

  let routes: RouteConfig[];
  let needsGeneratedSecret = false;
  if (file) {
    routes = (f.routes ?? []).map(toRoute);
    if (dryRun) warnings.push('no GitHub credentials: dry-run, dispatches are logged, not sent');
    for (const r of routes) {
      if (r.allowUnsigned) warnings.push(`route ${r.name}: accepts unsigned requests (anyone with its URL can post events)`);
    }
  } else {
    const quick = quickRoute(e, credentialsKnown ? dryRun : null, named, errors, warnings);
    routes = [quick];
    needsGeneratedSecret = quick.secrets.length === 0;
    if (dryRun) warnings.push('no GITHUB_TOKEN or GITHUB_APP_ID/GITHUB_APP_PRIVATE_KEY: dry-run, dispatches are logged, not sent');
  }
  if (errors.length > 0) return { ok: false, errors };
  return {
    ok: true,
    warnings,
    config: { mode: file ? 'full' : 'quick', source: file?.source ?? null, ...settings, github, dryRun, routes, needsGeneratedSecret, visualRefresh },
  };
}

function visualRefreshOf(e: EnvSettings, stuckAfter: number | undefined, named: Namer, errors: string[], warnings: string[]): VisualRefreshConfig | null {
  const { username, access_key: accessKey, api_url: apiUrl } = e.visual_refresh;
  if (!named('visual_refresh.username').valid || !named('visual_refresh.access_key').valid) return null;
  if ((username === undefined) !== (accessKey === undefined)) {
    errors.push(
      `${username === undefined ? 'SAUCE_USERNAME' : 'SAUCE_ACCESS_KEY'}: Visual refresh needs both SAUCE_USERNAME and SAUCE_ACCESS_KEY: set both, or neither`,
    );
    return null;
  }
  const intervalMs = e.visual_refresh.interval ?? DEFAULTS.visualRefreshIntervalMs;
  const stuck = named('visual_stuck_after');
  if (username === undefined || accessKey === undefined || intervalMs === 0) {
    if (stuckAfter !== undefined && stuck.valid) {
      warnings.push(
        `${stuck.where}: has no effect without Visual refresh (SAUCE_USERNAME and SAUCE_ACCESS_KEY): only a build the relay re-reads can be found stuck`,
      );
    }
    return null;
  }
  const watchForMs = e.visual_refresh.for ?? DEFAULTS.visualRefreshForMs;
  const stuckAfterMs = stuckAfter ?? DEFAULTS.visualStuckAfterMs;
  if (stuckAfterMs >= watchForMs && stuck.valid && named('visual_refresh.for').valid) {
    warnings.push(
      `${stuck.where}: ${formatDuration(stuckAfterMs)}${stuck.isDefault ? ', the default,' : ''} is not less than ${named('visual_refresh.for').name} (${formatDuration(watchForMs)}): ` +
        `the relay stops re-reading a build before it could call it stuck; lower it, or 0 to turn it off`,
    );
  }
  return { username, accessKey, intervalMs, watchForMs, stuckAfterMs: stuckAfterMs === 0 ? null : stuckAfterMs, apiUrl: apiUrl?.trim() ?? null };
}

/**
 * The quick-mode route. With GitHub credentials the relay dispatches for real, so it needs the
 * target repository and the webhook's own secret: a generated secret is only for dry-run (with
 * one, every real Sauce delivery would be answered 401).
 */
function quickRoute(e: EnvSettings, dryRun: boolean | null, named: Namer, errors: string[], warnings: string[]): RouteConfig {
  const r = e.route ?? {};
  let repo = r.repo ?? null;
  if (repo === null && dryRun === true && named('route.repo').valid) {
    repo = DEFAULTS.dryRunRepo;
    warnings.push(`GITHUB_REPOSITORY is not set: dry-run dispatches name ${repo}`);
  } else if (repo === null && dryRun === false && named('route.repo').valid) {
    errors.push('GITHUB_REPOSITORY: set the target owner/repo (GitHub credentials are set, so the relay would dispatch)');
  }
  if (r.secrets === undefined && dryRun === false && named('route.secrets').valid) {
    errors.push(
      "SAUCE_WEBHOOK_SECRET: not set, but GitHub credentials are, so the relay would dispatch for real and answer every Sauce delivery 401: set it to the webhook's security token " +
        '(Sauce Labs: Account → Integrations → Webhooks → Show security token); a generated secret is only for dry-run',
    );
  }
  return {
    name: 'default',
    path: '/webhook',
    secrets: r.secrets ?? [],
    repo,
    repoFromTags: false,
    allow: repo ? [repo.toLowerCase()] : [],
    filters: NO_FILTERS,
    eventType: r.event_type ?? DEFAULTS.eventType,
    region: (r.region as Region | undefined) ?? DEFAULT_REGION,
    allowUnsigned: false,
    urlToken: null,
  };
}

/** Full mode from a config file's text, with the environment for `${VAR}` and unset settings. */
export function parseConfigText(text: string, env: Env, source: string): ConfigResult {
  return resolveConfig(env, { source, text });
}

/** Quick mode from env, or full mode from the file `RELAY_CONFIG` names. */
export function loadConfig(env: Env = process.env, options: { readFile?: (path: string) => string; cwd?: string } = {}): ConfigResult {
  const file = env.RELAY_CONFIG?.trim();
  if (!file) return resolveConfig(env, null);
  const path = isAbsolute(file) ? file : resolve(options.cwd ?? process.cwd(), file);
  let text: string;
  try {
    text = (options.readFile ?? ((p: string) => readFileSync(p, 'utf8')))(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    return resolveConfig(env, {
      source: file,
      unreadable: `RELAY_CONFIG: cannot read ${path} (${code}): check the path, or unset RELAY_CONFIG for quick mode`,
    });
  }
  return resolveConfig(env, { source: file, text });
}

/** Replace the quick-mode route's (empty) secrets with a generated one. */
export function withSecrets(config: RelayConfig, secrets: readonly string[]): RelayConfig {
  return {
    ...config,
    needsGeneratedSecret: false,
    routes: config.routes.map((r, i) => (i === 0 && config.mode === 'quick' ? { ...r, secrets } : r)),
  };
}
