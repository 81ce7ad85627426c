/**
 * The delivery console: `/console` (the page) and `/api/…` (the JSON API it reads), served by the
 * relay's Node server when `RELAY_ADMIN_TOKEN` is set. Without a token every console and API path
 * answers 404, as if there were none.
 *
 * Pages and API:
 *   GET  /console                      the page when signed in, else the sign-in form
 *   POST /console/login                form field `token` → session cookie, 303 to /console
 *   POST /console/logout               (cookie + CSRF) → cookie cleared
 *   GET  /console/assets/<file>        the page's script, style sheet and icon (no data in them)
 *   GET  /api/session                  who is signed in, the CSRF token, the routes, the poll interval
 *   GET  /api/deliveries?outcome=&route=&repo=&kind=&q=&cursor=&limit=   a page of the list
 *   GET  /api/deliveries/<id>          one delivery
 *   POST /api/deliveries/<id>/requeue  a dead event back in the queue
 *   POST /api/deliveries/<id>/resend   a dispatched event sent again
 *   POST /api/routes/<route>/requeue   every dead event of the route back in the queue
 *   GET  /api/changes                  the change marker the page polls
 * The API takes the session cookie or `Authorization: Bearer <admin token>`. State changes with
 * the cookie need the same origin and the CSRF header (auth.ts), and `Content-Type: application/json`
 * (which a cross-site form cannot send). Every action is logged with who did it and what.
 *
 * Every value from a payload reaches the browser only as JSON: the page builds its DOM with
 * `textContent` and `createElement`, never from HTML text, under a CSP that runs no inline script.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import type { Logger } from '../logger.js';
import { type Headers, headerValue } from '../http/headers.js';
import {
  CSRF_HEADER,
  DEFAULT_SESSION_TTL_MS,
  type Session,
  actorOf,
  bearer,
  clearedSessionCookie,
  consoleKeys,
  crossOrigin,
  csrfToken,
  csrfValid,
  issueSession,
  readSession,
  sessionCookie,
  sessionCookieValue,
  tokenMatches,
  viaHttps,
} from './auth.js';
import { BadCursorError } from './deliveries.js';
import { type ActionResult, type DeliverySource, OUTCOME_STATES } from './source.js';

export interface ConsoleRequest {
  readonly method: string;
  /** The request target: path and query. */
  readonly url: string;
  /** Header names in lower case. */
  readonly headers: Headers;
  readonly body: Buffer;
  /** The peer, for the log of refused sign-ins. */
  readonly remoteAddress?: string | null;
}

export interface ConsoleResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string | Buffer;
}

export interface ConsoleOptions {
  readonly source: DeliverySource;
  /** `RELAY_ADMIN_TOKEN` (at least 32 characters); null = no console (404). */
  readonly token: string | null;
  readonly logger: Logger;
  /** Route names, for the page's route filter (and the requeue-all action). */
  readonly routes?: readonly string[];
  readonly now?: () => number;
  /** Random bytes for session ids (default crypto.randomBytes). */
  readonly random?: (bytes: number) => Buffer;
  /** Session lifetime from sign-in (default 8 h). */
  readonly sessionTtlMs?: number;
  /** How often the page polls for changes (default 2 s). */
  readonly pollMs?: number;
}

/** What the handler answers itself: `/console`, `/console/…`, `/api`, `/api/…`. */
export function isConsolePath(url: string): boolean {
  const path = pathOf(url);
  return path === '/console' || path.startsWith('/console/') || path === '/api' || path.startsWith('/api/');
}

function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'self'",
].join('; ');

/** On every console and API answer. */
const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  // Not no-referrer: with it Chromium sends `Origin: null` on the sign-in form's POST, which the origin check refuses.
  'referrer-policy': 'same-origin',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=(), usb=()',
};

const NO_STORE = { 'cache-control': 'no-store' } as const;

interface Asset {
  readonly type: string;
  readonly body: Buffer;
  readonly etag: string;
}

const ASSET_TYPES: Readonly<Record<string, string>> = {
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
  'icon.svg': 'image/svg+xml',
};

function loadAssets(): { pages: { app: Buffer; login: Buffer; loginFailed: Buffer }; files: Map<string, Asset> } {
  const dir = new URL('./assets/', import.meta.url);
  const read = (name: string) => readFileSync(new URL(name, dir));
  const files = new Map<string, Asset>();
  for (const [name, type] of Object.entries(ASSET_TYPES)) {
    const body = read(name);
    files.set(name, { type, body, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` });
  }
  const login = read('login.html');
  const marker = 'data-show="failed" hidden';
  if (!login.includes(marker)) throw new Error(`console assets: login.html lacks ${marker}`);
  const loginFailed = Buffer.from(login.toString('utf8').replace(marker, 'data-show="failed"'), 'utf8');
  return { pages: { app: read('index.html'), login, loginFailed }, files };
}

let assetCache: ReturnType<typeof loadAssets> | null = null;

const present = (v: unknown) => (v === '' ? undefined : v);
const listQuerySchema = z.strictObject({
  outcome: z.preprocess(present, z.enum(OUTCOME_STATES).optional()),
  route: z.preprocess(present, z.string().max(64).optional()),
  repo: z.preprocess(present, z.string().max(140).optional()),
  kind: z.preprocess(present, z.enum(['vdc', 'rdc', 'visual']).optional()),
  q: z.preprocess(present, z.string().max(200).optional()),
  cursor: z.preprocess(present, z.string().max(200).optional()),
  limit: z.preprocess(present, z.coerce.number().int().min(1).max(200).default(50)),
});

const ID_RE = /^[\x21-\x7e]{1,64}$/;
const ROUTE_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
const MAX_REVOKED = 10_000;

export interface ConsoleCore {
  /** The answer to a console or API request (`isConsolePath`). */
  handle(request: ConsoleRequest): Promise<ConsoleResponse>;
}

export function createConsoleCore(options: ConsoleOptions): ConsoleCore {
  const { source, logger } = options;
  const now = options.now ?? Date.now;
  const random = options.random ?? randomBytes;
  const ttl = options.sessionTtlMs ?? DEFAULT_SESSION_TTL_MS;
  const pollMs = options.pollMs ?? 2000;
  const routes = [...(options.routes ?? [])];
  const keys = options.token === null ? null : consoleKeys(options.token);
  assetCache ??= keys ? loadAssets() : null;
  const assets = assetCache;
  /** Sessions signed out here, until they would have expired anyway. */
  const revoked = new Map<string, number>();

  const respond = (status: number, headers: Record<string, string>, body: string | Buffer): ConsoleResponse => ({
    status,
    headers: { ...SECURITY_HEADERS, ...headers },
    body,
  });
  const json = (status: number, body: unknown, extra: Record<string, string> = {}) =>
    respond(status, { 'content-type': 'application/json; charset=utf-8', ...NO_STORE, ...extra }, JSON.stringify(body));
  const html = (status: number, body: Buffer, extra: Record<string, string> = {}) =>
    respond(status, { 'content-type': 'text/html; charset=utf-8', ...NO_STORE, ...extra }, body);
  const notFound = () => json(404, { error: 'not found' });
  const methodNotAllowed = (allow: string) => json(405, { error: 'method not allowed' }, { allow });

  function sessionOf(headers: Headers): Session | null {
    return keys ? readSession(keys, sessionCookieValue(headers), now(), ttl, revoked) : null;
  }

  async function handle(req: ConsoleRequest): Promise<ConsoleResponse> {
    if (!keys || !assets) return notFound();
    const url = new URL(req.url, 'http://console.invalid');
    const path = url.pathname.length > 1 && url.pathname.endsWith('/') ? url.pathname.slice(0, -1) : url.pathname;
    if (path === '/console' || path === '/console/login') {
      if (req.method === 'GET') return html(200, sessionOf(req.headers) ? assets.pages.app : assets.pages.login);
      if (req.method === 'POST' && path === '/console/login') return signIn(req);
      return methodNotAllowed(path === '/console' ? 'GET' : 'GET, POST');
    }
    if (path === '/console/logout') return req.method === 'POST' ? signOut(req) : methodNotAllowed('POST');
    if (path.startsWith('/console/assets/')) {
      const asset = assets.files.get(path.slice('/console/assets/'.length));
      if (!asset) return notFound();
      if (req.method !== 'GET') return methodNotAllowed('GET');
      const cache = { etag: asset.etag, 'cache-control': 'no-cache' };
      if (headerValue(req.headers, 'if-none-match') === asset.etag) return respond(304, cache, '');
      return respond(200, { 'content-type': asset.type, ...cache }, asset.body);
    }
    if (path === '/api' || path.startsWith('/api/')) return api(req, path, url.searchParams);
    return notFound();
  }

  function signIn(req: ConsoleRequest): ConsoleResponse {
    const k = keys!;
    const from = req.remoteAddress ?? null;
    const cross = crossOrigin(req.headers);
    if (cross !== null) {
      logger.warn({ console: { refused: 'sign-in', why: cross, from } }, 'console sign-in refused');
      return json(403, { error: 'sign in from the console page itself', code: cross });
    }
    const type = headerValue(req.headers, 'content-type')?.split(';')[0]?.trim().toLowerCase();
    const given = type === 'application/x-www-form-urlencoded' ? new URLSearchParams(req.body.toString('utf8')).get('token') : null;
    if (given === null || !tokenMatches(k, given.trim())) {
      logger.warn({ console: { refused: 'sign-in', why: 'wrong_token', from } }, 'console sign-in refused');
      return html(401, assets!.pages.loginFailed);
    }
    const { session, value } = issueSession(k, now(), ttl, random(18));
    logger.info({ console: { actor: actorOf(session), action: 'sign-in', from } }, 'console sign-in');
    return respond(303, { location: '/console', ...NO_STORE, 'set-cookie': sessionCookie(value, ttl, viaHttps(req.headers)) }, '');
  }

  function signOut(req: ConsoleRequest): ConsoleResponse {
    const session = sessionOf(req.headers);
    if (!session) return json(401, { error: 'not signed in' });
    const refused = stateChangeRefused(req, session);
    if (refused) return refused;
    // An expired session is refused by its own time: only unexpired ids need keeping.
    const t = now();
    for (const [id, until] of revoked) if (until <= t) revoked.delete(id);
    if (revoked.size >= MAX_REVOKED) revoked.delete(revoked.keys().next().value!);
    revoked.set(session.id, session.expiresAt);
    logger.info({ console: { actor: actorOf(session), action: 'sign-out' } }, 'console sign-out');
    return json(200, { signedOut: true }, { 'set-cookie': clearedSessionCookie(viaHttps(req.headers)) });
  }

  /** A cookie-carried state change from anywhere but this origin's page: 403; else null. */
  function stateChangeRefused(req: ConsoleRequest, session: Session): ConsoleResponse | null {
    const cross = crossOrigin(req.headers);
    const type = headerValue(req.headers, 'content-type')?.split(';')[0]?.trim().toLowerCase();
    const why =
      cross ?? (csrfValid(keys!, session, headerValue(req.headers, CSRF_HEADER)) ? (type === 'application/json' ? null : 'content_type') : 'csrf_token');
    if (why === null) return null;
    logger.warn({ console: { actor: actorOf(session), refused: `${req.method} ${pathOf(req.url)}`, why } }, 'console request refused');
    return json(403, { error: 'refused: not from the console page', code: why });
  }

  async function api(req: ConsoleRequest, path: string, params: URLSearchParams): Promise<ConsoleResponse> {
    const k = keys!;
    const auth = bearer(k, headerValue(req.headers, 'authorization'));
    let session: Session | null = null;
    if (auth === 'wrong') return json(401, { error: 'unauthorized' }, { 'www-authenticate': 'Bearer' });
    if (auth === 'none') {
      session = sessionOf(req.headers);
      if (!session) return json(401, { error: 'unauthorized' }, { 'www-authenticate': 'Bearer' });
    }
    const parts = path
      .split('/')
      .slice(2)
      .map((p) => {
        try {
          return decodeURIComponent(p);
        } catch {
          return '\u0000';
        }
      });
    const [collection, id, verb, ...rest] = parts;
    const get = (fn: () => Promise<ConsoleResponse>) => (req.method === 'GET' ? fn() : Promise.resolve(methodNotAllowed('GET')));
    const post = (fn: () => Promise<ConsoleResponse>) => {
      if (req.method !== 'POST') return Promise.resolve(methodNotAllowed('POST'));
      const refused = session ? stateChangeRefused(req, session) : null;
      return refused ? Promise.resolve(refused) : fn();
    };
    const actor = actorOf(session);

    if (rest.length > 0) return notFound();
    if (collection === 'session' && id === undefined) {
      return get(async () =>
        json(200, {
          actor,
          csrf: session ? csrfToken(k, session) : null,
          expiresAt: session?.expiresAt ?? null,
          routes,
          pollMs,
        }),
      );
    }
    if (collection === 'changes' && id === undefined) return get(async () => json(200, { marker: await source.marker() }));
    if (collection === 'deliveries' && id === undefined) return get(() => listDeliveries(params));
    if (collection === 'deliveries' && id !== undefined && ID_RE.test(id)) {
      if (verb === undefined) {
        return get(async () => {
          const detail = await source.get(id);
          return detail ? json(200, detail) : notFound();
        });
      }
      if (verb === 'requeue') return post(async () => acted(actor, 'requeue', { id }, await source.requeue(id)));
      if (verb === 'resend') return post(async () => acted(actor, 'resend', { id }, await source.resend(id)));
      return notFound();
    }
    if (collection === 'routes' && id !== undefined && ROUTE_RE.test(id) && verb === 'requeue') {
      if (routes.length > 0 && !routes.includes(id)) return notFound();
      return post(async () => acted(actor, 'requeue-route', { route: id }, await source.requeueRoute(id)));
    }
    return notFound();
  }

  async function listDeliveries(params: URLSearchParams): Promise<ConsoleResponse> {
    const parsed = listQuerySchema.safeParse(Object.fromEntries(params));
    if (!parsed.success) {
      const issues = parsed.error.issues.map((i) => ({ field: i.path.length > 0 ? i.path.join('.') : '(query)', message: i.message }));
      return json(400, { error: 'bad query', issues });
    }
    const q = parsed.data;
    try {
      const page = await source.list({
        outcome: q.outcome ?? null,
        route: q.route ?? null,
        repo: q.repo ?? null,
        kind: q.kind ?? null,
        text: q.q ?? null,
        cursor: q.cursor ?? null,
        limit: q.limit,
      });
      return json(200, page);
    } catch (err) {
      if (err instanceof BadCursorError) return json(400, { error: 'bad query', issues: [{ field: 'cursor', message: err.message }] });
      throw err;
    }
  }

  function acted(actor: string, action: string, target: Record<string, string>, result: ActionResult): ConsoleResponse {
    logger.info({ console: { actor, action, ...target, result: result.ok ? 'ok' : result.code, count: result.ok ? result.count : 0 } }, 'console action');
    if (result.ok) return json(200, result);
    return json(result.code === 'not_found' ? 404 : 409, result);
  }

  return {
    async handle(req) {
      try {
        return await handle(req);
      } catch (err) {
        logger.error(
          { console: { failed: `${req.method} ${pathOf(req.url)}` }, err: err instanceof Error ? err.message : String(err) },
          'console request failed',
        );
        return json(500, { error: 'internal error' });
      }
    },
  };
}

/** The largest request body the console reads (a sign-in form or an action's `{}`). */
export const MAX_CONSOLE_BODY_BYTES = 16 * 1024;

/** A node:http request handler: true when it took the request (a console or API path), else false. */
export type ConsoleListener = (req: IncomingMessage, res: ServerResponse) => boolean;

/**
 * The console for the relay's Node server: call it first for every request; it answers what
 * `isConsolePath` names and returns false for the rest.
 */
export function createConsole(options: ConsoleOptions): ConsoleListener {
  const core = createConsoleCore(options);
  return (req, res) => {
    const url = req.url ?? '/';
    if (!isConsolePath(url)) return false;
    const send = (response: ConsoleResponse) => {
      if (res.headersSent || res.destroyed) return;
      const body = typeof response.body === 'string' ? Buffer.from(response.body, 'utf8') : response.body;
      res.writeHead(response.status, { ...response.headers, 'content-length': String(body.length) });
      res.end(body);
    };
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > MAX_CONSOLE_BODY_BYTES) {
      res.shouldKeepAlive = false;
      send({ status: 413, headers: { ...SECURITY_HEADERS, 'content-type': 'application/json; charset=utf-8' }, body: '{"error":"body too large"}' });
      req.resume();
      return true;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_CONSOLE_BODY_BYTES) over = true;
      else chunks.push(chunk);
    });
    req.on('error', () => res.destroy());
    req.on('end', () => {
      if (over) {
        res.shouldKeepAlive = false;
        send({ status: 413, headers: { ...SECURITY_HEADERS, 'content-type': 'application/json; charset=utf-8' }, body: '{"error":"body too large"}' });
        return;
      }
      void core
        .handle({ method: req.method ?? 'GET', url, headers: req.headers, body: Buffer.concat(chunks), remoteAddress: req.socket.remoteAddress ?? null })
        .then(send);
    });
    return true;
  };
}
