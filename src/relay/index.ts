/**
 * The relay's public surface: the runtime-neutral handler, the Node server, the serverless
 * adapters, configuration, routing and signatures. The CLI is `lib/relay/cli.js` (bin sauce-relay).
 */
export { signBody, verifySignature, parseSignatureHeader, safeEqualText, SIGNATURE_HEADER } from './http/signature.js';
export {
  loadConfig,
  parseConfigText,
  describeConfig,
  withSecrets,
  parseDuration,
  parseSize,
  readDuration,
  readSize,
  redactUrl,
  isRepoName,
  DEFAULTS,
  LOG_LEVELS,
  type LogLevel,
  type UnitProblem,
  type UnitResult,
  type RelayConfig,
  type RouteConfig,
  type RouteFilters,
  type GitHubConfig,
  type VisualRefreshConfig,
  type ConfigResult,
  type Env,
} from './config/index.js';
export { routeEvent, filterReason, isAllowed, isFailure, matchesPattern, type RouteDecision } from './http/route.js';
export {
  createHandler,
  jsonResponse,
  type RelayHandler,
  type RelayRequest,
  type RelayResponse,
  type HandlerOptions,
  type DispatchClientLike,
  type DispatchOutcome,
} from './http/handler.js';
export { createRelayServer, startRelay, type RelayServer, type RunningRelay, type StartRelayDeps } from './http/server.js';
export { createFetchHandler, readCapped, type FetchHandler } from './http/adapters/fetch.js';
export { createLambdaHandler, type LambdaHandler, type LambdaHttpEvent, type LambdaHttpResult } from './http/adapters/lambda.js';
export type { DirectOptions } from './http/adapters/direct.js';
export type { EventStore, NewEvent, StoredEvent, InsertResult, StoreStats, EventState, StoreReadiness } from './outbox/store.js';
export { createMetrics, type RelayMetrics } from './metrics.js';
export { createLogger, type Logger } from './logger.js';
