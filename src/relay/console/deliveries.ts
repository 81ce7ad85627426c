/**
 * A `DeliverySource` from a store's rows (`ConsoleStore`) and the in-memory `RequestLog`: one list,
 * newest first, walked with one cursor. The store filters what SQL can (route, repository, state);
 * the rest (kind, text) is matched here on the fields derive.ts reads from each body, scanning at
 * most `scanLimit` rows per page: a page may then hold fewer items than asked, with a cursor to
 * go on from where the scan stopped.
 */
import type { EventState } from '../outbox/store.js';
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
  requestSummary,
} from './derive.js';
import { REQUEST_ID_PREFIX, type RequestLog } from './requests.js';
import type {
  ActionResult,
  ConsoleStore,
  DeliveryDetail,
  DeliveryPage,
  DeliveryQuery,
  DeliverySource,
  DeliverySummary,
  EventRowQuery,
  Position,
} from './source.js';

export interface DeliverySourceOptions {
  readonly store: ConsoleStore;
  readonly requests: RequestLog;
  readonly now?: () => number;
  /** Rows read from the store at most per page when filters leave most of them out (default 5000). */
  readonly scanLimit?: number;
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

export function createDeliverySource(options: DeliverySourceOptions): DeliverySource {
  const { store, requests } = options;
  const now = options.now ?? Date.now;
  const scanLimit = Math.max(1, options.scanLimit ?? 5000);

  async function list(query: DeliveryQuery): Promise<DeliveryPage> {
    const limit = Math.max(1, Math.min(200, Math.floor(query.limit)));
    let after: Position | null = null;
    if (query.cursor) {
      after = decodeCursor(query.cursor);
      if (after === null) throw new BadCursorError('not a cursor of this list');
    }
    const marker = await markerNow();
    const outcome = query.outcome ?? null;
    const wantEvents = outcome === null || EVENT_OUTCOMES.has(outcome);
    const wantRequests = outcome === null || !EVENT_OUTCOMES.has(outcome);

    const fromLog: DeliverySummary[] = wantRequests
      ? requests
          .list(now())
          .filter((r) => after === null || isOlder(r, after))
          .map(requestSummary)
          .filter((s) => matchesQuery(s, query))
      : [];

    const fromStore: DeliverySummary[] = [];
    /** Where the store scan stopped, when it did not reach the end: nothing older is known yet. */
    let frontier: Position | null = null;
    if (wantEvents) {
      let position = after;
      let scanned = 0;
      const batch = Math.min(500, Math.max(limit + 1, 50));
      const filter = storeFilter(outcome);
      for (;;) {
        const rows = await store.listEvents({ after: position, limit: batch, route: query.route ?? null, repo: query.repo ?? null, ...filter });
        for (const row of rows) {
          scanned += 1;
          position = positionOf(row);
          const summary = eventSummary(row);
          if (matchesQuery(summary, query)) fromStore.push(summary);
          if (fromStore.length > limit) break;
        }
        if (rows.length < batch && fromStore.length <= limit) break; // the end of the store
        if (fromStore.length > limit || scanned >= scanLimit) {
          frontier = position;
          break;
        }
      }
    }

    const merged = [...fromStore, ...fromLog]
      .filter((s) => frontier === null || !isOlder(s, frontier))
      .sort((a, b) => compareNewestFirst(positionOf(a), positionOf(b)));
    const items = merged.slice(0, limit);
    let next: string | null = null;
    if (merged.length > limit) next = encodeCursor(positionOf(items.at(-1)!));
    else if (frontier !== null) next = encodeCursor(frontier);
    return { items, next, marker };
  }

  async function get(id: string): Promise<DeliveryDetail | null> {
    if (id.startsWith(REQUEST_ID_PREFIX)) {
      const record = requests.get(id, now());
      return record ? { type: 'request', summary: requestSummary(record), request: record } : null;
    }
    const row = await store.getEvent(id);
    if (!row) return null;
    return {
      type: 'event',
      summary: eventSummary(row),
      eventType: row.eventType,
      body: row.body,
      pretty: prettyBody(row.body),
      extra: row.extra,
      commits: commitsOf(row.body),
      attempts: row.attemptHistory,
      visual: row.visualChecks,
      requeuedAt: row.requeuedAt,
    };
  }

  /** After an action changed nothing: why. */
  async function refusal(id: string, wanted: 'dead' | 'delivered'): Promise<ActionResult> {
    const row = id.startsWith(REQUEST_ID_PREFIX) ? null : await store.getEvent(id);
    if (!row) return { ok: false, code: 'not_found', message: 'no stored event has this id (a refused request stored nothing to send)' };
    if (wanted === 'dead') return { ok: false, code: 'not_dead', message: `only a dead event can be requeued; this one is ${eventSummary(row).outcome.state}` };
    return { ok: false, code: 'not_delivered', message: `only a dispatched event can be sent again; this one is ${eventSummary(row).outcome.state}` };
  }

  async function markerNow(): Promise<string> {
    return `${await store.changeMarker()}.${requests.marker(now())}`;
  }

  return {
    list,
    get,
    async requeue(id) {
      if (!id.startsWith(REQUEST_ID_PREFIX) && (await store.requeue(id, now()))) return { ok: true, count: 1 };
      return refusal(id, 'dead');
    },
    async requeueRoute(route) {
      return { ok: true, count: await store.requeueDead(route, now()) };
    },
    async resend(id) {
      if (!id.startsWith(REQUEST_ID_PREFIX) && (await store.resend(id, now()))) return { ok: true, count: 1 };
      return refusal(id, 'delivered');
    },
    marker: markerNow,
  };
}
