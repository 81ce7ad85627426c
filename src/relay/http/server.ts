/**
 * The Node server: node:http around the runtime-neutral handler.
 *
 * - Memory is bounded before any signature is checked: at most `maxConnections` connections are
 *   served (a request on a connection past the limit gets 503 + Retry-After and the connection is
 *   closed), and request bodies share a budget of `maxBufferedBytes` (a body that does not fit gets
 *   503 + Retry-After and is not kept). Each body's bytes are taken from the budget as it is read
 *   and given back when its request ends, whatever way it ends.
 * - Reads the body itself, counting bytes as they arrive; a declared Content-Length over the cap is
 *   refused at once, and one under it is not trusted: past the cap it stops buffering and answers
 *   413 (and closes the connection if the sender keeps pushing).
 * - headersTimeout / requestTimeout → 408 (checked every second, not every 30 s).
 * - GET /healthz (alive), GET /readyz (store writable), GET /metrics (Prometheus; with a
 *   `metricsToken`, only for `Authorization: Bearer <token>`, else 401).
 * - stop(): stop accepting, finish the requests in flight, stop the dispatcher, close the store.
 */
import { mkdirSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { RelayConfig } from '../config/index.js';
import { type ConsoleListener, createConsole } from '../console/console.js';
import { createDeliverySource } from '../console/deliveries.js';
import { RequestRecorder } from '../console/requests.js';
import type { ConsoleStore, StoreWithConsole } from '../console/source.js';
import { createDispatchClient } from '../outbox/dispatch-client.js';
import { Dispatcher } from '../outbox/dispatcher.js';
import { BodyBudget, BodyBuffer, type BodyRefusal } from './body.js';
import { createHandler, jsonResponse, type RefusedRequest, type RelayHandler, type RelayResponse } from './handler.js';
import { SIGNATURE_HEADER, safeEqualText } from './signature.js';
import { bearerToken, headerValue } from './headers.js';
import { createLogger, type Logger } from '../logger.js';
import { createMetrics, type RelayMetrics } from '../metrics.js';
import { shownDatabaseUrl } from '../config/url.js';
import { openPostgresStore } from '../outbox/postgres-store.js';
import { openSqliteStore } from '../outbox/sqlite-store.js';
import type { EventStore, StoreReadiness, VisualWatchStore } from '../outbox/store.js';
import { VisualRefresher } from '../visual/visual-refresh.js';

export interface RelayServerOptions {
  readonly handler: RelayHandler;
  readonly bodyLimitBytes: number;
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  /** Connections served at once; a request on one past the limit gets 503 and the connection is closed. */
  readonly maxConnections: number;
  /** Request body bytes held at once over all requests; a body that does not fit gets 503. */
  readonly maxBufferedBytes: number;
  readonly logger: Logger;
  readonly metrics?: RelayMetrics;
  /** For /readyz and the queue-depth gauge. */
  readonly store?: EventStore;
  /** Seconds to put in Retry-After on a 503 for load (default 5). */
  readonly retryAfterSec?: number;
  /** When set, GET /metrics needs `Authorization: Bearer <token>`. */
  readonly metricsToken?: string | null;
  /** The delivery console (console.ts `createConsole`): offered each request first; it takes `/console` and `/api` paths. */
  readonly console?: ConsoleListener | null;
  /** For the console's record: the requests this server refuses itself (408 after its timeouts). Must not throw nor wait. */
  readonly onRefused?: (refused: RefusedRequest) => void;
}

export interface RelayServer {
  readonly server: http.Server;
  /** Requests being handled right now. */
  inFlight(): number;
  /** Request body bytes held right now (taken from the `maxBufferedBytes` budget). */
  bufferedBytes(): number;
  /** Stop accepting; resolve once in-flight requests finished (or `graceMs` passed). */
  drain(graceMs?: number): Promise<void>;
}

function send(res: ServerResponse, response: RelayResponse, close = false): void {
  if (res.headersSent || res.destroyed) return;
  if (close) res.shouldKeepAlive = false;
  // A string body, not a Buffer: node:http then sends the head and the body in one write.
  res.writeHead(response.status, { ...response.headers, 'content-length': String(Buffer.byteLength(response.body)) });
  res.end(response.body);
}

export function isTimeoutCode(code: string): boolean {
  return code === 'ERR_HTTP_REQUEST_TIMEOUT' || code === 'ERR_HTTP_HEADERS_TIMEOUT';
}

/**
 * The answer to a socket node:http reports a client error on (`clientError`), or null to drop the
 * socket: a response already started cannot be followed by another, and a reset peer cannot read one.
 */
export function clientErrorAnswer(code: string, socket: { readonly writable: boolean; readonly responseStarted: boolean }): RelayResponse | null {
  if (!socket.writable || socket.responseStarted || code === 'ECONNRESET' || code === 'HPE_INVALID_EOF_STATE') return null;
  if (isTimeoutCode(code)) return jsonResponse(408, { error: 'request timeout' });
  return jsonResponse(code === 'HPE_HEADER_OVERFLOW' ? 431 : 400, { error: 'bad request' });
}

/** Whether an `Authorization` header carries `Bearer <token>` (compared in constant time); true when no token is set. */
export function bearerAuthorized(header: string | undefined, token: string | null | undefined): boolean {
  if (token === null || token === undefined) return true;
  const given = bearerToken(header);
  return given !== undefined && safeEqualText(given, token);
}

/** How long a closing connection keeps reading (and dropping) what the peer still sends. */
const LINGER_MS = 2000;

/**
 * Close a connection lingering: FIN now (after `answer`, written raw, with `connection: close`),
 * keep reading a little, then drop. An immediate destroy while the peer is still sending would
 * send a reset that can wipe the unread answer from the peer's buffers.
 */
function lingeringClose(socket: Socket, answer?: RelayResponse): void {
  if (answer) {
    const head = Object.entries({ ...answer.headers, connection: 'close', 'content-length': String(Buffer.byteLength(answer.body)) })
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('');
    socket.end(`HTTP/1.1 ${answer.status} ${http.STATUS_CODES[answer.status] ?? ''}\r\n${head}\r\n${answer.body}`);
  } else socket.end();
  setTimeout(() => socket.destroy(), LINGER_MS).unref();
}

/** The body length a request declares (Content-Length without Transfer-Encoding), or null. */
function declaredLength(req: IncomingMessage): number | null {
  if (req.headers['transfer-encoding'] !== undefined) return null;
  const raw = req.headers['content-length'];
  // node:http has already refused a malformed or conflicting Content-Length.
  return raw === undefined ? null : Number(raw);
}

export function createRelayServer(options: RelayServerOptions): RelayServer {
  const { handler, logger, metrics, store } = options;
  const cap = options.bodyLimitBytes;
  /** After a refusal, bytes read and discarded before the connection is cut. */
  const drainLimit = cap + Math.max(4 * cap, 4 * 1024 * 1024);
  const requestTimeout = Math.max(1, options.requestTimeoutMs);
  const headersTimeout = Math.max(1, Math.min(options.headersTimeoutMs, requestTimeout));
  const budget = new BodyBudget(options.maxBufferedBytes);
  const retryAfter = String(options.retryAfterSec ?? 5);
  let active = 0;
  let connections = 0;
  /** Connections accepted past `maxConnections`: their request gets a 503 and they are closed. */
  const overLimit = new WeakSet<Socket>();
  /** The response being written on each socket, so a client error after it started does not answer twice. */
  const responding = new WeakMap<Socket, ServerResponse>();
  /** Per request whose body is being read: its route and the bytes read so far, for the record of one that times out. */
  const reading = new WeakMap<IncomingMessage, { readonly route: string; readonly bytes: () => number }>();
  let stopping = false;
  let idle: (() => void) | null = null;

  const server = http.createServer(
    {
      headersTimeout,
      requestTimeout,
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(headersTimeout / 2))),
      keepAliveTimeout: 5000,
    },
    (req, res) => {
      active += 1;
      const socket = req.socket;
      responding.set(socket, res);
      res.once('close', () => {
        active -= 1;
        if (responding.get(socket) === res) responding.delete(socket);
        if (active === 0 && idle) idle();
      });
      res.once('finish', () => {
        if (responding.get(socket) === res) responding.delete(socket);
      });
      if (stopping) res.shouldKeepAlive = false;
      onRequest(req, res);
    },
  );

  server.on('connection', (socket: Socket) => {
    connections += 1;
    if (connections > options.maxConnections) overLimit.add(socket);
    socket.once('close', () => {
      connections -= 1;
    });
  });

  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    const code = err.code ?? '';
    if (isTimeoutCode(code)) {
      metrics?.rejected.inc({ reason: 'timeout' });
      if (options.onRefused) timedOut(code, socket);
    }
    const answer = clientErrorAnswer(code, { writable: socket.writable, responseStarted: responding.get(socket)?.headersSent ?? false });
    if (answer === null) socket.destroy();
    else lingeringClose(socket, answer);
  });

  /** The console's record of a request this server ended with 408 (its body, or its headers, too slow). */
  function timedOut(code: string, socket: Socket): void {
    const req = responding.get(socket)?.req;
    const body = req ? reading.get(req) : undefined;
    const headers = code === 'ERR_HTTP_HEADERS_TIMEOUT';
    options.onRefused!({
      receivedAt: Date.now(),
      route: body?.route ?? null,
      repo: null,
      status: 408,
      code: 'timeout',
      reason: headers ? `the request's headers did not arrive within ${headersTimeout} ms` : `the request did not arrive in full within ${requestTimeout} ms`,
      bytes: body?.bytes() ?? 0,
      peer: socket.remoteAddress ?? null,
      forwardedFor: (req && headerValue(req.headers, 'x-forwarded-for')) ?? null,
      signature: (req && headerValue(req.headers, SIGNATURE_HEADER)) ?? null,
      issues: [],
      event: null,
      duplicateOf: null,
    });
  }

  const overloaded = (reason: 'connections' | 'buffered'): RelayResponse => {
    metrics?.rejected.inc({ reason: reason === 'connections' ? 'too_many_connections' : 'buffer_full' });
    const error = reason === 'connections' ? 'too many connections, retry later' : 'too many request bodies in flight, retry later';
    return jsonResponse(503, { error }, { 'retry-after': retryAfter });
  };

  function onRequest(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/';
    const method = req.method ?? 'GET';
    const over = overLimit.has(req.socket);
    if (method === 'GET' || method === 'HEAD') {
      const q = url.indexOf('?');
      const path = q === -1 ? url : url.slice(0, q);
      // The probes read no body: answered even past the connection limit (which then closes).
      if (path === '/healthz') {
        send(res, jsonResponse(200, { status: 'ok' }), over);
        return;
      }
      if (path === '/readyz') return void readyz(res, over);
      if (path === '/metrics') return void scrape(req, res, over);
    }
    if (over) {
      logger.warn({ limit: options.maxConnections }, 'connection over the limit: 503');
      // Answered on the socket, closed lingering (the sender may still be pushing a body, which is
      // read and dropped meanwhile); node:http would close at once and could reset the answer away.
      req.resume();
      lingeringClose(req.socket, overloaded('connections'));
      return;
    }
    if (options.console?.(req, res)) return;
    const pre = handler.preflight(method, url, { headers: req.headers, remoteAddress: req.socket.remoteAddress ?? null });
    if (!pre.ok) {
      // Do not read (or wait for) a body we will not use.
      send(res, pre.response, !req.complete);
      return;
    }
    const body = new BodyBuffer(budget, cap, declaredLength(req));
    // Whatever way the request ends (answered, aborted, failed), its bytes go back to the budget.
    res.once('close', () => body.release());
    let refused: BodyRefusal | null = null;
    let size = 0;
    reading.set(req, { route: pre.route.name, bytes: () => size });
    let lingering = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (refused === null) {
        const refusal = body.append(chunk);
        if (refusal !== null) refuse(refusal);
        return;
      }
      // Refused: the answer is on its way; discard what the sender still pushes so it can read
      // it, and cut the connection once it has pushed far more than we will ever take.
      if (size > drainLimit && !lingering) {
        lingering = true;
        lingeringClose(req.socket);
      }
    });
    req.on('end', () => {
      if (refused !== null) return;
      void finish(body.bytes(), false);
    });
    req.on('error', () => {
      // Aborted: nothing to answer; stop reading into the body and give its bytes back.
      refused ??= 'over_budget';
      body.release();
    });
    const early = body.open();
    if (early !== null) refuse(early);

    function refuse(refusal: BodyRefusal): void {
      refused = refusal;
      body.release();
      if (refusal === 'too_large') return void finish(Buffer.alloc(0), true);
      logger.warn({ limit: options.maxBufferedBytes }, 'request bodies over the memory limit: 503');
      // Keep the connection: the rest of the body is read and discarded above.
      send(res, overloaded('buffered'), stopping);
    }

    async function finish(bytes: Buffer, tooLarge: boolean): Promise<void> {
      try {
        const response = await handler.handle(
          {
            method,
            path: url,
            headers: req.headers,
            body: bytes,
            bodyTooLarge: tooLarge,
            receivedBytes: size,
            remoteAddress: req.socket.remoteAddress ?? null,
          },
          pre.ok ? pre.route : undefined,
        );
        // After a 413 the rest of the body may still be coming: answer now and keep discarding
        // (closing at once would reset the connection before the sender reads the 413).
        send(res, response, stopping);
      } catch (err) {
        logger.error({ err: err instanceof Error ? err.message : String(err) }, 'handler failed');
        send(res, jsonResponse(500, { error: 'internal error' }), true);
      } finally {
        body.release();
      }
    }
  }

  /** 200 when the store takes writes; else 503 with the reason (typed code, and words for people). */
  async function readyz(res: ServerResponse, close: boolean): Promise<void> {
    let state: StoreReadiness = stopping ? { ready: false, code: 'closed', reason: 'the relay is stopping' } : { ready: true };
    if (state.ready && store) {
      try {
        state = await store.readiness();
      } catch (err) {
        state = { ready: false, code: 'unreachable', reason: err instanceof Error ? err.message : String(err) };
      }
    }
    if (state.ready) send(res, jsonResponse(200, { ready: true }), close);
    else send(res, jsonResponse(503, { ready: false, code: state.code, reason: state.reason }, { 'retry-after': retryAfter }), close);
  }

  async function scrape(req: IncomingMessage, res: ServerResponse, close: boolean): Promise<void> {
    if (!metrics) return send(res, jsonResponse(404, { error: 'not found' }), close);
    if (!bearerAuthorized(req.headers.authorization, options.metricsToken)) {
      metrics.rejected.inc({ reason: 'metrics_token' });
      logger.warn({ authorization: req.headers.authorization === undefined ? 'missing' : 'wrong' }, '/metrics without the metrics token');
      return send(res, jsonResponse(401, { error: 'unauthorized' }, { 'www-authenticate': 'Bearer' }), close);
    }
    try {
      if (store) metrics.queueDepth.set((await store.stats()).pending);
    } catch {
      // The gauge keeps its last value; /readyz reports the store.
    }
    const text = await metrics.registry.metrics();
    send(res, { status: 200, headers: { 'content-type': metrics.registry.contentType }, body: text }, close);
  }

  function drain(graceMs = 10_000): Promise<void> {
    stopping = true;
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | null = null;
      const finish = () => {
        if (timer) clearTimeout(timer);
        idle = null;
        server.closeAllConnections();
        resolve();
      };
      server.close();
      server.closeIdleConnections();
      if (active === 0) return finish();
      idle = finish;
      timer = setTimeout(finish, graceMs);
      timer.unref();
    });
  }

  return { server, inFlight: () => active, bufferedBytes: () => budget.held(), drain };
}

// ---------------------------------------------------------------------------------------------

export interface RunningRelay {
  readonly url: string;
  readonly port: number;
  readonly store: EventStore;
  readonly metrics: RelayMetrics;
  readonly dispatcher: Dispatcher;
  /** Null when Visual refresh is off (no Sauce credentials, or a store without a watch list). */
  readonly visualRefresher: VisualRefresher | null;
  /** Graceful stop: stop accepting, finish in-flight requests, stop the dispatcher, close the store. */
  stop(graceMs?: number): Promise<void>;
}

export interface StartRelayDeps {
  readonly logger?: Logger;
  readonly metrics?: RelayMetrics;
  readonly store?: EventStore;
}

function hasWatchList(store: EventStore): store is EventStore & VisualWatchStore {
  return typeof (store as Partial<VisualWatchStore>).claimVisualWatches === 'function';
}

function hasConsole(store: EventStore): store is EventStore & StoreWithConsole {
  const part = (store as Partial<StoreWithConsole>).console as Partial<ConsoleStore> | undefined;
  return typeof part?.listEvents === 'function' && typeof part.recordRequests === 'function';
}

/** Null when Visual refresh is off: no Sauce credentials, or a store that keeps no watch list. */
function createVisualRefresher(
  config: RelayConfig,
  store: EventStore,
  logger: Logger,
  metrics: RelayMetrics,
  onStored: (id: string, bytes: number) => void,
): VisualRefresher | null {
  if (!config.visualRefresh) return null;
  if (!hasWatchList(store)) {
    logger.warn('Sauce credentials are set but this store keeps no watch list: Visual refresh is off');
    return null;
  }
  const regions = new Map(config.routes.map((r) => [r.name, r.region]));
  return new VisualRefresher({
    config: config.visualRefresh,
    store,
    logger,
    metrics,
    regionOf: (route) => regions.get(route) ?? config.routes[0]!.region,
    onStored,
  });
}

/**
 * The store the configuration names: PostgreSQL (shared by every instance) with a database URL,
 * else the SQLite file in the data directory. A database connection that drops is logged and
 * replaced on the next query; meanwhile ingest answers 503 and /readyz says why.
 */
async function openConfiguredStore(config: RelayConfig, logger: Logger): Promise<EventStore> {
  if (config.databaseUrl === null) {
    mkdirSync(config.dataDir, { recursive: true });
    return openSqliteStore(config.dataDir);
  }
  const where = shownDatabaseUrl(config.databaseUrl);
  const store = await openPostgresStore(config.databaseUrl, {
    onError: (err) => logger.warn({ err: err.message }, 'database connection lost; the next query opens a new one'),
  }).catch((err: unknown) => {
    throw new Error(`cannot open the outbox in ${where}: ${err instanceof Error ? err.message : String(err)}`);
  });
  logger.info({ database: store.where }, 'outbox on PostgreSQL');
  return store;
}

/** Open the store, start the dispatcher and listen. Used by `sauce-relay serve` and the tests. */
export async function startRelay(config: RelayConfig, deps: StartRelayDeps = {}): Promise<RunningRelay> {
  const logger = deps.logger ?? createLogger({ level: config.logLevel });
  const metrics = deps.metrics ?? createMetrics();
  const store = deps.store ?? (await openConfiguredStore(config, logger));
  const client = createDispatchClient({
    token: config.github.token ?? undefined,
    appId: config.github.appId ?? undefined,
    privateKey: config.github.privateKey ?? undefined,
    apiUrl: config.github.apiUrl ?? undefined,
    logger,
  });
  const dispatcher = new Dispatcher({
    store,
    client,
    logger,
    metrics,
    groupWindowMs: config.groupWindowMs,
    maxAgeMs: config.maxAgeMs,
    ...(config.leaseMs !== null ? { leaseMs: config.leaseMs } : {}),
    // Delivered events and dedup keys are forgotten once the dedup window no longer needs them,
    // so the data file stays bounded; dead letters are kept until someone retries them.
    retentionMs: config.dedupWindowMs,
  });
  // Webhooks and refreshed Visual events both wake the dispatcher the same way.
  const wakeDispatcher = (_id: string, bytes: number) => dispatcher.notify(bytes);
  const refresher = createVisualRefresher(config, store, logger, metrics, wakeDispatcher);
  // The delivery console, with the admin token: refused requests are recorded (in batches, off the
  // request path) into the store, so every instance on a shared database shows them all.
  let recorder: RequestRecorder | null = null;
  let consoleListener: ConsoleListener | null = null;
  if (config.adminToken !== null) {
    if (hasConsole(store)) {
      recorder = new RequestRecorder({ store: store.console, logger, onDropped: (n) => metrics.consoleRequestsDropped.inc(n) });
      consoleListener = createConsole({
        source: createDeliverySource({ store, requestMaxAgeMs: recorder.retention.maxAgeMs, onQueued: () => dispatcher.wakeNow() }),
        token: config.adminToken,
        logger,
        routes: config.routes.map((r) => r.name),
      });
    } else logger.warn('RELAY_ADMIN_TOKEN is set but this store keeps no console data: the delivery console is off');
  }
  const record = recorder;
  const onRefused = record ? (refused: RefusedRequest) => record.record(refused) : undefined;
  const handler = createHandler({
    routes: config.routes,
    bodyLimitBytes: config.bodyLimitBytes,
    dedupWindowMs: config.dedupWindowMs,
    staleAfterMs: config.staleAfterMs,
    logger,
    metrics,
    store,
    onStored: wakeDispatcher,
    ...(refresher ? { onVisualStored: (stored) => refresher.track(stored) } : {}),
    ...(onRefused ? { onRefused } : {}),
  });
  const relay = createRelayServer({
    handler,
    bodyLimitBytes: config.bodyLimitBytes,
    headersTimeoutMs: config.headersTimeoutMs,
    requestTimeoutMs: config.requestTimeoutMs,
    maxConnections: config.maxConnections,
    maxBufferedBytes: config.maxBufferedBytes,
    metricsToken: config.metricsToken,
    logger,
    metrics,
    store,
    console: consoleListener,
    ...(onRefused ? { onRefused } : {}),
  });
  await new Promise<void>((resolve, reject) => {
    relay.server.once('error', reject);
    relay.server.listen(config.port, config.host, () => {
      relay.server.off('error', reject);
      resolve();
    });
  });
  dispatcher.start();
  refresher?.start();
  if (consoleListener) logger.info({ path: '/console' }, 'delivery console on');
  const address = relay.server.address() as AddressInfo;
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  const openStore = store;
  let stopped: Promise<void> | null = null;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`,
    port: address.port,
    store,
    metrics,
    dispatcher,
    visualRefresher: refresher,
    stop(graceMs?: number) {
      stopped ??= (async () => {
        await relay.drain(graceMs);
        await recorder?.stop();
        await refresher?.stop();
        await dispatcher.stop();
        await openStore.close();
        logger.info('relay stopped');
      })();
      return stopped;
    },
  };
}
