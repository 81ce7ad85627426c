/**
 * The shared store: PostgreSQL through `pg` (node-postgres) with a pool, for several relay
 * instances behind one load balancer (`RELAY_DATABASE_URL`). Same contract as the SQLite store
 * (store.ts); the schema is in postgres-migrations.ts and is brought up to date at open.
 *
 * - Durable before the 202: `insert` resolves after the COMMIT that holds the event returned
 *   (synchronous_commit is forced on for the session when the server has it off). The inserts that
 *   arrive together (one turn of the event loop, or while earlier batches are in flight) go in ONE
 *   statement, so one commit (one WAL flush) serves them all.
 * - Deduplication is the (route, body_hash) primary key of relay_dedup, claimed with
 *   INSERT ... ON CONFLICT in the same statement that stores the event: two relays storing the same
 *   delivery at once get one `stored` and one `duplicate`, never two events.
 * - Claims are serialised by a transaction advisory lock (a claim is one short statement, a few a
 *   second per relay) so that two relays never both find a group free; the rows themselves are
 *   taken FOR UPDATE SKIP LOCKED, so a claim never waits on a mark.
 * - A lost connection fails the operation (the handler answers 503 + Retry-After) and the pool
 *   opens new connections when the server is back: no restart. An idle connection's error is
 *   reported to `onError`, never thrown.
 */
import { eventId } from './event-id.js';
import pg from 'pg';
import { shownDatabaseUrl } from '../config/url.js';
import type { ConsoleStore } from '../console/source.js';
import { PostgresConsole, attemptCtes, attemptParams, checkCtes, checkParams } from './postgres-console.js';
import { type EventRecordRow, type WatchRow, toEvent, toWatch } from './store-rows.js';
import { LATEST_SCHEMA, pendingMigrations } from './postgres-migrations.js';
import type {
  DispatchAttempt,
  EventState,
  EventStore,
  InsertResult,
  NewEvent,
  NewVisualWatch,
  StoreReadiness,
  StoreStats,
  StoredEvent,
  VisualCheck,
  VisualWatch,
  VisualWatchStore,
  VisualWatchUpdate,
} from './store.js';

export interface PostgresStoreOptions {
  /** Connections in the pool. Default 10. */
  readonly maxConnections?: number;
  /** Give up connecting after this long. Default 5000 ms. */
  readonly connectTimeoutMs?: number;
  /** Give up on a query after this long (client side). Default 15000 ms. */
  readonly queryTimeoutMs?: number;
  /** Insert batches in flight at once; more inserts queue for the next batch. Default 4. */
  readonly maxBatchesInFlight?: number;
  /** An error on an idle connection (the server restarted, the network dropped). Default: ignored. */
  readonly onError?: (error: Error) => void;
}

export interface PostgresEventStore extends EventStore, VisualWatchStore {
  /** The delivery console's rows and actions (postgres-console.ts). */
  readonly console: ConsoleStore;
  /** The database URL without its password, for logs. */
  readonly where: string;
}

/** Advisory lock keys (two 32-bit ints): the relay's class, then what it guards. */
const LOCK_CLASS = 0x5a0ce;
const LOCK_MIGRATE = 1;
const LOCK_CLAIM = 2;

const EVENT_COLUMNS = 'e.id, e.route, e.repo, e.event_type, e.body_hash, e.received_at, e.state, e.attempts, e.next_attempt_at, e.last_error, e.requeued_at';

/** Stored-order for claims and lists: receipt time, then id. */
function byReceipt(a: StoredEvent, b: StoredEvent): number {
  return a.receivedAt - b.receivedAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

interface Item {
  readonly route: string;
  readonly bodyHash: string;
  readonly dedupWindowMs: number;
}

/**
 * Pure: split one batch of inserts into rounds that can each be one INSERT ... ON CONFLICT: in a
 * round a (route, body hash) appears once (PostgreSQL refuses to update a row twice in one
 * statement) and every item has the same dedup window. The n-th delivery of a body goes in a later
 * round than the (n-1)-th, so the later one is compared with the earlier, as if they came apart.
 * Returns the items' indexes per round, rounds in the order to run them.
 */
export function insertRounds(items: readonly Item[]): number[][] {
  const seen = new Map<string, number>();
  const rounds = new Map<string, { occurrence: number; window: number; indexes: number[] }>();
  items.forEach((item, index) => {
    const key = `${item.route}\u0000${item.bodyHash}`;
    const occurrence = seen.get(key) ?? 0;
    seen.set(key, occurrence + 1);
    const roundKey = `${occurrence}\u0000${item.dedupWindowMs}`;
    const round = rounds.get(roundKey);
    if (round) round.indexes.push(index);
    else rounds.set(roundKey, { occurrence, window: item.dedupWindowMs, indexes: [index] });
  });
  return [...rounds.values()].sort((a, b) => a.occurrence - b.occurrence || a.window - b.window).map((r) => r.indexes);
}

interface Queued {
  readonly event: NewEvent;
  readonly dedupWindowMs: number;
  readonly id: string;
  readonly resolve: (result: InsertResult) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * One round of inserts in one statement: claim each dedup key (or find it held within the window),
 * then store the events that won theirs. Keys are taken in (route, body_hash) order, so two relays'
 * batches that share keys lock them in the same order and cannot deadlock.
 */
const INSERT_ROUND = `
WITH input AS (
  SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::text[])
    AS t(id, route, repo, event_type, body_hash, received_at, body, extra)
),
keys AS (
  INSERT INTO relay_dedup AS d (route, body_hash, event_id, first_seen)
  SELECT route, body_hash, id, received_at FROM input ORDER BY route, body_hash
  ON CONFLICT (route, body_hash) DO UPDATE SET
    event_id = CASE WHEN d.first_seen <= excluded.first_seen - $9::bigint THEN excluded.event_id ELSE d.event_id END,
    first_seen = CASE WHEN d.first_seen <= excluded.first_seen - $9::bigint THEN excluded.first_seen ELSE d.first_seen END
  RETURNING d.route, d.body_hash, d.event_id
),
won AS (
  SELECT i.* FROM input i JOIN keys k ON k.event_id = i.id
),
events AS (
  INSERT INTO relay_events (id, route, repo, event_type, body_hash, received_at, next_attempt_at)
  SELECT id, route, repo, event_type, body_hash, received_at, received_at FROM won
),
bodies AS (
  INSERT INTO relay_bodies (id, body, extra) SELECT id, body, extra FROM won
)
SELECT route, body_hash, event_id FROM keys`;

/**
 * Whole groups (store.ts): the groups other owners hold on a running lease are left alone; due
 * events of the others are taken in due order. Run after LOCK_CLAIM, in the same transaction.
 */
const CLAIM = `
WITH held AS (
  SELECT DISTINCT repo, event_type FROM relay_events
  WHERE lease_until > 0 AND lease_until > $3 AND state = 'pending' AND claimed_by <> $1
),
due AS (
  SELECT e.id FROM relay_events e
  WHERE e.state = 'pending' AND e.next_attempt_at <= $3 AND e.lease_until <= $3
    AND NOT EXISTS (SELECT 1 FROM held h WHERE h.repo = e.repo AND h.event_type = e.event_type)
  ORDER BY e.next_attempt_at, e.received_at
  LIMIT $4
  FOR UPDATE OF e SKIP LOCKED
)
UPDATE relay_events e SET claimed_by = $1, lease_until = $2
FROM due JOIN relay_bodies b ON b.id = due.id
WHERE e.id = due.id
RETURNING ${EVENT_COLUMNS}, b.body, b.extra`;

/** Every mark: only pending events the given owner still holds (see the contract in store.ts). */
const HELD = `claimed_by = $1 AND id = ANY($2::uuid[]) AND state = 'pending'`;

export async function openPostgresStore(url: string, options: PostgresStoreOptions = {}): Promise<PostgresEventStore> {
  const types = new pg.TypeOverrides();
  // bigint columns hold epoch milliseconds and counts: well inside a double.
  types.setTypeParser(20 /* int8 */, (v: string) => Number(v));
  const pool = new pg.Pool({
    connectionString: url,
    max: options.maxConnections ?? 10,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 5_000,
    query_timeout: options.queryTimeoutMs ?? 15_000,
    keepAlive: true,
    types,
    application_name: 'sauce-relay',
  });
  // A connection that fails while idle (server restart, network) must never crash the process:
  // the pool drops it and opens a new one for the next query.
  pool.on('error', (error) => options.onError?.(error));
  // An acknowledged event must survive a database crash: where the server commits without waiting
  // for the WAL flush (synchronous_commit = off), this relay's sessions wait for it. Queued before
  // any other query on the new connection.
  pool.on('connect', (client) => {
    client
      .query("SELECT set_config('synchronous_commit', 'on', false) WHERE current_setting('synchronous_commit') = 'off'")
      .catch((error: unknown) => options.onError?.(error instanceof Error ? error : new Error(String(error))));
  });
  try {
    await migrate(pool, options.onError);
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw error;
  }
  return new PostgresStore(pool, shownDatabaseUrl(url), options);
}

/**
 * Run `fn` on a connection of its own, then give it back (closed instead when it broke). While it
 * is checked out, a connection that dies emits 'error' with nobody listening, which would crash
 * the process: the error goes to `onError` (the query in flight is rejected with it as well).
 */
async function withClient<T>(pool: pg.Pool, onError: ((error: Error) => void) | undefined, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken = false;
  const onClientError = (error: Error) => {
    broken = true;
    onError?.(error);
  };
  client.on('error', onClientError);
  try {
    return await fn(client);
  } catch (error) {
    broken ||= !(await client.query('ROLLBACK').then(
      () => true,
      () => false,
    ));
    throw error;
  } finally {
    client.removeListener('error', onClientError);
    client.release(broken);
  }
}

/** One transaction on a connection of its own (see `withClient`). */
function inTransaction<T>(pool: pg.Pool, onError: ((error: Error) => void) | undefined, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  return withClient(pool, onError, async (client) => {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  });
}

/** Bring the schema up to date, one relay at a time (a session advisory lock). */
async function migrate(pool: pg.Pool, onError: ((error: Error) => void) | undefined): Promise<void> {
  await withClient(pool, onError, async (client) => {
    // A session lock: released by the unlock below, or, when a step fails, with the connections
    // when openPostgresStore closes the pool.
    await client.query('SELECT pg_advisory_lock($1, $2)', [LOCK_CLASS, LOCK_MIGRATE]);
    // Nothing is written to a database that is up to date (it may be read-only: a standby).
    const [found] = (await client.query<{ exists: boolean }>("SELECT to_regclass('relay_migrations') IS NOT NULL AS exists")).rows;
    let current = 0;
    if (found?.exists) current = (await client.query<{ v: number | null }>('SELECT max(version) AS v FROM relay_migrations')).rows[0]?.v ?? 0;
    const plan = pendingMigrations(current);
    if (!plan.ok) throw new Error(plan.reason);
    if (plan.todo.length > 0 && !found?.exists) {
      await client.query(
        'CREATE TABLE relay_migrations (version integer PRIMARY KEY, description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())',
      );
    }
    for (const m of plan.todo) {
      await client.query('BEGIN');
      try {
        await client.query(m.sql);
        await client.query('INSERT INTO relay_migrations (version, description) VALUES ($1, $2)', [m.version, m.description]);
        await client.query('COMMIT');
      } catch (error) {
        throw new Error(`schema migration ${m.version} (${m.description}) failed: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    await client.query('SELECT pg_advisory_unlock($1, $2)', [LOCK_CLASS, LOCK_MIGRATE]);
  });
}

class PostgresStore implements PostgresEventStore {
  readonly where: string;
  private readonly pool: pg.Pool;
  private readonly maxInFlight: number;
  private readonly onError: ((error: Error) => void) | undefined;
  private queue: Queued[] = [];
  private flushScheduled = false;
  private inFlight = new Set<Promise<void>>();
  private closed = false;
  private ended: Promise<void> | null = null;
  /** The delivery console's reads and actions. */
  readonly console: PostgresConsole;

  constructor(pool: pg.Pool, where: string, options: PostgresStoreOptions) {
    this.pool = pool;
    this.console = new PostgresConsole(pool, (fn) => inTransaction(pool, options.onError, fn));
    this.where = where;
    this.maxInFlight = Math.max(1, options.maxBatchesInFlight ?? 4);
    this.onError = options.onError;
  }

  insert(event: NewEvent, dedupWindowMs: number): Promise<InsertResult> {
    if (this.closed) return Promise.reject(new Error('store is closed'));
    return new Promise<InsertResult>((resolve, reject) => {
      this.queue.push({ event, dedupWindowMs, id: eventId(), resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.flushScheduled || this.queue.length === 0 || this.inFlight.size >= this.maxInFlight) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  /** Send what is queued as one batch; when a batch ends, what queued meanwhile goes next. */
  private flush(): void {
    if (this.queue.length === 0 || this.inFlight.size >= this.maxInFlight) return;
    const batch = this.queue;
    this.queue = [];
    const running = this.commit(batch).finally(() => {
      this.inFlight.delete(running);
      this.schedule();
    });
    this.inFlight.add(running);
  }

  private async commit(batch: Queued[]): Promise<void> {
    let results: InsertResult[];
    try {
      results = await this.insertBatch(batch);
    } catch (error) {
      for (const q of batch) q.reject(error);
      return;
    }
    for (const [i, q] of batch.entries()) q.resolve(results[i]!);
  }

  /** Each promise resolves only after the COMMIT of the statement (or transaction) that holds it. */
  private async insertBatch(batch: Queued[]): Promise<InsertResult[]> {
    const rounds = insertRounds(batch.map((q) => ({ route: q.event.route, bodyHash: q.event.bodyHash, dedupWindowMs: q.dedupWindowMs })));
    const results: InsertResult[] = new Array(batch.length);
    const run = async (client: pg.Pool | pg.PoolClient, indexes: number[]) => {
      const items = indexes.map((i) => batch[i]!);
      const e = items.map((q) => q.event);
      const { rows } = await client.query<{ route: string; body_hash: string; event_id: string }>({ name: 'relay_insert', text: INSERT_ROUND }, [
        items.map((q) => q.id),
        e.map((x) => x.route),
        e.map((x) => x.repo),
        e.map((x) => x.eventType),
        e.map((x) => x.bodyHash),
        e.map((x) => x.receivedAt),
        e.map((x) => x.body),
        e.map((x) => x.extra ?? null),
        items[0]!.dedupWindowMs,
      ]);
      const owner = new Map(rows.map((r) => [`${r.route}\u0000${r.body_hash}`, r.event_id]));
      for (const i of indexes) {
        const q = batch[i]!;
        const id = owner.get(`${q.event.route}\u0000${q.event.bodyHash}`);
        if (id === undefined) throw new Error('insert: a dedup key came back missing');
        results[i] = id === q.id ? { kind: 'stored', id } : { kind: 'duplicate', id };
      }
    };
    if (rounds.length === 1) {
      await run(this.pool, rounds[0]!);
      return results;
    }
    await inTransaction(this.pool, this.onError, async (client) => {
      for (const round of rounds) await run(client, round);
    });
    return results;
  }

  async claim(owner: string, now: number, leaseMs: number, limit: number): Promise<StoredEvent[]> {
    const n = Math.max(0, Math.floor(limit));
    if (n === 0) return [];
    const rows = await inTransaction(this.pool, this.onError, async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1, $2)', [LOCK_CLASS, LOCK_CLAIM]);
      return (await client.query<EventRecordRow>({ name: 'relay_claim', text: CLAIM }, [owner, now + leaseMs, now, n])).rows;
    });
    return rows.map(toEvent).sort(byReceipt);
  }

  // Each mark is one statement: the events it changes and, with an attempt, that attempt's row for
  // each of them (postgres-console.ts `attemptCtes`, its parameters after the mark's own).

  async markDelivered(owner: string, ids: readonly string[], now: number, attempt?: DispatchAttempt): Promise<number> {
    if (ids.length === 0) return 0;
    const { rows } = await this.pool.query<{ n: number }>(
      `WITH d AS (
         UPDATE relay_events SET state = 'delivered', delivered_at = $3, attempts = attempts + 1, claimed_by = NULL, lease_until = 0, last_error = NULL
         WHERE ${HELD} RETURNING id
       ), c AS (
         UPDATE relay_counters SET n = n + (SELECT count(*) FROM d) WHERE name = 'delivered' AND EXISTS (SELECT 1 FROM d)
       ),${attemptCtes('d', 4)}
       SELECT count(*)::int AS n FROM d`,
      [owner, ids, now, ...attemptParams(attempt)],
    );
    return rows[0]?.n ?? 0;
  }

  async markRetry(owner: string, ids: readonly string[], nextAttemptAt: number, error: string, attempt?: DispatchAttempt): Promise<number> {
    if (ids.length === 0) return 0;
    const { rows } = await this.pool.query<{ n: number }>(
      `WITH d AS (
         UPDATE relay_events SET attempts = attempts + 1, next_attempt_at = $3, last_error = $4, claimed_by = NULL, lease_until = 0
         WHERE ${HELD} RETURNING id
       ),${attemptCtes('d', 5)}
       SELECT count(*)::int AS n FROM d`,
      [owner, ids, nextAttemptAt, error, ...attemptParams(attempt)],
    );
    return rows[0]?.n ?? 0;
  }

  async markDead(owner: string, ids: readonly string[], reason: string, attempt?: DispatchAttempt): Promise<number> {
    if (ids.length === 0) return 0;
    const { rows } = await this.pool.query<{ n: number }>(
      `WITH d AS (
         UPDATE relay_events SET state = 'dead', last_error = $3, attempts = attempts + $4, claimed_by = NULL, lease_until = 0
         WHERE ${HELD} RETURNING id
       ),${attemptCtes('d', 5)}
       SELECT count(*)::int AS n FROM d`,
      [owner, ids, reason, attempt ? 1 : 0, ...attemptParams(attempt)],
    );
    return rows[0]?.n ?? 0;
  }

  async release(owner: string, ids: readonly string[]): Promise<number> {
    if (ids.length === 0) return 0;
    const r = await this.pool.query(`UPDATE relay_events SET claimed_by = NULL, lease_until = 0 WHERE ${HELD}`, [owner, ids]);
    return r.rowCount ?? 0;
  }

  async list(state: EventState, limit: number): Promise<StoredEvent[]> {
    const { rows } = await this.pool.query<EventRecordRow>(
      `SELECT ${EVENT_COLUMNS}, b.body, b.extra FROM relay_events e JOIN relay_bodies b ON b.id = e.id
       WHERE e.state = $1 ORDER BY e.received_at, e.id LIMIT $2`,
      [state, Math.max(0, Math.floor(limit))],
    );
    return rows.map(toEvent);
  }

  async requeue(id: string, now: number): Promise<boolean> {
    if (!UUID_RE.test(id)) return false;
    const r = await this.pool.query(
      `UPDATE relay_events SET state = 'pending', next_attempt_at = $1, requeued_at = $1, attempts = 0, claimed_by = NULL, lease_until = 0
       WHERE id = $2 AND state = 'dead'`,
      [now, id],
    );
    return (r.rowCount ?? 0) > 0;
  }

  async stats(): Promise<StoreStats> {
    const { rows } = await this.pool.query<StoreStats>(
      `SELECT (SELECT count(*) FROM relay_events WHERE state = 'pending')::int AS pending,
              (SELECT n FROM relay_counters WHERE name = 'delivered')::bigint AS delivered,
              (SELECT count(*) FROM relay_events WHERE state = 'dead')::int AS dead`,
    );
    const r = rows[0]!;
    return { pending: r.pending, delivered: r.delivered, dead: r.dead };
  }

  async prune(before: number): Promise<number> {
    const { rows } = await this.pool.query<{ n: number }>(
      `WITH gone AS (
         DELETE FROM relay_events WHERE state = 'delivered' AND delivered_at < $1 RETURNING id
       ), bodies AS (
         DELETE FROM relay_bodies WHERE id IN (SELECT id FROM gone)
       ), attempts AS (
         DELETE FROM relay_attempts WHERE event_id IN (SELECT id FROM gone)
       ), checks AS (
         DELETE FROM relay_visual_checks WHERE at < $1
       ), counted AS (
         UPDATE relay_counters SET n = n - (SELECT count(*) FROM gone) WHERE name = 'delivered' AND EXISTS (SELECT 1 FROM gone)
       ), keys AS (
         DELETE FROM relay_dedup WHERE first_seen < $1
       )
       SELECT count(*)::int AS n FROM gone`,
      [before],
    );
    return rows[0]?.n ?? 0;
  }

  async watchVisual(w: NewVisualWatch): Promise<void> {
    await this.pool.query(
      `INSERT INTO relay_visual_watches AS v (route, build_id, repo, event_type, body, data_center, first_seen_at, next_check_at, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
       ON CONFLICT (route, build_id) DO UPDATE SET repo = excluded.repo, event_type = excluded.event_type, body = excluded.body, extra = NULL,
         data_center = excluded.data_center, next_check_at = least(v.next_check_at, excluded.next_check_at)`,
      [w.route, w.buildId, w.repo, w.eventType, w.body, w.dataCenter, w.firstSeenAt, w.nextCheckAt, w.expiresAt],
    );
  }

  async endVisualWatch(route: string, buildId: string, check?: VisualCheck): Promise<void> {
    await this.pool.query(
      `WITH ended AS (DELETE FROM relay_visual_watches WHERE route = $1 AND build_id = $2),${checkCtes(1, 3)}
       SELECT 1`,
      [route, buildId, ...checkParams(check)],
    );
  }

  async claimVisualWatches(now: number, leaseMs: number, limit: number): Promise<VisualWatch[]> {
    // FOR UPDATE SKIP LOCKED: a watch another relay is claiming right now is skipped, and one it
    // claimed a moment ago is re-checked against its new next_check_at: one relay re-reads a build at a time.
    const { rows } = await this.pool.query<WatchRow>(
      `UPDATE relay_visual_watches v SET next_check_at = $1
       FROM (SELECT route, build_id FROM relay_visual_watches WHERE next_check_at <= $2
             ORDER BY next_check_at LIMIT $3 FOR UPDATE SKIP LOCKED) due
       WHERE v.route = due.route AND v.build_id = due.build_id
       RETURNING v.*`,
      [now + leaseMs, now, Math.max(0, Math.floor(limit))],
    );
    return rows.map(toWatch);
  }

  async rescheduleVisualWatch(route: string, buildId: string, nextCheckAt: number, update: VisualWatchUpdate): Promise<void> {
    await this.pool.query(
      `WITH rescheduled AS (
         UPDATE relay_visual_watches SET next_check_at = $1, body = coalesce($2, body), extra = CASE WHEN $3::boolean THEN $4 ELSE extra END,
           checks = checks + 1, last_error = $5
         WHERE route = $6 AND build_id = $7
       ),${checkCtes(6, 8)}
       SELECT 1`,
      [nextCheckAt, update.body ?? null, update.extra !== undefined, update.extra ?? null, update.error ?? null, route, buildId, ...checkParams(update.check)],
    );
  }

  async listVisualWatches(limit: number): Promise<VisualWatch[]> {
    const { rows } = await this.pool.query<WatchRow>('SELECT * FROM relay_visual_watches ORDER BY next_check_at, route, build_id LIMIT $1', [
      Math.max(0, Math.floor(limit)),
    ]);
    return rows.map(toWatch);
  }

  async readiness(): Promise<StoreReadiness> {
    if (this.closed) return { ready: false, code: 'closed', reason: 'the store is closed' };
    let row: { standby: boolean; read_only: string } | undefined;
    try {
      ({
        rows: [row],
      } = await this.pool.query<{ standby: boolean; read_only: string }>(
        "SELECT pg_is_in_recovery() AS standby, current_setting('transaction_read_only') AS read_only",
      ));
    } catch (error) {
      return { ready: false, code: 'unreachable', reason: `database ${this.where} unreachable: ${errorText(error)}` };
    }
    if (row?.standby || row?.read_only === 'on') {
      return { ready: false, code: 'read_only', reason: `database ${this.where} is read-only (a standby, or mid-failover)` };
    }
    return { ready: true };
  }

  async close(): Promise<void> {
    this.ended ??= (async () => {
      this.closed = true;
      // What was accepted before close is committed (or refused) before the pool goes.
      while (this.queue.length > 0 || this.inFlight.size > 0) {
        this.flush();
        await Promise.all(this.inFlight);
      }
      await this.pool.end();
    })();
    return this.ended;
  }
}

/** An error as one line without secrets: pg's messages name the host and port, never the password. */
function errorText(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' && code !== '' ? `${error.message} (${code})` : error.message;
  }
  return String(error);
}

export { LATEST_SCHEMA };
