/**
 * An in-memory `ConsoleStore` for the console's tests, behind the real `createDeliverySource` (so
 * the tests exercise the real merging, filtering and paging), with a `RequestLog` for refused
 * requests and a manual clock. `dispatchDue()` plays the dispatcher: every pending event due now
 * is sent, with an accepted attempt recorded.
 */
import { randomUUID } from 'node:crypto';
import { createDeliverySource } from '../../../src/relay/console/deliveries.js';
import { compareNewestFirst, isOlder } from '../../../src/relay/console/derive.js';
import { RequestLog, type NewRequest } from '../../../src/relay/console/requests.js';
import type {
  ConsoleStore,
  DeliverySource,
  DispatchAttempt,
  EventRow,
  EventRowDetail,
  EventRowQuery,
  RequestRecord,
  VisualCheck,
} from '../../../src/relay/console/source.js';
import type { EventState } from '../../../src/relay/outbox/store.js';

export interface MemoryEvent {
  id: string;
  route: string;
  repo: string;
  eventType: string;
  body: string;
  extra: string | null;
  receivedAt: number;
  state: EventState;
  attempts: number;
  nextAttemptAt: number;
  lastError: string | null;
  requeuedAt: number | null;
  attemptHistory: DispatchAttempt[];
  visualChecks: VisualCheck[] | null;
}

export type NewMemoryEvent = Partial<MemoryEvent> & { body: string | object; receivedAt: number };

export class MemoryConsoleStore implements ConsoleStore {
  readonly events = new Map<string, MemoryEvent>();
  private version = 0;
  /** Calls of listEvents, for tests of the paging. */
  listCalls = 0;

  add(input: NewMemoryEvent): MemoryEvent {
    const body = typeof input.body === 'string' ? input.body : JSON.stringify(input.body);
    const isVisual = /"build_id"/.test(body);
    const event: MemoryEvent = {
      id: input.id ?? randomUUID(),
      route: input.route ?? 'default',
      repo: input.repo ?? 'acme/web',
      eventType: input.eventType ?? 'saucelabs',
      extra: input.extra ?? null,
      receivedAt: input.receivedAt,
      state: input.state ?? 'pending',
      attempts: input.attempts ?? 0,
      nextAttemptAt: input.nextAttemptAt ?? input.receivedAt,
      lastError: input.lastError ?? null,
      requeuedAt: input.requeuedAt ?? null,
      attemptHistory: input.attemptHistory ?? [],
      visualChecks: input.visualChecks ?? (isVisual ? [] : null),
      body,
    };
    this.events.set(event.id, event);
    this.version += 1;
    return event;
  }

  private row(e: MemoryEvent): EventRow {
    return {
      id: e.id,
      route: e.route,
      repo: e.repo,
      eventType: e.eventType,
      body: e.body,
      extra: e.extra,
      receivedAt: e.receivedAt,
      state: e.state,
      attempts: e.attempts,
      nextAttemptAt: e.nextAttemptAt,
      lastError: e.lastError,
      requeuedAt: e.requeuedAt,
      lastAttempt: e.attemptHistory.at(-1) ?? null,
    };
  }

  async listEvents(q: EventRowQuery): Promise<EventRow[]> {
    this.listCalls += 1;
    return [...this.events.values()]
      .filter((e) => q.after === null || isOlder(e, q.after))
      .filter((e) => q.route === null || e.route === q.route)
      .filter((e) => q.repo === null || e.repo.toLowerCase() === q.repo.toLowerCase())
      .filter((e) => q.states === null || q.states.includes(e.state))
      .filter((e) => q.attempted === null || e.attempts > 0 === q.attempted)
      .sort(compareNewestFirst)
      .slice(0, q.limit)
      .map((e) => this.row(e));
  }

  async getEvent(id: string): Promise<EventRowDetail | null> {
    const e = this.events.get(id);
    return e ? { ...this.row(e), attemptHistory: [...e.attemptHistory], visualChecks: e.visualChecks ? [...e.visualChecks] : null } : null;
  }

  private queue(e: MemoryEvent, now: number): void {
    e.state = 'pending';
    e.attempts = 0;
    e.nextAttemptAt = now;
    e.lastError = null;
    e.requeuedAt = now;
    this.version += 1;
  }

  async requeue(id: string, now: number): Promise<boolean> {
    const e = this.events.get(id);
    if (e?.state !== 'dead') return false;
    this.queue(e, now);
    return true;
  }

  async requeueDead(route: string, now: number): Promise<number> {
    let n = 0;
    for (const e of this.events.values()) {
      if (e.route === route && e.state === 'dead') {
        this.queue(e, now);
        n += 1;
      }
    }
    return n;
  }

  async resend(id: string, now: number): Promise<boolean> {
    const e = this.events.get(id);
    if (e?.state !== 'delivered') return false;
    this.queue(e, now);
    return true;
  }

  async changeMarker(): Promise<string> {
    return String(this.version);
  }

  /** The dispatcher's part: every pending event due at `now` is sent in one dispatch that GitHub accepts. */
  dispatchDue(now: number): number {
    const due = [...this.events.values()].filter((e) => e.state === 'pending' && e.nextAttemptAt <= now);
    const dispatchId = `d-${randomUUID().slice(0, 8)}`;
    for (const e of due) {
      e.state = 'delivered';
      e.attemptHistory.push({ at: now, dispatchId, events: due.length, status: 204, message: 'accepted', result: 'sent', code: null });
    }
    if (due.length > 0) this.version += 1;
    return due.length;
  }
}

export interface MemorySource {
  readonly source: DeliverySource;
  readonly store: MemoryConsoleStore;
  readonly requests: RequestLog;
  /** The clock the source and the request log read. */
  readonly clock: { now: number };
  refuse(request: Omit<NewRequest, 'receivedAt'> & { receivedAt?: number }): RequestRecord;
}

export function createMemorySource(options: { now?: number; scanLimit?: number; maxRequests?: number } = {}): MemorySource {
  const clock = { now: options.now ?? Date.parse('2025-09-02T15:00:00Z') };
  const store = new MemoryConsoleStore();
  const requests = new RequestLog({ idPrefix: 'mem', maxCount: options.maxRequests ?? 1000 });
  const source = createDeliverySource({ store, requests, now: () => clock.now, ...(options.scanLimit ? { scanLimit: options.scanLimit } : {}) });
  return {
    source,
    store,
    requests,
    clock,
    refuse: (request) => requests.record({ ...request, receivedAt: request.receivedAt ?? clock.now }, clock.now),
  };
}
