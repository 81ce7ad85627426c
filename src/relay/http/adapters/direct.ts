/**
 * Shared by the serverless adapters: build the handler in direct mode (no local store; each
 * accepted event is dispatched inside the request) once, lazily, from a config or the environment.
 */
import { loadConfig, type Env, type RelayConfig } from '../../config/index.js';
import { createDispatchClient } from '../../outbox/dispatch-client.js';
import { createHandler, jsonResponse, type DispatchClientLike, type RelayHandler, type RelayResponse } from '../handler.js';
import { createLogger, type Logger } from '../../logger.js';
import type { RelayMetrics } from '../../metrics.js';

export interface DirectOptions {
  /** A ready config (e.g. `parseConfigText` of a bundled file). Default: quick mode from `env`. */
  readonly config?: RelayConfig;
  /** Environment to read quick-mode settings from. Default: the runtime's env, else process.env. */
  readonly env?: Env;
  /** Dispatch client; default `createDispatchClient` from the config's GitHub credentials. */
  readonly client?: DispatchClientLike;
  readonly logger?: Logger;
  readonly metrics?: RelayMetrics;
  /** Prefix to strip before matching routes (an API Gateway stage such as `/prod`). */
  readonly basePath?: string;
}

export interface DirectCore {
  readonly handler: RelayHandler;
  readonly bodyLimitBytes: number;
}

export type CoreResult = { ok: true; core: DirectCore } | { ok: false; response: RelayResponse };

/** Returns a function that builds the core on first use (Workers only pass env with the request). */
export function lazyDirectCore(options: DirectOptions): (runtimeEnv?: Env) => CoreResult {
  let cached: CoreResult | null = null;
  return (runtimeEnv) => {
    if (cached) return cached;
    const env = options.env ?? runtimeEnv ?? (typeof process !== 'undefined' ? process.env : {});
    const loaded = options.config ? { ok: true as const, config: options.config, warnings: [] } : loadConfig(env);
    // The level is validated with the rest of the config (info when the config is not valid).
    const logger = options.logger ?? createLogger({ level: loaded.ok ? loaded.config.logLevel : null });
    if (!loaded.ok) {
      for (const e of loaded.errors) logger.error(e);
      cached = { ok: false, response: jsonResponse(500, { error: 'relay misconfigured' }) };
      return cached;
    }
    for (const w of loaded.warnings) logger.warn(w);
    const config = loaded.config;
    if (config.needsGeneratedSecret || config.routes.some((r) => r.secrets.length === 0 && !r.allowUnsigned)) {
      logger.error('SAUCE_WEBHOOK_SECRET is required in serverless mode (there is no data dir to keep a generated one)');
      cached = { ok: false, response: jsonResponse(500, { error: 'relay misconfigured' }) };
      return cached;
    }
    const client =
      options.client ??
      createDispatchClient({
        token: config.github.token ?? undefined,
        appId: config.github.appId ?? undefined,
        privateKey: config.github.privateKey ?? undefined,
        apiUrl: config.github.apiUrl ?? undefined,
        logger,
      });
    const handler = createHandler({
      routes: config.routes,
      bodyLimitBytes: config.bodyLimitBytes,
      dedupWindowMs: config.dedupWindowMs,
      staleAfterMs: config.staleAfterMs,
      logger,
      ...(options.metrics ? { metrics: options.metrics } : {}),
      ...(options.basePath ? { basePath: options.basePath } : {}),
      direct: { client },
    });
    cached = { ok: true, core: { handler, bodyLimitBytes: config.bodyLimitBytes } };
    return cached;
  };
}

export function isHealthz(method: string, path: string): boolean {
  return (method === 'GET' || method === 'HEAD') && (path === '/healthz' || path.endsWith('/healthz'));
}
