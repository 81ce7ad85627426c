/**
 * The background dispatcher: claims stored events with a lease, groups those for the same
 * repo + event_type that arrive within `groupWindowMs` of the group's first event, and sends each
 * group as few `repository_dispatch` calls as GitHub's limits allow.
 *
 * Timing: a group is sent once no new event of it has arrived for one window (so a build that is
 * still sending keeps filling the same dispatches), at the latest `groupMaxHoldMs` after its first
 * event, or at once for every dispatch the group already fills. `notify()` (called after each stored event) schedules a wake-up one window later,
 * so a burst costs a claim per window, not one per request; `pollMs` picks up what other processes
 * or expired leases left. Every cycle claims first, so a group leaves with everything received
 * until its window closed.
 *
 * Failures: 429/403 rate limits pause every send until GitHub's hint; 5xx, timeouts and network
 * errors back off per group with jitter; 401/404/422 and events older than `maxAgeMs` are
 * dead-lettered. Nothing is retried inside a request: the store holds the events meanwhile.
 * Decisions carry typed codes (the outcome's `code`, DeadLetterCode); reasons are for people.
 *
 * Several processes on one store (PostgreSQL, or two relays on one SQLite file): the store hands
 * out whole groups (see store.ts), so one process sends a repository's events at a time, and its
 * window counts from the receipt times of all the group's events, whichever process stored them.
 * Each process polls every `pollMs`, so an event stored by another one, or requeued with the CLI,
 * is claimed within about a poll.
 *
 * Leases: every mark names this dispatcher as the owner, and the store changes only events it
 * still holds. A mark that changes nothing means the lease ran out and another process took the
 * events: that process sends them (again); this one only logs it.
 *
 * Time: `now` and `timers` are the dispatcher's clock (default Date.now and the global timers);
 * its tests drive both, so what it groups and when it sends never depends on machine speed.
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { DispatchAttempt, EventStore, StoredEvent } from './store.js';
import type { DispatchOutcome } from '../../github/answers.js';
import type { DispatchClient } from './dispatch-client.js';
import type { Logger } from '../logger.js';
import type { RelayMetrics } from '../metrics.js';
import { DEFAULT_BACKOFF, nextAttemptAt, tooOld, type BackoffOptions } from './backoff.js';
import { envelopeEntry, makeEnvelope, type EntryResult, type TruncatedField } from '../../sauce/envelope.js';
import { splitForDispatch, validEventType, DISPATCH_MAX_PAYLOAD_BYTES } from '../../github/limits.js';
import { type Timers, UNREF_TIMERS } from '../timers.js';

export interface DispatcherOptions {
  store: EventStore;
  client: DispatchClient;
  logger: Logger;
  metrics: RelayMetrics;
  /** Group events of one repo + event_type that arrive within this window of each other. Default 2000; 0 = no grouping. */
  groupWindowMs?: number;
  /** The longest a group waits for more events after its first one. Default 5 windows. */
  groupMaxHoldMs?: number;
  /** Claim lease. Default 30 s: a dead process's events are sent again within about a minute. Must exceed the client's timeout. */
  leaseMs?: number;
  /** Give up on an event this long after receipt (or requeue). Default 3 days. */
  maxAgeMs?: number;
  /** Look for due events (retries, other processes, expired leases) this often. Default 1000. */
  pollMs?: number;
  now?: () => number;
  /** Lease owner name; default hostname:pid:random. */
  owner?: string;
  /** Exponential backoff for 5xx, timeouts and network errors. Default 1 s doubling to 5 min. */
  backoff?: BackoffOptions;
  /** When set, forget delivered events and dedup keys older than this, once an hour. */
  retentionMs?: number;
  /** Schedules the cycles. Default the global timers (unref'd). A callback may return the cycle's promise. */
  timers?: Timers;
}

export interface PlannedDispatch {
  repo: string;
  eventType: string;
  events: StoredEvent[];
  clientPayload: Record<string, unknown>;
  /** Events shortened to fit (see envelopeEntry), with what was cut. */
  truncated: { id: string; fields: readonly TruncatedField[] }[];
}

export interface DispatchPlan {
  dispatches: PlannedDispatch[];
  /** Events that can never be sent: unreadable body, invalid event_type (and none for its size: see envelopeEntry). */
  rejected: { event: StoredEvent; code: DeadLetterCode; reason: string }[];
}

/**
 * Why an event was given up on (the `reason` label of the dead-letter metric): older than the
 * maximum age, impossible to send as stored, or refused by GitHub (401, 403, 404, 422...).
 */
export type DeadLetterCode = 'max_age' | 'invalid' | 'rejected';

export const DEFAULT_GROUP_WINDOW_MS = 2_000;
export const DEFAULT_LEASE_MS = 30_000;
export const DEFAULT_MAX_AGE_MS = 3 * 24 * 60 * 60_000;
export const DEFAULT_POLL_MS = 1_000;
const CLAIM_BATCH = 500;
/**
 * Events claimed and kept in memory at once (bodies and built entries). Against a real GitHub the
 * relay sends about one dispatch a second, each as many events as fit in 64 KB (tens of real ones),
 * so 1,000 is a quarter minute of sends or more: holding more only costs memory and lease renewals,
 * and the next claim refills. 5,000 peaked at 171–175 MB RSS under a burst, 1,000 at 150–155 MB
 * (BENCHMARKS.md, memory when dispatching for real).
 */
const MAX_HELD = 1_000;
const PRUNE_EVERY_MS = 60 * 60_000;
const GAUGE_EVERY_MS = 1_000;

type Entry = EntryResult | { readonly ok: false; readonly code: 'not_json'; readonly reason: string };
const entries = new WeakMap<StoredEvent, Entry>();

/**
 * The envelope entry of one stored event, sized and (when over the limit) shortened by the one
 * builder the serverless handler uses too. Memoised: parsed and serialised once, not on every
 * cycle the event is held.
 */
function entryOf(event: StoredEvent): Entry {
  let entry = entries.get(event);
  if (!entry) {
    let payload: unknown;
    try {
      payload = JSON.parse(event.body) as unknown;
    } catch (error) {
      entry = { ok: false, code: 'not_json', reason: `stored body is not JSON: ${error instanceof Error ? error.message : String(error)}` };
    }
    // The relay's notes stored beside the body (`extra`, a JSON object text) go in the entry's
    // `relay` field; unreadable notes are left out (they are the relay's additions: the event still goes).
    let relay: Record<string, unknown> | undefined;
    try {
      const notes = event.extra ? (JSON.parse(event.extra) as unknown) : undefined;
      if (typeof notes === 'object' && notes !== null && !Array.isArray(notes)) relay = notes as Record<string, unknown>;
    } catch {
      relay = undefined;
    }
    entry ??= envelopeEntry(payload, {
      id: event.id,
      received_at: new Date(event.receivedAt).toISOString(),
      route: event.route,
      ...(relay ? { relay } : {}),
    });
    entries.set(event, entry);
  }
  return entry;
}

/** UTF-8 size of an event's entry (only asked of events whose entry was built). */
function entryBytes(event: StoredEvent): number {
  const entry = entryOf(event);
  return entry.ok ? entry.bytes : 0;
}

function groupKey(event: StoredEvent): string {
  return `${event.repo}\u0000${event.eventType}`;
}

/**
 * Pure: group by repo + event_type (in order of first appearance), then pack each group, in
 * receipt order, into client_payloads under GitHub's limits.
 */
export function planDispatches(events: readonly StoredEvent[]): DispatchPlan {
  const groups = new Map<string, StoredEvent[]>();
  const rejected: DispatchPlan['rejected'] = [];
  for (const event of events) {
    const entry = entryOf(event);
    if (!entry.ok) {
      rejected.push({ event, code: 'invalid', reason: entry.reason });
      continue;
    }
    if (!validEventType(event.eventType)) {
      rejected.push({ event, code: 'invalid', reason: `invalid event_type (1 to 100 characters): ${JSON.stringify(event.eventType).slice(0, 120)}` });
      continue;
    }
    const key = groupKey(event);
    const group = groups.get(key);
    if (group) group.push(event);
    else groups.set(key, [event]);
  }
  const built = (e: StoredEvent) => entryOf(e) as Extract<EntryResult, { ok: true }>;
  const wrap = (batch: StoredEvent[]): Record<string, unknown> => makeEnvelope(batch.map((e) => built(e).entry));
  const dispatches: PlannedDispatch[] = [];
  for (const group of groups.values()) {
    const sorted = [...group].sort((a, b) => a.receivedAt - b.receivedAt);
    const split = splitForDispatch(sorted, wrap, DISPATCH_MAX_PAYLOAD_BYTES, entryBytes);
    // Every built entry fits alone (envelopeEntry sizes it so); this only guards that promise.
    if (!split.ok) for (const event of split.tooLarge) rejected.push({ event, code: 'invalid', reason: 'entry over the dispatch limit' });
    for (const batch of split.batches) {
      const truncated = batch.filter((e) => built(e).truncated.length > 0).map((e) => ({ id: e.id, fields: built(e).truncated }));
      dispatches.push({ repo: batch[0]!.repo, eventType: batch[0]!.eventType, events: batch, clientPayload: wrap(batch), truncated });
    }
  }
  return { dispatches, rejected };
}

/**
 * Pure: what the store keeps of one dispatch call (for the delivery console): GitHub's status and
 * message as it answered, else the error; `accepted` for a call GitHub took.
 */
export function dispatchAttempt(outcome: DispatchOutcome, dispatchId: string, events: number, at: number, dryRun = false): DispatchAttempt {
  const status = outcome.status ?? null;
  if (outcome.kind === 'sent')
    return { at, dispatchId, events, status, message: dryRun ? 'dry run: logged, not sent' : 'accepted', result: 'sent', code: null };
  return { at, dispatchId, events, status, message: outcome.message ?? outcome.reason, result: outcome.kind, code: outcome.code };
}

/**
 * Pure: when a group may leave. It waits until no new event has arrived for one window (a build
 * still sending keeps filling the same dispatches), but never longer than `maxHoldMs` after its
 * first event. Window 0 sends at once.
 */
export function groupReadyAt(firstReceived: number, lastReceived: number, windowMs: number, maxHoldMs: number): number {
  if (windowMs <= 0) return firstReceived;
  return Math.min(lastReceived + windowMs, firstReceived + Math.max(windowMs, maxHoldMs));
}

interface Held {
  event: StoredEvent;
  leaseUntil: number;
}

export class Dispatcher {
  private readonly store: EventStore;
  private readonly client: DispatchClient;
  private readonly logger: Logger;
  private readonly metrics: RelayMetrics;
  private readonly windowMs: number;
  private readonly maxHoldMs: number;
  private readonly leaseMs: number;
  private readonly maxAgeMs: number;
  private readonly pollMs: number;
  private readonly now: () => number;
  private readonly owner: string;
  private readonly backoff: BackoffOptions;
  private readonly retentionMs: number | undefined;
  private readonly timers: Timers;

  private readonly held = new Map<string, Held>();
  private started = false;
  private stopping = false;
  private pausedUntil = 0;
  private timer: unknown = null;
  private wakeAt = Infinity;
  private loop: Promise<void> | null = null;
  private again = false;
  /** Bytes notified since the last cycle claimed: enough for a full dispatch is worth a cycle now. */
  private notifiedBytes = 0;
  private lastGauge = 0;
  private lastPrune = 0;

  constructor(o: DispatcherOptions) {
    this.store = o.store;
    this.client = o.client;
    this.logger = o.logger;
    this.metrics = o.metrics;
    this.windowMs = Math.max(0, o.groupWindowMs ?? DEFAULT_GROUP_WINDOW_MS);
    this.maxHoldMs = Math.max(this.windowMs, o.groupMaxHoldMs ?? 5 * this.windowMs);
    // A group waits up to maxHold while claimed; keep the lease comfortably longer.
    this.leaseMs = Math.max(o.leaseMs ?? DEFAULT_LEASE_MS, 2 * this.maxHoldMs + 1_000);
    this.maxAgeMs = o.maxAgeMs ?? DEFAULT_MAX_AGE_MS;
    this.pollMs = Math.max(10, o.pollMs ?? DEFAULT_POLL_MS);
    this.now = o.now ?? Date.now;
    this.owner = o.owner ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    this.backoff = o.backoff ?? DEFAULT_BACKOFF;
    this.retentionMs = o.retentionMs;
    this.timers = o.timers ?? UNREF_TIMERS;
  }

  start(): void {
    if (this.started || this.stopping) return;
    this.started = true;
    this.logger.info({ owner: this.owner, groupWindowMs: this.windowMs, leaseMs: this.leaseMs, dryRun: this.client.dryRun }, 'dispatcher started');
    this.wake(this.now());
  }

  /**
   * A new event of `bytes` was stored. Without grouping, look at once; else when its window
   * closes, or at once when enough has arrived since the last cycle to fill a whole dispatch.
   */
  notify(bytes = 0): void {
    if (!this.started || this.stopping) return;
    this.notifiedBytes += bytes;
    this.wake(this.notifiedBytes >= DISPATCH_MAX_PAYLOAD_BYTES ? this.now() : this.now() + this.windowMs);
  }

  /**
   * Events were put back in the queue by hand (the delivery console's requeue or send-again): look
   * now, not at the next poll. Their receipt is long past, so their group leaves in this cycle.
   */
  wakeNow(): void {
    if (!this.started || this.stopping) return;
    this.wake(this.now());
  }

  /** Finish the dispatch in flight, give back every claimed event not sent, stop. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.clearTimer();
    while (this.loop) await this.loop;
    const ids = [...this.held.keys()];
    this.held.clear();
    if (ids.length) {
      try {
        await this.store.release(this.owner, ids);
      } catch (error) {
        this.logger.warn({ err: error, events: ids.length }, 'could not release claimed events; they are claimable again when their lease runs out');
      }
    }
    this.started = false;
    this.logger.info({ owner: this.owner, released: ids.length }, 'dispatcher stopped');
  }

  private clearTimer(): void {
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
    this.wakeAt = Infinity;
  }

  /** Run a cycle at `at` (epoch ms) unless one is already due earlier. */
  private wake(at: number): void {
    if (this.stopping || !this.started || at >= this.wakeAt) return;
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.wakeAt = at;
    this.timer = this.timers.setTimeout(
      () => {
        this.timer = null;
        this.wakeAt = Infinity;
        return this.runCycle();
      },
      Math.max(0, at - this.now()),
    );
  }

  /** Cycles never overlap: a request for one during a cycle runs another right after. */
  private runCycle(): Promise<void> {
    if (this.loop) {
      this.again = true;
      return this.loop;
    }
    this.loop = (async () => {
      try {
        do {
          this.again = false;
          try {
            await this.cycle();
          } catch (error) {
            this.logger.error({ err: error }, 'dispatcher cycle failed; trying again shortly');
            this.wake(this.now() + this.pollMs);
          }
        } while (this.again && !this.stopping);
      } finally {
        this.loop = null;
      }
    })();
    return this.loop;
  }

  private async cycle(): Promise<void> {
    if (this.stopping) return;
    let now = this.now();
    if (now < this.pausedUntil) {
      // Rate limited: hold no lease while waiting.
      await this.releaseHeld([...this.held.keys()]);
      this.wake(this.pausedUntil);
      return;
    }

    // Renew leases running low (release + claim again) so a long wait never outlives its lease.
    const expiring = [...this.held.values()].filter((h) => h.leaseUntil - now < this.leaseMs / 2).map((h) => h.event.id);
    await this.releaseHeld(expiring);

    this.notifiedBytes = 0;
    while (this.held.size < MAX_HELD) {
      const claimed = await this.store.claim(this.owner, now, this.leaseMs, Math.min(CLAIM_BATCH, MAX_HELD - this.held.size));
      for (const event of claimed) this.held.set(event.id, { event, leaseUntil: now + this.leaseMs });
      if (claimed.length < CLAIM_BATCH) break;
    }

    // Too old: dead-letter before any attempt.
    const expired = [...this.held.values()].filter((h) => tooOld(h.event.requeuedAt ?? h.event.receivedAt, now, this.maxAgeMs)).map((h) => h.event);
    if (expired.length) await this.dead(expired, `undelivered ${Math.round(this.maxAgeMs / 3_600_000)} h after receipt`, 'max_age');

    const plan = planDispatches([...this.held.values()].map((h) => h.event));
    for (const { event, code, reason } of plan.rejected) await this.dead([event], reason, code);

    // Per group: once it is quiet for a window (or held for maxHold), send everything; before,
    // only dispatches already full. A steady stream of one build thus fills whole dispatches.
    const spans = new Map<string, { first: number; last: number }>();
    for (const h of this.held.values()) {
      const key = groupKey(h.event);
      const span = spans.get(key);
      if (span) {
        span.first = Math.min(span.first, h.event.receivedAt);
        span.last = Math.max(span.last, h.event.receivedAt);
      } else spans.set(key, { first: h.event.receivedAt, last: h.event.receivedAt });
    }
    const byGroup = new Map<string, PlannedDispatch[]>();
    for (const d of plan.dispatches) {
      const key = groupKey(d.events[0]!);
      const list = byGroup.get(key);
      if (list) list.push(d);
      else byGroup.set(key, [d]);
    }
    let nextWake = now + this.pollMs;
    for (const [key, dispatches] of byGroup) {
      const span = spans.get(key) ?? { first: now, last: now };
      const readyAt = groupReadyAt(span.first, span.last, this.windowMs, this.maxHoldMs);
      const ready = now >= readyAt;
      const toSend = ready ? dispatches : dispatches.slice(0, -1);
      if (!ready) nextWake = Math.min(nextWake, readyAt);
      for (const d of toSend) {
        if (this.stopping || this.now() < this.pausedUntil) break;
        now = this.now();
        // Never send on a lease that could run out mid-request; renew first (next cycle).
        if (d.events.some((e) => (this.held.get(e.id)?.leaseUntil ?? 0) - now < this.leaseMs / 2)) {
          this.again = true;
          break;
        }
        const retryAt = await this.send(d);
        if (retryAt !== undefined) nextWake = Math.min(nextWake, retryAt);
      }
    }
    if (this.pausedUntil > this.now()) nextWake = Math.min(nextWake, this.pausedUntil);
    this.wake(nextWake);
    await this.housekeeping();
  }

  /** One attempt. Returns when to try again, for a retry. */
  private async send(d: PlannedDispatch): Promise<number | undefined> {
    const ids = d.events.map((e) => e.id);
    const attempt = Math.max(...d.events.map((e) => e.attempts)) + 1;
    const dispatchId = `d-${randomUUID().replace(/-/g, '').slice(0, 12)}`;
    const started = this.now();
    let outcome: DispatchOutcome;
    try {
      outcome = await this.client.dispatch(d.repo, d.eventType, d.clientPayload);
    } catch (error) {
      outcome = { kind: 'retry', code: 'network', reason: `network error: ${error instanceof Error ? error.message : String(error)}` };
    }
    const now = this.now();
    for (const id of ids) this.held.delete(id);
    const tried = dispatchAttempt(outcome, dispatchId, ids.length, now, this.client.dryRun);
    const log = { ids, dispatchId, repo: d.repo, eventType: d.eventType, events: ids.length, attempt, outcome: outcome.kind, ms: now - started };
    switch (outcome.kind) {
      case 'sent': {
        this.noteLostLease(await this.store.markDelivered(this.owner, ids, now, tried), ids, 'delivered');
        this.metrics.dispatched.inc({ repo: d.repo });
        this.metrics.dispatchedEvents.inc(ids.length);
        for (const e of d.events) this.metrics.dispatchLatency.observe(Math.max(0, now - e.receivedAt) / 1000);
        this.logger.info({ ...log, dryRun: this.client.dryRun, ...(d.truncated.length ? { truncated: d.truncated } : {}) }, 'dispatch sent');
        return undefined;
      }
      case 'retry': {
        const deadline = Math.min(...d.events.map((e) => (e.requeuedAt ?? e.receivedAt) + this.maxAgeMs));
        const at = nextAttemptAt(outcome, attempt, now, deadline, this.backoff);
        if (outcome.retryAfterMs !== undefined) this.pausedUntil = Math.max(this.pausedUntil, now + outcome.retryAfterMs);
        this.noteLostLease(await this.store.markRetry(this.owner, ids, at, outcome.reason, tried), ids, 'retry');
        this.metrics.retries.inc({ reason: outcome.code });
        this.logger.warn({ ...log, reason: outcome.reason, retryInMs: at - now }, 'dispatch failed; will retry');
        return at;
      }
      case 'fatal': {
        this.logger.error({ ...log, reason: outcome.reason }, 'dispatch rejected; dead-lettered');
        await this.dead(d.events, outcome.reason, 'rejected', tried);
        return undefined;
      }
    }
  }

  private async dead(events: StoredEvent[], reason: string, code: DeadLetterCode, tried?: DispatchAttempt): Promise<void> {
    const ids = events.map((e) => e.id);
    for (const id of ids) this.held.delete(id);
    this.noteLostLease(await this.store.markDead(this.owner, ids, reason, tried), ids, 'dead');
    this.metrics.deadLettered.inc({ reason: code }, ids.length);
    if (code !== 'rejected') this.logger.error({ ids, repo: events[0]?.repo, events: ids.length, reason }, 'dead-lettered');
  }

  /** A mark that changed fewer events than it named: another process took them over (see the class comment). */
  private noteLostLease(changed: number, ids: string[], mark: 'delivered' | 'retry' | 'dead'): void {
    if (changed < ids.length) {
      this.logger.warn({ ids, mark, changed, owner: this.owner }, 'lease lost: another process holds these events now and sends them itself');
    }
  }

  private async releaseHeld(ids: string[]): Promise<void> {
    if (!ids.length) return;
    for (const id of ids) this.held.delete(id);
    await this.store.release(this.owner, ids);
  }

  private async housekeeping(): Promise<void> {
    const now = this.now();
    if (now - this.lastGauge >= GAUGE_EVERY_MS) {
      this.lastGauge = now;
      this.metrics.queueDepth.set((await this.store.stats()).pending);
    }
    if (this.retentionMs !== undefined && now - this.lastPrune >= PRUNE_EVERY_MS) {
      this.lastPrune = now;
      const forgotten = await this.store.prune(now - this.retentionMs);
      if (forgotten) this.logger.info({ forgotten }, 'pruned delivered events');
    }
  }
}
