/**
 * The Node server: node:http around the runtime-neutral handler.
 *
 * - Reads the body itself, counting bytes as they arrive and never trusting Content-Length;
 *   past the cap it stops buffering and answers 413 (and closes the connection).
 * - headersTimeout / requestTimeout → 408 (checked every second, not every 30 s).
 * - GET /healthz (alive), GET /readyz (store writable), GET /metrics (Prometheus).
 * - stop(): stop accepting, finish the requests in flight, stop the dispatcher, close the store.
 */
import { mkdirSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { RelayConfig } from '../config/index.js';
import { createDispatchClient } from '../outbox/dispatch-client.js';
import { Dispatcher } from '../outbox/dispatcher.js';
import { createHandler, jsonResponse, type RelayHandler, type RelayResponse } from './handler.js';
import { createLogger, type Logger } from '../logger.js';
import { createMetrics, type RelayMetrics } from '../metrics.js';
import { openSqliteStore } from '../outbox/sqlite-store.js';
import type { EventStore, VisualWatchStore } from '../outbox/store.js';
import { VisualRefresher } from '../visual/visual-refresh.js';

export interface RelayServerOptions {
  readonly handler: RelayHandler;
  readonly bodyLimitBytes: number;
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly logger: Logger;
  readonly metrics?: RelayMetrics;
  /** For /readyz and the queue-depth gauge. */
  readonly store?: EventStore;
}

export interface RelayServer {
  readonly server: http.Server;
  /** Requests being handled right now. */
  inFlight(): number;
  /** Stop accepting; resolve once in-flight requests finished (or `graceMs` passed). */
  drain(graceMs?: number): Promise<void>;
}

function send(res: ServerResponse, response: RelayResponse, close = false): void {
  if (res.headersSent || res.destroyed) return;
  if (close) res.shouldKeepAlive = false;
  const body = Buffer.from(response.body, 'utf8');
  res.writeHead(response.status, { ...response.headers, 'content-length': String(body.length) });
  res.end(body);
}

export function createRelayServer(options: RelayServerOptions): RelayServer {
  const { handler, logger, metrics, store } = options;
  const cap = options.bodyLimitBytes;
  /** After a 413, bytes read and discarded before the connection is cut. */
  const drainLimit = cap + Math.max(4 * cap, 4 * 1024 * 1024);
  const requestTimeout = Math.max(1, options.requestTimeoutMs);
  const headersTimeout = Math.max(1, Math.min(options.headersTimeoutMs, requestTimeout));
  let active = 0;
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
      res.once('close', () => {
        active -= 1;
        if (active === 0 && idle) idle();
      });
      if (stopping) res.shouldKeepAlive = false;
      onRequest(req, res);
    },
  );

  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    const code = err.code ?? '';
    const timedOut = code === 'ERR_HTTP_REQUEST_TIMEOUT' || code === 'ERR_HTTP_HEADERS_TIMEOUT';
    if (timedOut) metrics?.rejected.inc({ reason: 'timeout' });
    const pending = (socket as Socket & { _httpMessage?: ServerResponse })._httpMessage;
    if (!socket.writable || pending?.headersSent || code === 'ECONNRESET' || code === 'HPE_INVALID_EOF_STATE') {
      socket.destroy();
      return;
    }
    const status = timedOut ? '408 Request Timeout' : code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
    const body = JSON.stringify({ error: timedOut ? 'request timeout' : 'bad request' });
    socket.end(
      `HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  });

  function onRequest(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/';
    const method = req.method ?? 'GET';
    if (method === 'GET' || method === 'HEAD') {
      const q = url.indexOf('?');
      const path = q === -1 ? url : url.slice(0, q);
      if (path === '/healthz') {
        send(res, jsonResponse(200, { status: 'ok' }));
        return;
      }
      if (path === '/readyz') return void readyz(res);
      if (path === '/metrics') return void scrape(res);
    }
    const pre = handler.preflight(method, url);
    if (!pre.ok) {
      // Do not read (or wait for) a body we will not use.
      send(res, pre.response, !req.complete);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    let lingering = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (done) {
        // Past the cap: the 413 is on its way; discard what the sender still pushes so it can read
        // the answer, and cut the connection once it has pushed far more than we will ever take.
        if (size > drainLimit && !lingering) {
          // Lingering close: FIN now, keep reading a little, then drop. An immediate destroy would
          // send a reset that can wipe the unread 413 from the sender's buffers.
          lingering = true;
          const socket = req.socket;
          socket.end();
          setTimeout(() => socket.destroy(), 2000).unref();
        }
        return;
      }
      if (size > cap) {
        done = true;
        chunks.length = 0;
        void finish(Buffer.alloc(0), true);
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (done) return;
      done = true;
      void finish(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size), false);
    });
    req.on('error', () => {
      done = true;
    });

    async function finish(body: Buffer, tooLarge: boolean): Promise<void> {
      try {
        const response = await handler.handle({ method, path: url, headers: req.headers, body, bodyTooLarge: tooLarge }, pre.ok ? pre.route : undefined);
        // After a 413 the rest of the body may still be coming: answer now and keep discarding
        // (closing at once would reset the connection before the sender reads the 413).
        send(res, response, stopping);
      } catch (err) {
        logger.error({ err: err instanceof Error ? err.message : String(err) }, 'handler failed');
        send(res, jsonResponse(500, { error: 'internal error' }), true);
      }
    }
  }

  async function readyz(res: ServerResponse): Promise<void> {
    let ok = !stopping;
    if (ok && store) {
      try {
        ok = await store.writable();
      } catch {
        ok = false;
      }
    }
    send(res, jsonResponse(ok ? 200 : 503, { ready: ok }));
  }

  async function scrape(res: ServerResponse): Promise<void> {
    if (!metrics) return send(res, jsonResponse(404, { error: 'not found' }));
    try {
      if (store) metrics.queueDepth.set((await store.stats()).pending);
    } catch {
      // The gauge keeps its last value; /readyz reports the store.
    }
    const text = await metrics.registry.metrics();
    send(res, { status: 200, headers: { 'content-type': metrics.registry.contentType }, body: text });
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

  return { server, inFlight: () => active, drain };
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

/** Open the store, start the dispatcher and listen. Used by `sauce-relay serve` and the tests. */
export async function startRelay(config: RelayConfig, deps: StartRelayDeps = {}): Promise<RunningRelay> {
  const logger = deps.logger ?? createLogger({ level: config.logLevel });
  const metrics = deps.metrics ?? createMetrics();
  let store = deps.store;
  if (!store) {
    mkdirSync(config.dataDir, { recursive: true });
    store = openSqliteStore(config.dataDir);
  }
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
  const handler = createHandler({
    routes: config.routes,
    bodyLimitBytes: config.bodyLimitBytes,
    dedupWindowMs: config.dedupWindowMs,
    logger,
    metrics,
    store,
    onStored: wakeDispatcher,
    ...(refresher ? { onVisualStored: (stored) => refresher.track(stored) } : {}),
  });
  const relay = createRelayServer({
    handler,
    bodyLimitBytes: config.bodyLimitBytes,
    headersTimeoutMs: config.headersTimeoutMs,
    requestTimeoutMs: config.requestTimeoutMs,
    logger,
    metrics,
    store,
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
        await refresher?.stop();
        await dispatcher.stop();
        await openStore.close();
        logger.info('relay stopped');
      })();
      return stopped;
    },
  };
}
