/**
 * An in-memory `ConsoleStore` for the console's tests, behind the real `createDeliverySource` (so
 * the tests exercise the real merging, filtering and paging), with refused requests kept as the
 * stores keep them and a manual clock. `dispatchDue()` plays the dispatcher: every pending event
 * due now is sent, with an accepted attempt recorded.
 */
import { randomUUID } from 'node:crypto';
import { createDeliverySource } from '../../../src/relay/console/deliveries.js';
import { compareNewestFirst, isOlder, visualBuildOf } from '../../../src/relay/console/derive.js';
import { toRequestRecord } from '../../../src/relay/console/requests.js';
import type {
  ConsoleStore,
  DeliverySource,
  DispatchAttempt,
  EventRow,
  EventRowDetail,
  EventRowQuery,
  RequestRecord,
  RequestRetention,
  RequestRowQuery,
  VisualCheck,
} from '../../../src/relay/console/source.js';
import type { RefusedRequest } from '../../../src/relay/http/handler.js';
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
  readonly requests: RequestRecord[] = [];
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
    return e ? { ...this.row(e), attemptHistory: [...e.attemptHistory] } : null;
  }

  /** The re-reads of a build are kept on its events here (the stores keep them per route and build). */
  async listVisualChecks(route: string, buildId: string, limit: number): Promise<VisualCheck[]> {
    const owner = [...this.events.values()].find((e) => e.route === route && e.visualChecks && visualBuildOf(e.body) === buildId);
    return (owner?.visualChecks ?? []).slice(-limit);
  }

  async recordRequests(records: readonly RequestRecord[], retention: RequestRetention): Promise<void> {
    this.requests.push(...records);
    const kept = this.requests.filter((r) => r.receivedAt >= retention.now - retention.maxAgeMs).slice(-retention.maxCount);
    this.requests.splice(0, this.requests.length, ...kept);
    this.version += 1;
  }

  async listRequests(q: RequestRowQuery): Promise<RequestRecord[]> {
    return this.requests
      .filter((r) => r.receivedAt >= q.since)
      .filter((r) => q.after === null || isOlder(r, q.after))
      .filter((r) => q.route === null || r.route === q.route)
      .filter((r) => q.repo === null || r.repo?.toLowerCase() === q.repo.toLowerCase())
      .filter((r) => q.codes === null || q.codes.includes(r.code))
      .sort(compareNewestFirst)
      .slice(0, q.limit);
  }

  async getRequest(id: string): Promise<RequestRecord | null> {
    return this.requests.find((r) => r.id === id) ?? null;
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

/** A refused request as a test writes it: what the handler reports, with defaults. */
export type NewRefusal = Partial<RefusedRequest> & Pick<RefusedRequest, 'status' | 'code' | 'reason' | 'bytes'> & { source?: string };

export interface MemorySource {
  readonly source: DeliverySource;
  readonly store: MemoryConsoleStore;
  /** The clock the source reads. */
  readonly clock: { now: number };
  /** Record a refused request as the recorder would (kept 24 h, at most `maxRequests`). */
  refuse(request: NewRefusal): RequestRecord;
  /** How many times an action asked to wake the dispatcher. */
  readonly woken: number[];
}

export function createMemorySource(options: { now?: number; scanLimit?: number; maxRequests?: number } = {}): MemorySource {
  const clock = { now: options.now ?? Date.parse('2025-09-02T15:00:00Z') };
  const store = new MemoryConsoleStore();
  const woken: number[] = [];
  const source = createDeliverySource({
    store: { console: store, requeue: (id, now) => store.requeue(id, now) },
    now: () => clock.now,
    onQueued: (count) => woken.push(count),
    ...(options.scanLimit ? { scanLimit: options.scanLimit } : {}),
  });
  let n = 0;
  return {
    source,
    store,
    clock,
    woken,
    refuse(request) {
      n += 1;
      const { source: from, ...rest } = request;
      const record = toRequestRecord(
        {
          receivedAt: clock.now,
          route: null,
          repo: null,
          peer: from ?? null,
          forwardedFor: null,
          signature: null,
          issues: [],
          event: null,
          duplicateOf: null,
          ...rest,
        },
        `req-mem-${n.toString(36)}`,
      );
      void store.recordRequests([record], { now: clock.now, maxAgeMs: 24 * 3_600_000, maxCount: options.maxRequests ?? 10_000 });
      return record;
    },
  };
}
