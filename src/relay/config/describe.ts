/** The configuration as it may be printed or logged: no secrets, no tokens, no URL credentials. */
import type { RelayConfig } from './types.js';
import { redactUrl, shownDatabaseUrl } from './url.js';

export function describeConfig(config: RelayConfig): Record<string, unknown> {
  return {
    mode: config.mode,
    source: config.source,
    listen: `${config.host}:${config.port}`,
    dataDir: config.dataDir,
    store: config.databaseUrl ? `postgres ${shownDatabaseUrl(config.databaseUrl)}` : 'sqlite',
    logLevel: config.logLevel ?? 'info',
    bodyLimitBytes: config.bodyLimitBytes,
    dedupWindowMs: config.dedupWindowMs,
    groupWindowMs: config.groupWindowMs,
    maxAgeMs: config.maxAgeMs,
    leaseMs: config.leaseMs ?? 'default',
    headersTimeoutMs: config.headersTimeoutMs,
    requestTimeoutMs: config.requestTimeoutMs,
    maxConnections: config.maxConnections,
    maxBufferedBytes: config.maxBufferedBytes,
    staleAfterMs: config.staleAfterMs,
    metrics: config.metricsToken ? 'bearer token' : 'open',
    console: config.adminToken ? 'on (admin token)' : 'off',
    dryRun: config.dryRun,
    visualRefresh: config.visualRefresh
      ? {
          intervalMs: config.visualRefresh.intervalMs,
          watchForMs: config.visualRefresh.watchForMs,
          stuckAfterMs: config.visualRefresh.stuckAfterMs ?? 'off',
          apiUrl: config.visualRefresh.apiUrl ? redactUrl(config.visualRefresh.apiUrl) : 'by data center',
        }
      : 'off',
    github: {
      auth: config.github.token ? 'token' : config.github.appId ? 'app' : 'none',
      apiUrl: redactUrl(config.github.apiUrl ?? 'https://api.github.com'),
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
