/**
 * A `DeliverySource` from a store's rows (`ConsoleStore`): its events and the refused requests
 * recorded beside them, as one list, newest first, walked with one cursor. The store filters what
 * SQL can (route, repository, state or code, position); the rest (kind, text) is matched here on
 * the fields derive.ts reads from each body, scanning at most `scanLimit` rows of each kind per
 * page: a page may then hold fewer items than asked, with a cursor to go on from where the scan
 * stopped.
 */
import { MAX_VISUAL_CHECKS_KEPT, type EventState } from '../outbox/store.js';
import {
  EVENT_OUTCOMES,
  commitsOf,
  compareNewestFirst,
  decodeCursor,
  encodeCursor,
  eventSummary,
  isOlder,
  matchesQuery,
  positionOf,
  prettyBody,
  requestCodesOf,
  requestSummary,
  visualBuildOf,
} from './derive.js';
import { DEFAULT_MAX_REQUEST_AGE_MS, REQUEST_ID_PREFIX } from './requests.js';
import type {
  ActionResult,
  DeliveryDetail,
  DeliveryPage,
  DeliveryQuery,
  DeliverySource,
  DeliverySummary,
  EventRowQuery,
  Position,
  StoreWithConsole,
} from './source.js';

export interface DeliverySourceOptions {
  readonly store: StoreWithConsole;
  readonly now?: () => number;
  /** Rows read from the store at most per page and kind when filters leave most of them out (default 5000). */
  readonly scanLimit?: number;
  /** Refused requests older than this are not shown (default 24 h, as the recorder keeps them). */
  readonly requestMaxAgeMs?: number;
  /** An action put events back in the queue: wake the dispatcher (it sends them at once). */
  readonly onQueued?: (count: number) => void;
}

/** A query whose cursor is not one this module made. */
export class BadCursorError extends Error {}

/** The store filters for an outcome filter. */
function storeFilter(outcome: DeliveryQuery['outcome']): Pick<EventRowQuery, 'states' | 'attempted'> {
  const states = (list: EventState[], attempted: boolean | null = null) => ({ states: list, attempted });
  switch (outcome) {
    case 'stored':
      return states(['pending'], false);
    case 'retrying':
      return states(['pending'], true);
    case 'dispatched':
      return states(['delivered']);
    case 'dead':
      return states(['dead']);
    default:
      return { states: null, attempted: null };
  }
}

/** What one kind of rows gave a page: the matching items (at most limit + 1) and, when it stopped early, where. */
interface Scan {
  readonly items: DeliverySummary[];
  /** The last position read when the scan stopped before the end: nothing older is known yet. */
  readonly frontier: Position | null;
}

/**
 * Read newest first from `after`, in batches, until `limit + 1` items match the query, the rows
 * end, or `scanLimit` rows were read.
 */
async function scan(
  read: (after: Position | null, batch: number) => Promise<DeliverySummary[]>,
  after: Position | null,
  query: DeliveryQuery,
  limit: number,
  scanLimit: number,
): Promise<Scan> {
  const items: DeliverySummary[] = [];
  const batch = Math.min(500, Math.max(limit + 1, 50));
  let position = after;
  let scanned = 0;
  for (;;) {
    const rows = await read(position, batch);
    for (const row of rows) {
      scanned += 1;
      position = positionOf(row);
      if (matchesQuery(row, query)) items.push(row);
      if (items.length > limit) return { items, frontier: position };
    }
    if (rows.length < batch) return { items, frontier: null };
    if (scanned >= scanLimit) return { items, frontier: position };
  }
}

export function createDeliverySource(options: DeliverySourceOptions): DeliverySource {
  const { store } = options;
  const now = options.now ?? Date.now;
  const scanLimit = Math.max(1, options.scanLimit ?? 5000);
  const requestMaxAgeMs = options.requestMaxAgeMs ?? DEFAULT_MAX_REQUEST_AGE_MS;

  async function list(query: DeliveryQuery): Promise<DeliveryPage> {
    const limit = Math.max(1, Math.min(200, Math.floor(query.limit)));
    let after: Position | null = null;
    if (query.cursor) {
      after = decodeCursor(query.cursor);
      if (after === null) throw new BadCursorError('not a cursor of this list');
    }
    // Read before the rows: a change after this moves the marker again, so the page re-reads.
    const marker = await store.console.changeMarker();
    const outcome = query.outcome ?? null;
    const route = query.route ?? null;
    const repo = query.repo ?? null;
    const none: Scan = { items: [], frontier: null };
    const wantEvents = outcome === null || EVENT_OUTCOMES.has(outcome);
    const wantRequests = outcome === null || !EVENT_OUTCOMES.has(outcome);

    const filter = storeFilter(outcome);
    const events = wantEvents
      ? await scan(
          async (position, batch) => (await store.console.listEvents({ after: position, limit: batch, route, repo, ...filter })).map(eventSummary),
          after,
          query,
          limit,
          scanLimit,
        )
      : none;
    const codes = requestCodesOf(outcome);
    const since = now() - requestMaxAgeMs;
    const requests = wantRequests
      ? await scan(
          async (position, batch) => (await store.console.listRequests({ after: position, limit: batch, route, repo, codes, since })).map(requestSummary),
          after,
          query,
          limit,
          scanLimit,
        )
      : none;

    // Items older than where either scan stopped wait for the next page: the other kind's rows
    // there are not read yet. The cutoff is the newer of the two stopping points.
    const stops = [events.frontier, requests.frontier].filter((p): p is Position => p !== null).sort(compareNewestFirst);
    const cutoff = stops[0] ?? null;
    const merged = [...events.items, ...requests.items]
      .filter((s) => cutoff === null || !isOlder(s, cutoff))
      .sort((a, b) => compareNewestFirst(positionOf(a), positionOf(b)));
    const items = merged.slice(0, limit);
    let next: string | null = null;
    if (merged.length > limit) next = encodeCursor(positionOf(items.at(-1)!));
    else if (cutoff !== null) next = encodeCursor(cutoff);
    return { items, next, marker };
  }

  async function get(id: string): Promise<DeliveryDetail | null> {
    if (id.startsWith(REQUEST_ID_PREFIX)) {
      const record = await store.console.getRequest(id);
      return record ? { type: 'request', summary: requestSummary(record), request: record } : null;
    }
    const row = await store.console.getEvent(id);
    if (!row) return null;
    const buildId = visualBuildOf(row.body);
    return {
      type: 'event',
      summary: eventSummary(row),
      eventType: row.eventType,
      body: row.body,
      pretty: prettyBody(row.body),
      extra: row.extra,
      commits: commitsOf(row.body),
      attempts: row.attemptHistory,
      visual: buildId === null ? null : await store.console.listVisualChecks(row.route, buildId, MAX_VISUAL_CHECKS_KEPT),
      requeuedAt: row.requeuedAt,
    };
  }

  /** After an action changed nothing: why. */
  async function refusal(id: string, wanted: 'dead' | 'delivered'): Promise<ActionResult> {
    const row = id.startsWith(REQUEST_ID_PREFIX) ? null : await store.console.getEvent(id);
    if (!row) return { ok: false, code: 'not_found', message: 'no stored event has this id (a refused request stored nothing to send)' };
    if (wanted === 'dead') return { ok: false, code: 'not_dead', message: `only a dead event can be requeued; this one is ${eventSummary(row).outcome.state}` };
    return { ok: false, code: 'not_delivered', message: `only a dispatched event can be sent again; this one is ${eventSummary(row).outcome.state}` };
  }

  function queued(count: number): ActionResult {
    if (count > 0) options.onQueued?.(count);
    return { ok: true, count };
  }

  return {
    list,
    get,
    async requeue(id) {
      if (!id.startsWith(REQUEST_ID_PREFIX) && (await store.requeue(id, now()))) return queued(1);
      return refusal(id, 'dead');
    },
    async requeueRoute(route) {
      return queued(await store.console.requeueDead(route, now()));
    },
    async resend(id) {
      if (!id.startsWith(REQUEST_ID_PREFIX) && (await store.console.resend(id, now()))) return queued(1);
      return refusal(id, 'delivered');
    },
    marker: () => store.console.changeMarker(),
  };
}
