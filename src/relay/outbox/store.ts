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

export type EventState = 'pending' | 'delivered' | 'dead';

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
  /** The events `owner` still holds are delivered. Returns how many it changed. */
  markDelivered(owner: string, ids: readonly string[], now: number): Promise<number>;
  /** Release the lease and schedule another attempt; counts an attempt. Only events `owner` still holds. */
  markRetry(owner: string, ids: readonly string[], nextAttemptAt: number, error: string): Promise<number>;
  /** Give up on the events `owner` still holds; `reason` is for people (the dead-letter list). */
  markDead(owner: string, ids: readonly string[], reason: string): Promise<number>;
  /**
   * Give back events `owner` still holds, untouched (no attempt counted), claimable again at once:
   * on shutdown, and to renew a lease running low.
   */
  release(owner: string, ids: readonly string[]): Promise<number>;
  list(state: EventState, limit: number): Promise<StoredEvent[]>;
  /** Put a dead event back in the queue, due now. False when no dead event has that id. */
  requeue(id: string, now: number): Promise<boolean>;
  stats(): Promise<StoreStats>;
  /** Forget delivered events and dedup keys older than `before` (epoch ms). Returns the events forgotten. */
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
  /** Stop watching (a decided status arrived, the build is gone, or the watch expired). */
  endVisualWatch(route: string, buildId: string): Promise<void>;
  /** Watches due at `now`; each claimed one's next check moves to `now + leaseMs`, so one process re-reads it at a time. */
  claimVisualWatches(now: number, leaseMs: number, limit: number): Promise<VisualWatch[]>;
  /**
   * After a re-read: when to look again, the body and extra now sent (each only when given; an
   * `extra` of null clears it) and the error, if any.
   */
  rescheduleVisualWatch(
    route: string,
    buildId: string,
    nextCheckAt: number,
    update: { body?: string; extra?: string | null; error?: string | null },
  ): Promise<void>;
  listVisualWatches(limit: number): Promise<VisualWatch[]>;
}
