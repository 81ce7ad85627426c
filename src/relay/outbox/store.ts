/**
 * The durable store behind the relay. Two implementations keep this contract, and one test suite
 * (test/relay/outbox/store-contract.ts) runs against both: SQLite, embedded, for one process
 * (src/relay/outbox/sqlite-store.ts), and PostgreSQL, shared by several relay instances
 * (src/relay/outbox/postgres-store.ts).
 *
 * Contract:
 * - `insert` resolves only once the event is durable (fsync'd). Concurrent inserts may be
 *   batched into one transaction, but none resolves before its transaction commits.
 * - `insert` deduplicates on (route, bodyHash) within `dedupWindowMs` of the first receipt.
 * - `insert` deduplicates by the store itself (a unique key), so two processes storing the same
 *   delivery at the same moment get one `stored` and one `duplicate`.
 * - `claim` hands each due event to one dispatcher at a time with a lease; an expired lease
 *   (a dead process) makes the event claimable again, so nothing acknowledged is stranded.
 * - Claims take whole groups. A group is the pending events of one (repo, eventType): the events
 *   that may leave together in one `repository_dispatch`. A group is held by the owner of any of
 *   its events whose lease is still running, and `claim` never hands out an event of a group that
 *   another owner holds: one process sends a repository's events at a time, so events of one build
 *   that reached different processes still leave in as few dispatches as on one process. The
 *   group is free again once its holder marked or released every event of it it held, or when
 *   those leases ran out (a dead process).
 * - `markDelivered`, `markRetry`, `markDead` and `release` take the lease owner and change only the
 *   events that owner still holds (`claimed_by` is still its name), and say how many they changed.
 *   A lost lease means another process claimed the event after this one's lease ran out: that
 *   holder sends it (again), so the slow owner's late mark is dropped. The cost is at most a second
 *   dispatch of the same event, which the Action tolerates (it keys events by their relay id and
 *   the latest receipt wins); what it prevents is a slow process marking delivered, retried or dead
 *   an event that another process is sending or has re-scheduled.
 */

import type { FatalCode, RetryCode } from '../../github/answers.js';
import type { VisualSummary } from '../../sauce/event.js';
import type { VisualStatus } from '../../sauce/schema.js';

export type EventState = 'pending' | 'delivered' | 'dead';

/**
 * One `repository_dispatch` call that carried an event, as the dispatcher hands it to its mark
 * (`markDelivered`, `markRetry`, `markDead`): the store keeps it beside each event the mark
 * changed, in the same transaction, for the delivery console. At most `MAX_ATTEMPTS_KEPT` per
 * event (the latest); they go with the event when it is pruned.
 */
export interface DispatchAttempt {
  /** Epoch ms when GitHub answered (or the call failed). */
  readonly at: number;
  /** The call's id: the events grouped into one dispatch share it. */
  readonly dispatchId: string;
  /** How many events the call carried. */
  readonly events: number;
  /** GitHub's HTTP status; null when there was no answer (timeout, network error, dry run). */
  readonly status: number | null;
  /** GitHub's message, or the error when there was no answer; `accepted` for a 2xx. */
  readonly message: string;
  /** The dispatcher's reading of the answer (src/github/answers.ts `DispatchOutcome`). */
  readonly result: 'sent' | 'retry' | 'fatal';
  readonly code: RetryCode | FatalCode | null;
}

/** The latest attempts kept per event (older ones are dropped as new ones come). */
export const MAX_ATTEMPTS_KEPT = 100;

/** What one Visual refresh re-read came to (src/relay/visual/visual-refresh.ts), per build. */
export type VisualCheckOutcome = 'changed' | 'unchanged' | 'decided' | 'not_found' | 'expired' | 'error';

/**
 * One re-read of a watched Visual build, kept per (route, build) for the delivery console: written
 * with the watch's reschedule or end, in the same transaction. At most `MAX_VISUAL_CHECKS_KEPT` per
 * build (the latest); pruned with delivered events, by age.
 */
export interface VisualCheck {
  /** Epoch ms of the re-read. */
  readonly at: number;
  readonly outcome: VisualCheckOutcome;
  /** The build's status as the API gave it (null when the read failed). */
  readonly status: VisualStatus | null;
  readonly summary: VisualSummary | null;
  /** The error, for `error` and `not_found`. */
  readonly error: string | null;
  /** The event the relay stored from a `changed` or `expired` read (null otherwise). */
  readonly eventId: string | null;
}

/** The latest re-reads kept per Visual build. */
export const MAX_VISUAL_CHECKS_KEPT = 200;

export interface NewEvent {
  /** Route name that accepted it (`default` in quick mode). */
  readonly route: string;
  /** Target `owner/repo`. */
  readonly repo: string;
  /** `repository_dispatch` event_type. */
  readonly eventType: string;
  /** The raw request body as received (UTF-8). The signature was checked over these bytes. */
  readonly body: string;
  /** Hex SHA-256 of the raw body, for deduplication. */
  readonly bodyHash: string;
  /** Epoch ms when the relay received it. */
  readonly receivedAt: number;
  /**
   * The event's own time in epoch ms, read from its body (a job's `modification_time`); absent or
   * null when it has none. A function of the body alone, so every delivery of the same body carries
   * the same: the SQLite store files its dedup key under it, so that new keys arrive roughly in
   * order at the end of the index instead of each on a random page.
   */
  readonly occurredAt?: number | null;
  /**
   * What the relay itself knows about the event beside Sauce's body, as a JSON object text (for
   * example the snapshot diffs a Visual refresh read). Kept apart from `body`, which stays the
   * bytes Sauce signed; the dispatcher adds it to the event's envelope entry. Absent: none.
   */
  readonly extra?: string | null;
}

export interface StoredEvent extends NewEvent {
  /**
   * At most 36 characters (the SQLite store's are UUIDs): the handler sizes an event's dispatch
   * entry before the store names it (STORED_ID_PLACEHOLDER in src/sauce/envelope.ts).
   */
  readonly id: string;
  readonly state: EventState;
  readonly attempts: number;
  /** Epoch ms before which the dispatcher must not try again. */
  readonly nextAttemptAt: number;
  readonly lastError: string | null;
  /** Epoch ms of the last `requeue`, when there was one: the maximum age counts from here. */
  readonly requeuedAt?: number;
}

export type InsertResult = { readonly kind: 'stored'; readonly id: string } | { readonly kind: 'duplicate'; readonly id: string };

export interface StoreStats {
  readonly pending: number;
  readonly delivered: number;
  readonly dead: number;
}

/**
 * Why a store cannot take a write: `closed` (stopped), `locked` (another process holds SQLite's
 * write lock, or the file is read-only), `unreachable` (no connection to the database),
 * `read_only` (the database is a standby or in read-only mode, e.g. mid-failover).
 */
export type NotReadyCode = 'closed' | 'locked' | 'unreachable' | 'read_only';

export type StoreReadiness = { readonly ready: true } | { readonly ready: false; readonly code: NotReadyCode; readonly reason: string };

export interface EventStore {
  insert(event: NewEvent, dedupWindowMs: number): Promise<InsertResult>;
  /**
   * Claim up to `limit` pending events due at `now` whose lease is free or expired, from groups no
   * other owner holds (see the contract above), in due order. The events come back in the order they were stored.
   */
  claim(owner: string, now: number, leaseMs: number, limit: number): Promise<StoredEvent[]>;
  /**
   * The events `owner` still holds are delivered. Returns how many it changed. With `attempt`
   * (the dispatch that carried them), it is recorded for each event changed, in the same
   * transaction; so with the two marks below.
   */
  markDelivered(owner: string, ids: readonly string[], now: number, attempt?: DispatchAttempt): Promise<number>;
  /** Release the lease and schedule another attempt; counts an attempt. Only events `owner` still holds. */
  markRetry(owner: string, ids: readonly string[], nextAttemptAt: number, error: string, attempt?: DispatchAttempt): Promise<number>;
  /**
   * Give up on the events `owner` still holds; `reason` is for people (the dead-letter list). With
   * `attempt` (GitHub refused the dispatch) it counts as an attempt; without (too old, unreadable), not.
   */
  markDead(owner: string, ids: readonly string[], reason: string, attempt?: DispatchAttempt): Promise<number>;
  /**
   * Give back events `owner` still holds, untouched (no attempt counted), claimable again at once:
   * on shutdown, and to renew a lease running low.
   */
  release(owner: string, ids: readonly string[]): Promise<number>;
  list(state: EventState, limit: number): Promise<StoredEvent[]>;
  /** Put a dead event back in the queue, due now. False when no dead event has that id. */
  requeue(id: string, now: number): Promise<boolean>;
  stats(): Promise<StoreStats>;
  /**
   * Forget delivered events (with their dispatch attempts), dedup keys and Visual re-reads older
   * than `before` (epoch ms). Returns the events forgotten.
   */
  prune(before: number): Promise<number>;
  /** Whether the store can take a write now, and if not why (for /readyz). */
  readiness(): Promise<StoreReadiness>;
  close(): Promise<void>;
}

/**
 * A Visual build the relay re-reads from Sauce's API until a reviewer decides it (see
 * src/relay/visual/visual-refresh.ts). One per route and build.
 */
export interface VisualWatch {
  readonly route: string;
  readonly buildId: string;
  readonly repo: string;
  readonly eventType: string;
  /** The build's last event body sent towards GitHub (the webhook's, or the last refresh's). */
  readonly body: string;
  /**
   * The `extra` (NewEvent.extra) sent with that body: the relay's notes (the diffs listed, its
   * verdicts). Null when none, as after a webhook. Lets a re-read tell what GitHub already has.
   */
  readonly extra: string | null;
  /** Its `data_center`, for the API host. */
  readonly dataCenter: string | null;
  /** Epoch ms when the relay first saw the build. */
  readonly firstSeenAt: number;
  /** Epoch ms of the next re-read; a claim pushes it ahead (the lease). */
  readonly nextCheckAt: number;
  /** Stop re-reading after this (epoch ms). */
  readonly expiresAt: number;
  readonly checks: number;
  readonly lastError: string | null;
}

/** What a re-read changes in a watch (see `rescheduleVisualWatch`). */
export interface VisualWatchUpdate {
  readonly body?: string;
  readonly extra?: string | null;
  readonly error?: string | null;
  readonly check?: VisualCheck;
}

/** A webhook's watch: it carries no `extra`, so `watchVisual` sets it to null. */
export type NewVisualWatch = Omit<VisualWatch, 'checks' | 'lastError' | 'extra'>;

/** The watch list behind Visual refresh; both stores implement it, shared by every process on the store. */
export interface VisualWatchStore {
  /**
   * Start watching a build, or take a newer webhook body for one already watched (the first-seen
   * time, and so the expiry, stay those of the first sighting; `extra` becomes null, as the
   * webhook's event has none).
   */
  watchVisual(watch: NewVisualWatch): Promise<void>;
  /**
   * Stop watching (a decided status arrived, the build is gone, or the watch expired). With `check`,
   * the re-read that ended it is recorded in the same transaction.
   */
  endVisualWatch(route: string, buildId: string, check?: VisualCheck): Promise<void>;
  /** Watches due at `now`; each claimed one's next check moves to `now + leaseMs`, so one process re-reads it at a time. */
  claimVisualWatches(now: number, leaseMs: number, limit: number): Promise<VisualWatch[]>;
  /**
   * After a re-read: when to look again, the body and extra now sent (each only when given; an
   * `extra` of null clears it) and the error, if any; with `check`, the re-read is recorded in the
   * same transaction.
   */
  rescheduleVisualWatch(route: string, buildId: string, nextCheckAt: number, update: VisualWatchUpdate): Promise<void>;
  listVisualWatches(limit: number): Promise<VisualWatch[]>;
}
