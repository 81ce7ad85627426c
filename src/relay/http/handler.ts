/**
 * The runtime-neutral core of the relay: one request in, one response out. No `node:http` here;
 * the Node server, the fetch adapter and the Lambda adapter all call it.
 *
 * The request path, in order (each step has its answer):
 *   1. wrong path → 404; wrong method → 405
 *   2. body over the cap (counted on bytes read by the caller) → 413
 *   3. missing or wrong `saucelabs-sign` → 401 (a body that leaks nothing)
 *   4. not UTF-8 JSON → 400; not a Sauce event → 422 with the fields at fault
 *   5. a job event older than the stale limit by its own time (a replay), filtered out, or no
 *      route → 202 filtered with the reason
 *   6. same raw body on the same route within the dedup window → 200 "duplicate"
 *   7. stored durably → 202 with the id; store failing → 503 with Retry-After
 * Nothing answers 2xx before the event is durable (or, in direct mode, accepted by GitHub).
 *
 * Direct mode (serverless, no local store): step 6 is skipped and step 7 dispatches inside the
 * request; GitHub failing → 503 (retryable, with Retry-After) or 502 (not retryable).
 */
import { createHash } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import type { DispatchOutcome } from '../../github/answers.js';
import { ENTRY_MAX_BYTES, STORED_ID_PLACEHOLDER, envelopeEntry, makeEnvelope, type EntryMeta } from '../../sauce/envelope.js';
import { utf8Bytes } from '../../github/limits.js';
import { parseSauceEvent, type FieldIssue, type SauceEvent } from '../../sauce/event.js';
import type { RouteConfig } from '../config/index.js';
import type { Logger } from '../logger.js';
import type { FilterCode, RelayMetrics, RejectReason, RequestCode } from '../metrics.js';
import { routeEvent } from './route.js';
import { type Headers, headerValue } from './headers.js';
import { SIGNATURE_HEADER, safeEqualText, verifySignature } from './signature.js';
import { eventTime, staleness } from './stale.js';
import type { EventStore, InsertResult } from '../outbox/store.js';
import type { StoredVisual } from '../visual/visual-refresh.js';

export interface RelayRequest {
  readonly method: string;
  /** Request path; a query string is ignored. */
  readonly path: string;
  /** Header names in lower case (as node:http gives them). */
  readonly headers: Headers;
  readonly body: Uint8Array;
  /** Set by the caller when it stopped reading because the body passed the cap. */
  readonly bodyTooLarge?: boolean;
  /** With `bodyTooLarge`: how many bytes the caller read before it stopped (for the console's record). */
  readonly receivedBytes?: number;
  /** The peer's address, when the caller knows it (for the console's record of a refusal). */
  readonly remoteAddress?: string | null;
}

/** Who sent a request, for the record of a refusal (`preflight` takes it from the Node server). */
interface RequestFrom {
  readonly headers: RelayRequest['headers'];
  readonly remoteAddress?: string | null;
}

/** What a refusal report knows of the request, whatever the step that refused it. */
interface Seen {
  readonly receivedAt: number;
  readonly route: string | null;
  readonly bytes: number;
  readonly from: RequestFrom;
}

/**
 * A request answered without storing an event, as the handler hands it to `onRefused` (the delivery
 * console records it: src/relay/console/requests.ts keeps metadata only and cuts the signature).
 */
export interface RefusedRequest {
  readonly receivedAt: number;
  /** The route the path named; null when none did (404). */
  readonly route: string | null;
  /** The target repository, when routing got that far. */
  readonly repo: string | null;
  /** The HTTP status answered. */
  readonly status: number;
  readonly code: RequestCode;
  /** For people. */
  readonly reason: string;
  /** Body bytes read. */
  readonly bytes: number;
  readonly peer: string | null;
  /** The `X-Forwarded-For` header as received (trusted only from a proxy on this host). */
  readonly forwardedFor: string | null;
  /** The `saucelabs-sign` header as received. */
  readonly signature: string | null;
  readonly issues: readonly FieldIssue[];
  /** The event, when the body was one (filtered, stale, duplicate, not storable). */
  readonly event: SauceEvent | null;
  /** A duplicate's stored event. */
  readonly duplicateOf: string | null;
}

export interface RelayResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

export type { DispatchOutcome };

/** The part of the dispatch client (src/relay/outbox/dispatch-client.ts) that direct mode needs. */
export interface DispatchClientLike {
  dispatch(repo: string, eventType: string, clientPayload: Record<string, unknown>): Promise<DispatchOutcome>;
}

export interface HandlerOptions {
  readonly routes: readonly RouteConfig[];
  readonly bodyLimitBytes: number;
  readonly dedupWindowMs: number;
  /** Job events whose own time is older than this before receipt are answered 202 filtered (stale.ts). */
  readonly staleAfterMs: number;
  readonly logger: Logger;
  readonly metrics?: RelayMetrics;
  /** A prefix to strip before matching (e.g. an API Gateway stage `/prod`). */
  readonly basePath?: string;
  readonly now?: () => number;
  /** Durable mode: store every accepted event here before answering. */
  readonly store?: EventStore;
  /** Called after each newly stored event with its body size (the server wakes the dispatcher). */
  readonly onStored?: (id: string, bytes: number) => void;
  /**
   * Called (and awaited, before the answer) after a Visual event is stored: Visual refresh starts or
   * ends its watch of the build. It must not throw; the event is stored whatever it does.
   */
  readonly onVisualStored?: (stored: StoredVisual) => Promise<void>;
  /** Direct mode: no store; dispatch inside the request. */
  readonly direct?: { readonly client: DispatchClientLike };
  /** Seconds to put in Retry-After when the store is down. */
  readonly retryAfterSec?: number;
  /**
   * Called, on the request path, for every request answered without storing an event (not for a
   * stored one). It must not throw nor wait: the delivery console's recorder only buffers it.
   */
  readonly onRefused?: (refused: RefusedRequest) => void;
}

export type Preflight = { readonly ok: true; readonly route: RouteConfig } | { readonly ok: false; readonly response: RelayResponse };

export interface RelayHandler {
  /**
   * Steps 1 only (path and method), so a server can answer 404/405 without reading a body. With
   * `from`, a refusal is reported to `onRefused`.
   */
  preflight(method: string, path: string, from?: RequestFrom): Preflight;
  /** The whole path. Pass the route a `preflight` already found, to skip step 1. */
  handle(request: RelayRequest, route?: RouteConfig): Promise<RelayResponse>;
}

/** Sauce events nest 3 levels deep. Deeper JSON parses fine but cannot be re-serialised safely. */
export const MAX_JSON_DEPTH = 32;

/**
 * One pass over the bytes: how deep arrays/objects nest (strings skipped) and whether brackets
 * and quotes balance. Lets the handler refuse absurdly deep bodies without parsing them.
 */
export function jsonNesting(body: Uint8Array): { maxDepth: number; balanced: boolean } {
  let depth = 0;
  let maxDepth = 0;
  let inString = false;
  let negative = false;
  for (let i = 0; i < body.length; i += 1) {
    const c = body[i];
    if (inString) {
      if (c === 0x5c)
        i += 1; // backslash: skip the escaped byte
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      depth += 1;
      if (depth > maxDepth) maxDepth = depth;
    } else if (c === 0x7d || c === 0x5d) {
      depth -= 1;
      if (depth < 0) negative = true;
    }
  }
  return { maxDepth, balanced: depth === 0 && !inString && !negative };
}

/**
 * Whether `body` holds at most `limit` opening brackets (`{` and `[`, in strings too): then it
 * cannot nest deeper than `limit`, and the byte-by-byte scan of jsonNesting is not needed. Counted
 * with Buffer.indexOf (memchr), about ten times faster than that scan on a Sauce event.
 */
export function openBracketsAtMost(body: Uint8Array, limit: number): boolean {
  const bytes = asBuffer(body);
  let count = 0;
  for (const bracket of [0x7b, 0x5b]) {
    for (let at = bytes.indexOf(bracket); at !== -1; at = bytes.indexOf(bracket, at + 1)) {
      count += 1;
      if (count > limit) return false;
    }
  }
  return true;
}

export function nestedDeeperThan(body: Uint8Array, limit: number): boolean {
  return jsonNesting(body).maxDepth > limit;
}

/**
 * At most how many UTF-8 bytes `JSON.stringify(JSON.parse(text))` takes, for a JSON text of
 * `bytes` bytes that is valid UTF-8 (the handler checks both before it sizes anything).
 *
 * Re-serialising never lengthens anything but numbers: whitespace and repeated keys go; a string
 * comes back with each character raw or with the same escape it had to carry in the text (a
 * quote, a backslash, a control character, a lone surrogate: UTF-8 cannot carry one raw), never
 * longer; literals and brackets are unchanged. A number comes back as JavaScript writes it, at
 * most 25 bytes (`-0.00000` + 17 digits, or `-d.` + 16 digits + `e-308`), so it grows by at most 24;
 * and a text holds at most (bytes + 1) / 2 numbers (a digit each, and a separator between two).
 * Hence at most bytes + 24 × (bytes + 1) / 2 = 13 × bytes + 12.
 */
export function reserialisedBytesBound(bytes: number): number {
  return 13 * bytes + 12;
}

/**
 * Whether an event of `bodyBytes` fits one dispatch whatever it holds: its envelope entry (the
 * re-serialised body plus `metaBytes` of relay fields) cannot pass ENTRY_MAX_BYTES. Only bodies for
 * which this is false are sized exactly (envelopeEntry: a JSON.stringify of the whole event).
 */
export function fitsUnsized(bodyBytes: number, metaBytes: number): boolean {
  return metaBytes + reserialisedBytesBound(bodyBytes) <= ENTRY_MAX_BYTES;
}

/** The bytes an envelope entry spends on everything but the payload, for a stored event of `route`. */
function entryMetaBytes(route: string): number {
  // The longest time a Date writes (year +275760), so the sizing never falls short.
  const meta: EntryMeta = { id: STORED_ID_PLACEHOLDER, received_at: new Date(8.64e15).toISOString(), route };
  // `{"payload":0,...}` minus the `0`.
  return utf8Bytes(JSON.stringify({ payload: 0, ...meta })) - 1;
}

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8' } as const;
const MAX_ISSUES = 20;

export function jsonResponse(status: number, body: unknown, extra?: Record<string, string>): RelayResponse {
  return { status, headers: extra ? { ...JSON_HEADERS, ...extra } : { ...JSON_HEADERS }, body: JSON.stringify(body) };
}

/**
 * A path as the console may show it: a segment of 16 characters or more (a route's URL token, or a
 * guess at one) is cut to its first 4 and `…`; at most 200 characters.
 */
export function shownPath(path: string): string {
  const q = path.indexOf('?');
  const shown = (q === -1 ? path : path.slice(0, q))
    .split('/')
    .map((segment) => (segment.length >= 16 ? `${segment.slice(0, 4)}…` : segment))
    .join('/');
  return shown.length > 200 ? `${shown.slice(0, 199)}…` : shown;
}

function cleanPath(path: string, basePath: string): string {
  const q = path.indexOf('?');
  let p = q === -1 ? path : path.slice(0, q);
  if (basePath !== '' && (p === basePath || p.startsWith(`${basePath}/`))) p = p.slice(basePath.length) || '/';
  if (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
  return p;
}

function asBuffer(body: Uint8Array): Buffer {
  return Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
}

export function createHandler(options: HandlerOptions): RelayHandler {
  const { logger, metrics, store, direct } = options;
  if (!store && !direct) throw new Error('createHandler: give a store (durable mode) or direct.client (direct mode)');
  const now = options.now ?? Date.now;
  const basePath = (options.basePath ?? '').replace(/\/+$/, '');
  const retryAfter = String(options.retryAfterSec ?? 5);
  /** Routes without a URL token, by exact path. */
  const byPath = new Map<string, RouteConfig>();
  /** Routes with a URL token, by the path before the token. */
  const byTokenPrefix = new Map<string, RouteConfig>();
  for (const r of options.routes) {
    if (r.urlToken) byTokenPrefix.set(r.path.slice(0, r.path.length - r.urlToken.length - 1), r);
    else byPath.set(r.path, r);
  }

  const metaBytes = new Map(options.routes.map((r) => [r, entryMetaBytes(r.name)]));
  const metaBytesOf = (route: RouteConfig): number => metaBytes.get(route) ?? entryMetaBytes(route.name);

  const reject = (reason: RejectReason, response: RelayResponse): RelayResponse => {
    metrics?.rejected.inc({ reason });
    return response;
  };

  /** 202 filtered: the event is valid and signed, and not relayed; metrics and logs carry the code. */
  function notRelayed(route: RouteConfig, code: FilterCode, reason: string): RelayResponse {
    metrics?.filtered.inc({ route: route.name, reason: code });
    // A stale event is a replay, or a delivery held back longer than the limit: worth a warning.
    logger[code === 'stale' ? 'warn' : 'info']({ route: route.name, code, reason }, 'event not relayed');
    return jsonResponse(202, { status: 'filtered', reason });
  }

  function findRoute(path: string): RouteConfig | null {
    const exact = byPath.get(path);
    if (exact) return exact;
    const slash = path.lastIndexOf('/');
    if (slash <= 0) return null;
    const withToken = byTokenPrefix.get(path.slice(0, slash));
    if (withToken?.urlToken && safeEqualText(path.slice(slash + 1), withToken.urlToken)) return withToken;
    return null;
  }

  /** Report a request answered without storing an event (see `onRefused`); returns the response. */
  function told(
    response: RelayResponse,
    code: RefusedRequest['code'],
    reason: string,
    seen: Seen,
    more: Partial<Pick<RefusedRequest, 'repo' | 'issues' | 'event' | 'duplicateOf'>> = {},
  ): RelayResponse {
    if (options.onRefused) {
      const { headers, remoteAddress } = seen.from;
      options.onRefused({
        receivedAt: seen.receivedAt,
        route: seen.route,
        repo: more.repo ?? null,
        status: response.status,
        code,
        reason,
        bytes: seen.bytes,
        peer: remoteAddress ?? null,
        forwardedFor: headerValue(headers, 'x-forwarded-for') ?? null,
        signature: headerValue(headers, SIGNATURE_HEADER) ?? null,
        issues: more.issues ?? [],
        event: more.event ?? null,
        duplicateOf: more.duplicateOf ?? null,
      });
    }
    return response;
  }

  /** Answer `{ error }` (and `issues`, when given), count it under `code`, and report it in the same words. */
  function refuse(code: RejectReason, status: number, error: string, seen: Seen, issues?: FieldIssue[]): RelayResponse {
    return told(reject(code, jsonResponse(status, issues ? { error, issues } : { error })), code, error, seen, issues ? { issues } : {});
  }

  function preflight(method: string, rawPath: string, from?: RequestFrom): Preflight {
    const route = findRoute(cleanPath(rawPath, basePath));
    const seen = (name: string | null) => ({ receivedAt: now(), route: name, bytes: 0, from: from! });
    if (route === null) {
      const response = reject('not_found', jsonResponse(404, { error: 'not found' }));
      return { ok: false, response: from ? told(response, 'not_found', `no route at ${shownPath(rawPath)}`, seen(null)) : response };
    }
    if (method !== 'POST') {
      const response = reject('method', jsonResponse(405, { error: 'method not allowed' }, { allow: 'POST' }));
      return { ok: false, response: from ? told(response, 'method', `${method.slice(0, 20)} is not allowed: POST only`, seen(route.name)) : response };
    }
    return { ok: true, route };
  }

  async function handle(req: RelayRequest, known?: RouteConfig): Promise<RelayResponse> {
    let route: RouteConfig;
    if (known) route = known;
    else {
      const pre = preflight(req.method, req.path, req);
      if (!pre.ok) return pre.response;
      route = pre.route;
    }
    metrics?.received.inc({ route: route.name });
    const receivedAt = now();
    const seen = { receivedAt, route: route.name, bytes: req.bodyTooLarge ? (req.receivedBytes ?? req.body.byteLength) : req.body.byteLength, from: req };

    // 2. Size, as counted by whoever read the bytes.
    if (req.bodyTooLarge || req.body.byteLength > options.bodyLimitBytes) {
      logger.warn({ route: route.name, limit: options.bodyLimitBytes }, 'body over the size limit');
      const response = reject('too_large', jsonResponse(413, { error: 'body too large', limit: options.bodyLimitBytes }));
      return told(response, 'too_large', `body over the size limit (${options.bodyLimitBytes} bytes)`, seen);
    }

    // 3. Signature over the raw bytes.
    const body = asBuffer(req.body);
    const signature = headerValue(req.headers, SIGNATURE_HEADER);
    let secretIndex = -1;
    if (signature === undefined && route.allowUnsigned) {
      secretIndex = -1;
    } else if (signature !== undefined && route.allowUnsigned && route.secrets.length === 0) {
      secretIndex = -1;
    } else {
      secretIndex = verifySignature(body, signature, route.secrets);
      if (secretIndex === -1) {
        logger.warn({ route: route.name, signed: signature !== undefined }, 'signature missing or wrong');
        const why = signature === undefined ? 'no saucelabs-sign header' : 'saucelabs-sign matches no secret of the route';
        return told(reject('signature', jsonResponse(401, { error: 'unauthorized' })), 'signature', why, seen);
      }
    }

    // 4. UTF-8 JSON, then a Sauce event.
    if (!isUtf8(body)) return refuse('not_json', 400, 'body is not UTF-8 JSON', seen);
    const text = body.toString('utf8');
    // Refuse absurd nesting before parsing it (a parse would build it all, and it could not be
    // re-serialised for the dispatch anyway). Few brackets at all cannot nest deep: then no scan.
    const nesting = openBracketsAtMost(body, MAX_JSON_DEPTH) ? null : jsonNesting(body);
    if (nesting !== null && nesting.maxDepth > MAX_JSON_DEPTH) {
      if (!nesting.balanced) return refuse('not_json', 400, 'body is not valid JSON', seen);
      return refuse('invalid_event', 422, 'not a Sauce Labs event', seen, [{ field: '(root)', message: `JSON nested deeper than ${MAX_JSON_DEPTH} levels` }]);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return refuse('not_json', 400, 'body is not valid JSON', seen);
    }
    const parsed = parseSauceEvent(json);
    if (!parsed.ok) {
      const issues = parsed.issues.slice(0, MAX_ISSUES);
      logger.info({ route: route.name, issues }, 'not a Sauce Labs event');
      return refuse('invalid_event', 422, 'not a Sauce Labs event', seen, issues);
    }
    const event = parsed.event;

    // 5. Replays (by the event's own time), filters and target repository.
    const occurredAt = eventTime(event, json);
    const stale = staleness(event, occurredAt, receivedAt, options.staleAfterMs);
    if (stale !== null) return told(notRelayed(route, stale.code, stale.reason), stale.code, stale.reason, seen, { event });
    const decision = routeEvent(parsed.event, route);
    if (!decision.ok) return told(notRelayed(route, decision.code, decision.reason), decision.code, decision.reason, seen, { event });
    const repo = decision.repo;
    const bodyHash = createHash('sha256').update(body).digest('hex');

    if (direct) return dispatchDirect(route, decision.repo, json, bodyHash, receivedAt, secretIndex);

    // Accept only what can be delivered: the dispatcher shortens long text to fit one dispatch, and
    // refuses only an event whose needed fields alone are over the limit (see envelopeEntry). A body
    // small enough to fit whatever it holds (fitsUnsized: Sauce's are ~1-3 KB) is not sized.
    if (!fitsUnsized(body.length, metaBytesOf(route))) {
      const fit = envelopeEntry(json, { id: STORED_ID_PLACEHOLDER, received_at: new Date(receivedAt).toISOString(), route: route.name });
      if (!fit.ok)
        return told(tooLargeForDispatch(route, fit.reason), 'too_large', `event too large for repository_dispatch: ${fit.reason}`, seen, { event, repo });
    }

    // 6 and 7. Deduplicate and store durably; only then answer 2xx.
    let result: InsertResult;
    try {
      result = await store!.insert(
        { route: route.name, repo: decision.repo, eventType: route.eventType, body: text, bodyHash, receivedAt, occurredAt },
        options.dedupWindowMs,
      );
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      logger.error({ route: route.name, err: why }, 'store unavailable');
      const response = reject('store_unavailable', jsonResponse(503, { error: 'store unavailable, retry later' }, { 'retry-after': retryAfter }));
      return told(response, 'store_unavailable', `store unavailable: ${why}`, seen, { event, repo });
    }
    if (result.kind === 'duplicate') {
      metrics?.duplicates.inc({ route: route.name });
      logger.info({ id: result.id, route: route.name, secretIndex }, 'duplicate delivery');
      const response = jsonResponse(200, { status: 'duplicate', id: result.id });
      return told(response, 'duplicate', 'the same body was stored on this route within the dedup window', seen, { event, repo, duplicateOf: result.id });
    }
    metrics?.stored.inc({ route: route.name });
    logger.info({ id: result.id, route: route.name, repo: decision.repo, secretIndex }, 'event stored');
    options.onStored?.(result.id, body.length);
    if (parsed.event.kind === 'visual' && options.onVisualStored) {
      await options.onVisualStored({ route: route.name, repo: decision.repo, eventType: route.eventType, body: text, event: parsed.event, receivedAt });
    }
    return jsonResponse(202, { status: 'stored', id: result.id });
  }

  async function dispatchDirect(
    route: RouteConfig,
    repo: string,
    payload: unknown,
    bodyHash: string,
    receivedAt: number,
    secretIndex: number,
  ): Promise<RelayResponse> {
    // Stable across redeliveries of the same body, so the Action can recognise a repeat.
    const id = `d-${createHash('sha256').update(route.name).update('\0').update(bodyHash).digest('hex').slice(0, 24)}`;
    const meta: EntryMeta = { id, received_at: new Date(receivedAt).toISOString(), route: route.name };
    // The same entry builder as the dispatcher's: long text is shortened to fit, not refused.
    const built = envelopeEntry(payload, meta);
    if (!built.ok) return tooLargeForDispatch(route, built.reason);
    if (built.truncated.length) logger.warn({ id, route: route.name, truncated: built.truncated }, 'event shortened to fit one repository_dispatch');
    const envelope = makeEnvelope([built.entry]);
    let outcome: DispatchOutcome;
    try {
      outcome = await direct!.client.dispatch(repo, route.eventType, envelope as unknown as Record<string, unknown>);
    } catch (err) {
      outcome = { kind: 'retry', code: 'network', reason: err instanceof Error ? err.message : String(err) };
    }
    if (outcome.kind === 'sent') {
      metrics?.dispatched.inc({ repo });
      metrics?.dispatchedEvents.inc();
      logger.info({ id, route: route.name, repo, secretIndex }, 'event dispatched');
      return jsonResponse(202, { status: 'dispatched', id });
    }
    logger.warn({ id, route: route.name, repo, outcome: outcome.kind, reason: outcome.reason }, 'dispatch failed');
    if (outcome.kind === 'retry') {
      metrics?.retries.inc({ reason: 'direct' });
      const seconds = Math.max(1, Math.ceil((outcome.retryAfterMs ?? 5000) / 1000));
      return reject('dispatch_failed', jsonResponse(503, { error: 'GitHub unavailable, retry later' }, { 'retry-after': String(seconds) }));
    }
    metrics?.deadLettered.inc({ reason: 'direct' });
    return reject('dispatch_failed', jsonResponse(502, { error: 'GitHub refused the dispatch' }));
  }

  /** The one body refused for its size after parsing: the fields the Action needs do not fit a dispatch. */
  function tooLargeForDispatch(route: RouteConfig, reason: string): RelayResponse {
    logger.warn({ route: route.name, reason }, 'event too large for repository_dispatch');
    return reject('too_large', jsonResponse(413, { error: 'event too large for repository_dispatch', reason }));
  }

  return { preflight, handle };
}
