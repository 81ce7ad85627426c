/** The validated relay configuration: its types and defaults. */
import type { SauceFamily } from '../../sauce/event.js';
import type { Region } from '../../sauce/urls.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

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
  /** A watched Visual build still QUEUED or RUNNING this long after its first webhook is reported as stuck. */
  visualStuckAfterMs: 2 * 3600_000,
  eventType: 'saucelabs',
  /** A repo placeholder for zero-config dry-run, where nothing is ever sent. */
  dryRunRepo: 'example/dry-run',
} as const;

export const FAMILIES = ['vdc', 'rdc', 'visual'] as const satisfies readonly SauceFamily[];
export const MIN_URL_TOKEN_CHARS = 32;
/** The console's admin token: at least this many characters (a guessable one would open the console). */
export const MIN_ADMIN_TOKEN_CHARS = 32;

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
  /**
   * `RELAY_DATABASE_URL` / `database_url`: the PostgreSQL store shared by several relay instances;
   * null = the SQLite file in `dataDir`.
   */
  readonly databaseUrl: string | null;
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
  /** `RELAY_ADMIN_TOKEN` / `admin_token`: signs in to the delivery console (/console, /api); null = no console. Secret. */
  readonly adminToken: string | null;
  readonly github: GitHubConfig;
  /** No GitHub credentials: log each dispatch instead of sending it. */
  readonly dryRun: boolean;
  readonly routes: readonly RouteConfig[];
  /** Quick mode with no SAUCE_WEBHOOK_SECRET: the caller generates one and persists it. */
  readonly needsGeneratedSecret: boolean;
  /** `LOG_LEVEL` / `log_level`; null = info. */
  readonly logLevel: LogLevel | null;
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
  /**
   * A build still QUEUED or RUNNING this long after its first webhook becomes `error` on GitHub, a
   * verdict of the relay (`RELAY_VISUAL_STUCK_AFTER` / `visual_stuck_after`, default 2 h); null = off.
   */
  readonly stuckAfterMs: number | null;
  /** `SAUCE_API_URL`: one API origin for every build (a proxy, or a test double); null = by data center. */
  readonly apiUrl: string | null;
}

export type ConfigResult =
  | { readonly ok: true; readonly config: RelayConfig; readonly warnings: readonly string[] }
  | { readonly ok: false; readonly errors: readonly string[] };

export type Env = Readonly<Record<string, string | undefined>>;
