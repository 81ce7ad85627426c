/**
 * The embedded store: one SQLite file (`<dataDir>/relay.db`) through better-sqlite3 v12.
 *
 * Durability: WAL, and every insert COMMIT runs with `synchronous=FULL`, so it fsyncs the WAL and
 * an acknowledged event survives a power cut, not only a process crash (NORMAL+WAL would only
 * survive the crash). To keep that from costing one fsync per webhook, `insert` does not write at
 * once: it queues the event and all inserts queued before the next turn of the event loop (or
 * within `batchWindowMs`) are committed in ONE transaction. Each promise resolves only after that
 * COMMIT returned. The other writes (claims, marks, watches, prune) commit with NORMAL: no fsync of
 * their own (see Store.commitBatch for why a power cut can take back only those).
 *
 * Locks: no statement waits for another process's lock inside the event loop (busy_timeout 0 once
 * open). A batch of inserts the lock refuses is tried again from a timer for up to `busyTimeoutMs`;
 * so are marks (a mark lost after a send would mean sending again once the lease ends) and Visual
 * watch writes (a lost watch is a build never refreshed). Claims and releases fail at once: the
 * dispatcher tries again on its next cycle, and nothing is lost meanwhile.
 *
 * Claims are leases (`claimed_by`, `lease_until`): a process that dies holding a lease blocks its
 * events only until the lease runs out, then any dispatcher (the restarted one too) claims them.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { ConsoleStore } from '../console/source.js';
import { CONSOLE_SCHEMA, SqliteConsole } from './sqlite-console.js';
import { eventId } from './event-id.js';
import { type EventRecordRow, type WatchRow, toEvent, toWatch } from './store-rows.js';
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

export interface SqliteStoreOptions {
  /** Wait this long for more inserts before committing a batch. 0 (default): the next tick. */
  readonly batchWindowMs?: number;
  /**
   * How long a batch of inserts keeps trying while another process holds the write lock. It is
   * tried again from a timer (5 ms, doubling to 200 ms), so the event loop never waits on the lock
   * and /healthz and /metrics answer meanwhile; past this, its inserts fail (the relay answers 503).
   * 0: fail at the first refusal. Default 2000 ms. Other writes (claims, marks) never wait: they
   * fail at once and the dispatcher tries again on its next cycle.
   */
  readonly busyTimeoutMs?: number;
}

/** The SQLite store: the store interfaces, the console's part, and where its file is. */
export interface SqliteEventStore extends EventStore, VisualWatchStore {
  /** The delivery console's rows and actions (sqlite-console.ts). */
  readonly console: ConsoleStore;
  readonly path: string;
  /** True when the store can take the write lock now (what `readiness` reports on). */
  writable(): Promise<boolean>;
}

/**
 * 2: bodies moved to their own table. No release ever wrote schema 1, so there is no migration.
 * 4: `bodies.extra`, the relay's own facts about an event (NewEvent.extra), and `visual_watches.extra`
 *    (the extra last sent for a watched build); each added to a file without it.
 * 3: the visual_watches table; a schema-2 file gets it (CREATE ... IF NOT EXISTS) and moves to 3.
 * 5: the delivery console's tables and the events' time index (sqlite-console.ts), created the same way.
 * 6: dedup keys filed under the event's own time (`occurred_at`); a schema-5 file's keys are moved to
 *    the new table under LEGACY_OCCURRED_AT, still found until the dedup window passes them.
 */
const SCHEMA_VERSION = 6;
const OLDEST_UPGRADABLE = 2;
/** How long opening the file waits for another process's lock (nothing is served yet then). */
const OPEN_BUSY_TIMEOUT_MS = 5_000;
/** Default of `busyTimeoutMs`: how long a batch of inserts keeps trying while the file is locked. */
const DEFAULT_BUSY_TIMEOUT_MS = 2_000;
/** First wait before a locked batch is tried again; it doubles up to the last one. */
const BUSY_RETRY_FIRST_MS = 5;
const BUSY_RETRY_MAX_MS = 200;

/** The dedup table as schema 6 has it (fresh files, and schema-5 files rebuilt by `rekeyDedup`). */
const DEDUP_TABLE = `CREATE TABLE IF NOT EXISTS dedup (
  occurred_at INTEGER NOT NULL,
  route       TEXT    NOT NULL,
  body_hash   TEXT    NOT NULL,
  event_id    TEXT    NOT NULL,
  first_seen  INTEGER NOT NULL,
  PRIMARY KEY (occurred_at, route, body_hash)
) WITHOUT ROWID;`;

/** `occurred_at` of a dedup key carried over from a schema-5 file (its event's time is not known). */
const LEGACY_OCCURRED_AT = -1;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS events (
  seq             INTEGER PRIMARY KEY,
  id              TEXT    NOT NULL UNIQUE,
  route           TEXT    NOT NULL,
  repo            TEXT    NOT NULL,
  event_type      TEXT    NOT NULL,
  body_hash       TEXT    NOT NULL,
  received_at     INTEGER NOT NULL,
  state           TEXT    NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  last_error      TEXT,
  claimed_by      TEXT,
  lease_until     INTEGER NOT NULL DEFAULT 0,
  delivered_at    INTEGER,
  requeued_at     INTEGER
);
-- claim: state = 'pending' AND next_attempt_at <= now, in due order; also stats and prune.
CREATE INDEX IF NOT EXISTS events_due ON events (state, next_attempt_at);
-- claim: the groups other processes hold (running leases). Only claimed rows are in it (a mark
-- or release sets lease_until to 0), so an insert never writes to it.
CREATE INDEX IF NOT EXISTS events_leased ON events (lease_until) WHERE lease_until > 0;
-- The raw bodies live apart from the small, often-updated event rows: a claim or a mark then
-- rewrites pages of ~150-byte rows, not a 2 KB body each time (measured: ingest about +10%, BENCHMARKS.md).
CREATE TABLE IF NOT EXISTS bodies (seq INTEGER PRIMARY KEY, body TEXT NOT NULL, extra TEXT);
CREATE TRIGGER IF NOT EXISTS events_body_delete AFTER DELETE ON events BEGIN
  DELETE FROM bodies WHERE seq = OLD.seq;
END;
-- Keyed first by the event's own time (NewEvent.occurredAt; 0 when it has none; -1 for keys from a
-- schema-5 file), so the keys a batch adds go to the last pages of the index: keyed by the hash
-- alone, every new key dirtied a page of its own, one more WAL frame per event to write, fsync and
-- checkpoint (measured: a third of the store's CPU per insert, BENCHMARKS.md).
${DEDUP_TABLE}
-- Counts per state kept by triggers, so stats() (queue depth, /metrics) is O(1), not a scan.
CREATE TABLE IF NOT EXISTS state_counts (state TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO state_counts (state, n)
  SELECT s.column1, (SELECT count(*) FROM events WHERE state = s.column1) FROM (VALUES ('pending'), ('delivered'), ('dead')) AS s;
CREATE TRIGGER IF NOT EXISTS events_count_insert AFTER INSERT ON events BEGIN
  UPDATE state_counts SET n = n + 1 WHERE state = NEW.state;
END;
CREATE TRIGGER IF NOT EXISTS events_count_delete AFTER DELETE ON events BEGIN
  UPDATE state_counts SET n = n - 1 WHERE state = OLD.state;
END;
CREATE TRIGGER IF NOT EXISTS events_count_update AFTER UPDATE OF state ON events WHEN OLD.state <> NEW.state BEGIN
  UPDATE state_counts SET n = n - 1 WHERE state = OLD.state;
  UPDATE state_counts SET n = n + 1 WHERE state = NEW.state;
END;
-- Visual builds awaiting review, re-read from Sauce's API (src/relay/visual-refresh.ts).
CREATE TABLE IF NOT EXISTS visual_watches (
  route         TEXT    NOT NULL,
  build_id      TEXT    NOT NULL,
  repo          TEXT    NOT NULL,
  event_type    TEXT    NOT NULL,
  body          TEXT    NOT NULL,
  extra         TEXT,
  data_center   TEXT,
  first_seen_at INTEGER NOT NULL,
  next_check_at INTEGER NOT NULL,
  expires_at    INTEGER NOT NULL,
  checks        INTEGER NOT NULL DEFAULT 0,
  last_error    TEXT,
  PRIMARY KEY (route, build_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS visual_watches_due ON visual_watches (next_check_at);
`;

/** An event row as read before its body (`withBodies` adds it from `bodies`). */
interface Row extends EventRecordRow {
  seq: number;
}

const COLUMNS = 'seq, id, route, repo, event_type, body_hash, received_at, state, attempts, next_attempt_at, last_error, requeued_at';

interface Queued {
  readonly event: NewEvent;
  readonly dedupWindowMs: number;
  readonly resolve: (result: InsertResult) => void;
  readonly reject: (error: unknown) => void;
  /** When its batch was first refused for a lock (performance.now()); it fails once `busyTimeoutMs` later. */
  lockedSince?: number;
}

/**
 * Where an event's dedup key is filed: its own time (a whole number of ms), the same for every
 * delivery of the same body; 0 for an event without one.
 */
function dedupTime(event: NewEvent): number {
  const at = event.occurredAt;
  return at === undefined || at === null || !Number.isFinite(at) ? 0 : Math.trunc(at);
}

/** SQLITE_BUSY and its extended codes: another connection holds the lock; trying again may work. */
function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY');
}

/** The wait before the `attempt`-th retry of a locked batch (1-based): 5 ms doubling, at most 200 ms. */
function busyRetryDelayMs(attempt: number): number {
  return Math.min(BUSY_RETRY_MAX_MS, BUSY_RETRY_FIRST_MS * 2 ** Math.max(0, attempt - 1));
}

/** Throws for a file this relay must not touch: written by a newer relay, or a pre-release schema. */
function refuseUnknownSchema(version: number, path: string): void {
  if (version > 0 && version < OLDEST_UPGRADABLE) throw new Error(`${path} has a pre-release schema (${version}); move it aside and start again`);
  if (version > SCHEMA_VERSION) throw new Error(`${path} was written by a newer relay (schema ${version}); upgrade the relay`);
}

function hasColumn(db: Database.Database, table: string, column: string): boolean {
  return db
    .prepare<[], { name: string }>(`SELECT name FROM pragma_table_info('${table}')`)
    .all()
    .some((c) => c.name === column);
}

/** Schema 6: a schema-5 file's dedup keys, moved to the time-keyed table (inside the opening transaction). */
function rekeyDedup(db: Database.Database): void {
  db.exec('ALTER TABLE dedup RENAME TO dedup_schema5');
  db.exec(DEDUP_TABLE);
  db.prepare('INSERT INTO dedup SELECT ?, route, body_hash, event_id, first_seen FROM dedup_schema5').run(LEGACY_OCCURRED_AT);
  db.exec('DROP TABLE dedup_schema5');
}

export function openSqliteStore(dataDir: string, options: SqliteStoreOptions = {}): SqliteEventStore {
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, 'relay.db');
  const db = new Database(path);
  try {
    // Only while opening (nothing is being served yet) does a connection wait for another
    // process's lock; afterwards no statement may block the event loop on it (busy_timeout 0).
    db.pragma(`busy_timeout = ${OPEN_BUSY_TIMEOUT_MS}`);
    // Read the version before anything writes: switching to WAL rewrites the file header and the
    // schema script creates tables, so a file from a newer (or a pre-release) relay must be
    // refused first and left exactly as it was.
    refuseUnknownSchema(Number(db.pragma('user_version', { simple: true })), path);
    const mode = db.pragma('journal_mode = WAL', { simple: true });
    if (String(mode).toLowerCase() !== 'wal') throw new Error(`SQLite refused WAL mode (got ${String(mode)}) for ${path}`);
    // One transaction: two processes opening a fresh file at once both see a whole schema. The
    // version is read again inside it, in case another relay stamped the file in between.
    db.transaction(() => {
      const version = Number(db.pragma('user_version', { simple: true }));
      refuseUnknownSchema(version, path);
      db.exec(SCHEMA);
      db.exec(CONSOLE_SCHEMA);
      // Schema 4: a file from before it has bodies and visual_watches without the extra column.
      for (const table of ['bodies', 'visual_watches']) {
        if (!hasColumn(db, table, 'extra')) db.exec(`ALTER TABLE ${table} ADD COLUMN extra TEXT`);
      }
      if (!hasColumn(db, 'dedup', 'occurred_at')) rekeyDedup(db);
      if (version < SCHEMA_VERSION) db.pragma(`user_version = ${SCHEMA_VERSION}`);
    }).immediate();
    // Only inserts fsync (see Store.commitBatch); every other write of this connection commits
    // with NORMAL. busy_timeout 0: from now on a lock held elsewhere fails a statement at once.
    db.pragma('synchronous = NORMAL');
    db.pragma('busy_timeout = 0');
  } catch (error) {
    db.close();
    throw error;
  }
  return new Store(db, path, options);
}

class Store implements SqliteEventStore {
  readonly path: string;
  private readonly db: Database.Database;
  private readonly batchWindowMs: number;
  private readonly busyTimeoutMs: number;
  private queue: Queued[] = [];
  private flushScheduled = false;
  /** Retries of the batch at the head of the queue since the lock first refused it. */
  private busyAttempts = 0;
  private closed = false;

  private readonly findDedup: Database.Statement<[number, string, string], { event_id: string; first_seen: number }>;
  private readonly putDedup: Database.Statement<[number, string, string, string, number]>;
  private readonly anyLegacyDedup: Database.Statement<[number], { found: number }>;
  /** Whether keys from a schema-5 file may still be found (then a miss is looked up under them too). */
  private legacyDedup: boolean;
  private readonly putEvent: Database.Statement<[string, string, string, string, string, number, number]>;
  private readonly putBody: Database.Statement<[number | bigint, string, string | null]>;
  private readonly getBodies: Database.Statement<[string], { seq: number; body: string; extra: string | null }>;
  private readonly claimStmt: Database.Statement<[string, number, number, number, number, string, number], Row>;
  private readonly deliveredStmt: Database.Statement<[number, string, string], { seq: number }>;
  private readonly retryStmt: Database.Statement<[number, string, string, string], { seq: number }>;
  private readonly deadStmt: Database.Statement<[string, number, string, string], { seq: number }>;
  private readonly releaseStmt: Database.Statement<[string, string]>;
  private readonly listStmt: Database.Statement<[string, number], Row>;
  private readonly requeueStmt: Database.Statement<[number, number, string]>;
  private readonly statsStmt: Database.Statement<[], { state: EventState; n: number }>;
  private readonly pruneEvents: Database.Statement<[number]>;
  private readonly pruneDedup: Database.Statement<[number]>;
  private readonly commitBatch: (batch: Queued[]) => InsertResult[];
  private readonly putWatch: Database.Statement<[string, string, string, string, string, string | null, number, number, number]>;
  private readonly endWatch: Database.Statement<[string, string]>;
  private readonly claimWatches: Database.Statement<[number, number, number], WatchRow>;
  private readonly rescheduleWatch: Database.Statement<[number, string | null, number, string | null, string | null, string, string]>;
  private readonly listWatches: Database.Statement<[number], WatchRow>;
  /** The delivery console's tables and reads. */
  readonly console: SqliteConsole;

  constructor(db: Database.Database, path: string, options: SqliteStoreOptions) {
    this.db = db;
    this.path = path;
    this.console = new SqliteConsole(db);
    this.batchWindowMs = Math.max(0, options.batchWindowMs ?? 0);
    this.busyTimeoutMs = Math.max(0, options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS);
    this.findDedup = db.prepare('SELECT event_id, first_seen FROM dedup WHERE occurred_at = ? AND route = ? AND body_hash = ?');
    this.putDedup = db.prepare(
      `INSERT INTO dedup (occurred_at, route, body_hash, event_id, first_seen) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (occurred_at, route, body_hash) DO UPDATE SET event_id = excluded.event_id, first_seen = excluded.first_seen`,
    );
    this.anyLegacyDedup = db.prepare('SELECT EXISTS (SELECT 1 FROM dedup WHERE occurred_at = ?) AS found');
    this.legacyDedup = this.anyLegacyDedup.get(LEGACY_OCCURRED_AT)!.found === 1;
    this.putBody = db.prepare('INSERT INTO bodies (seq, body, extra) VALUES (?, ?, ?)');
    this.getBodies = db.prepare('SELECT seq, body, extra FROM bodies WHERE seq IN (SELECT value FROM json_each(?))');
    this.putEvent = db.prepare(
      `INSERT INTO events (id, route, repo, event_type, body_hash, received_at, next_attempt_at, state)
       VALUES (?, ?, ?, ?, ?, ?, ?, 'pending')`,
    );
    // One statement, so two processes can never claim the same row; ordered by the index. Whole
    // groups: never an event of a (repo, event_type) whose events another owner holds on a running
    // lease (see the contract in store.ts); SQLite runs one writer at a time, so two claims cannot
    // both find a group free. The groups held are read from events_leased (running leases only):
    // `+state` keeps the planner off events_due, through which it would scan every pending event.
    this.claimStmt = db.prepare(
      `UPDATE events SET claimed_by = ?, lease_until = ?
       WHERE seq IN (SELECT seq FROM events
                     WHERE state = 'pending' AND next_attempt_at <= ? AND lease_until <= ?
                       AND (repo, event_type) NOT IN (SELECT repo, event_type FROM events
                                                      WHERE lease_until > 0 AND lease_until > ? AND +state = 'pending' AND claimed_by <> ?)
                     ORDER BY next_attempt_at, seq LIMIT ?)
       RETURNING ${COLUMNS}`,
    );
    // Every mark: only pending events the given owner still holds (see the contract in store.ts).
    // Found by id; `+state` keeps the planner from scanning every pending event through events_due
    // instead, which made each mark (and each claim, above) cost in proportion to the backlog.
    const held = `claimed_by = ? AND id IN (SELECT value FROM json_each(?)) AND +state = 'pending'`;
    this.deliveredStmt = db.prepare(
      `UPDATE events SET state = 'delivered', delivered_at = ?, attempts = attempts + 1, claimed_by = NULL, lease_until = 0, last_error = NULL
       WHERE ${held} RETURNING seq`,
    );
    this.retryStmt = db.prepare(
      `UPDATE events SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?, claimed_by = NULL, lease_until = 0
       WHERE ${held} RETURNING seq`,
    );
    this.deadStmt = db.prepare(
      `UPDATE events SET state = 'dead', last_error = ?, attempts = attempts + ?, claimed_by = NULL, lease_until = 0 WHERE ${held} RETURNING seq`,
    );
    this.releaseStmt = db.prepare(`UPDATE events SET claimed_by = NULL, lease_until = 0 WHERE ${held}`);
    this.listStmt = db.prepare(`SELECT ${COLUMNS} FROM events WHERE state = ? ORDER BY seq LIMIT ?`);
    this.requeueStmt = db.prepare(
      `UPDATE events SET state = 'pending', next_attempt_at = ?, requeued_at = ?, attempts = 0, claimed_by = NULL, lease_until = 0
       WHERE id = ? AND state = 'dead'`,
    );
    this.statsStmt = db.prepare('SELECT state, n FROM state_counts');
    this.pruneEvents = db.prepare(`DELETE FROM events WHERE state = 'delivered' AND delivered_at < ?`);
    this.pruneDedup = db.prepare('DELETE FROM dedup WHERE first_seen < ?');

    // A newer webhook for a watched build replaces the body; first sighting and expiry stay.
    this.putWatch = db.prepare(
      `INSERT INTO visual_watches (route, build_id, repo, event_type, body, data_center, first_seen_at, next_check_at, expires_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (route, build_id) DO UPDATE SET repo = excluded.repo, event_type = excluded.event_type, body = excluded.body, extra = NULL,
         data_center = excluded.data_center, next_check_at = min(next_check_at, excluded.next_check_at)`,
    );
    this.endWatch = db.prepare('DELETE FROM visual_watches WHERE route = ? AND build_id = ?');
    this.claimWatches = db.prepare(
      `UPDATE visual_watches SET next_check_at = ?
       WHERE (route, build_id) IN (SELECT route, build_id FROM visual_watches WHERE next_check_at <= ? ORDER BY next_check_at LIMIT ?)
       RETURNING *`,
    );
    this.rescheduleWatch = db.prepare(
      `UPDATE visual_watches SET next_check_at = ?, body = coalesce(?, body), extra = CASE WHEN ? THEN ? ELSE extra END,
         checks = checks + 1, last_error = ?
       WHERE route = ? AND build_id = ?`,
    );
    this.listWatches = db.prepare('SELECT * FROM visual_watches ORDER BY next_check_at LIMIT ?');

    const insertOne = (q: Queued): InsertResult => {
      const { event } = q;
      const occurredAt = dedupTime(event);
      const seen =
        this.findDedup.get(occurredAt, event.route, event.bodyHash) ??
        (this.legacyDedup ? this.findDedup.get(LEGACY_OCCURRED_AT, event.route, event.bodyHash) : undefined);
      if (seen && event.receivedAt - seen.first_seen < q.dedupWindowMs) return { kind: 'duplicate', id: seen.event_id };
      const id = eventId();
      const { lastInsertRowid } = this.putEvent.run(id, event.route, event.repo, event.eventType, event.bodyHash, event.receivedAt, event.receivedAt);
      this.putBody.run(lastInsertRowid, event.body, event.extra ?? null);
      this.putDedup.run(occurredAt, event.route, event.bodyHash, id, event.receivedAt);
      return { kind: 'stored', id };
    };
    // BEGIN IMMEDIATE: take the write lock up front, so another process cannot make us fail halfway.
    const tx = db.transaction((batch: Queued[]) => batch.map(insertOne));
    // The one durable write: its COMMIT runs with synchronous=FULL, which fsyncs the log before
    // COMMIT returns (and so before any insert of the batch resolves). The connection's setting
    // is NORMAL otherwise (claims, marks, watches, prune): in WAL mode a NORMAL commit writes its
    // frames without syncing them, and a power cut can take back only such unsynced frames at the
    // end of the log; the next FULL commit syncs the whole log, theirs included, and SQLite syncs
    // the log before every checkpoint. A lost mark means a resend, which the Action tolerates; a
    // lost claim is a lease that never was. A process crash (kill -9) loses none of them.
    // (exec, not a prepared statement: SQLite applies this pragma when it compiles it, so a
    // prepared one would take effect once, when prepared, and never again.)
    this.commitBatch = (batch) => {
      db.exec('PRAGMA synchronous = FULL');
      try {
        return tx.immediate(batch);
      } finally {
        db.exec('PRAGMA synchronous = NORMAL');
      }
    };
  }

  /** The events of `rows`, each with its body and extra, read in one statement. */
  private withBodies(rows: Row[]): StoredEvent[] {
    if (rows.length === 0) return [];
    const bodies = new Map(this.getBodies.all(JSON.stringify(rows.map((r) => r.seq))).map((b) => [b.seq, b]));
    return rows.map((row) => {
      const stored = bodies.get(row.seq);
      return toEvent({ ...row, body: stored?.body ?? '', extra: stored?.extra ?? null });
    });
  }

  insert(event: NewEvent, dedupWindowMs: number): Promise<InsertResult> {
    if (this.closed) return Promise.reject(new Error('store is closed'));
    return new Promise<InsertResult>((resolve, reject) => {
      this.queue.push({ event, dedupWindowMs, resolve, reject });
      if (this.flushScheduled) return;
      this.flushScheduled = true;
      if (this.batchWindowMs > 0) setTimeout(() => this.flush(), this.batchWindowMs);
      else setImmediate(() => this.flush());
    });
  }

  /**
   * Commit everything queued in one transaction; settle each promise after COMMIT (or failure).
   * A batch the lock refuses goes back to the head of the queue and is tried again from a timer
   * (what arrives meanwhile joins it) until `busyTimeoutMs` after its first refusal; `final`
   * (closing) tries once.
   */
  private flush(final = false): void {
    this.flushScheduled = false;
    const batch = this.queue;
    if (batch.length === 0) return;
    this.queue = [];
    let results: InsertResult[];
    try {
      if (!this.db.open) throw new Error('store is closed');
      results = this.commitBatch(batch);
    } catch (error) {
      const now = performance.now();
      for (const q of batch) q.lockedSince ??= now;
      const waiting = final || !isBusy(error) ? [] : batch.filter((q) => now - q.lockedSince! < this.busyTimeoutMs);
      for (const q of batch) if (!waiting.includes(q)) q.reject(error);
      if (waiting.length > 0) {
        this.queue = [...waiting, ...this.queue];
        this.busyAttempts += 1;
        this.flushScheduled = true;
        setTimeout(() => this.flush(), busyRetryDelayMs(this.busyAttempts));
      } else this.busyAttempts = 0;
      return;
    }
    this.busyAttempts = 0;
    for (const [i, q] of batch.entries()) q.resolve(results[i]!);
  }

  async claim(owner: string, now: number, leaseMs: number, limit: number): Promise<StoredEvent[]> {
    const rows = this.claimStmt.all(owner, now + leaseMs, now, now, now, owner, Math.max(0, Math.floor(limit)));
    rows.sort((a, b) => a.seq - b.seq);
    return this.withBodies(rows);
  }

  async markDelivered(owner: string, ids: readonly string[], now: number, attempt?: DispatchAttempt): Promise<number> {
    return ids.length ? this.untilUnlocked(() => this.marked(() => this.deliveredStmt.all(now, owner, JSON.stringify(ids)), attempt)) : 0;
  }

  async markRetry(owner: string, ids: readonly string[], nextAttemptAt: number, error: string, attempt?: DispatchAttempt): Promise<number> {
    return ids.length ? this.untilUnlocked(() => this.marked(() => this.retryStmt.all(nextAttemptAt, error, owner, JSON.stringify(ids)), attempt)) : 0;
  }

  async markDead(owner: string, ids: readonly string[], reason: string, attempt?: DispatchAttempt): Promise<number> {
    return ids.length ? this.untilUnlocked(() => this.marked(() => this.deadStmt.all(reason, attempt ? 1 : 0, owner, JSON.stringify(ids)), attempt)) : 0;
  }

  /**
   * A write another process's lock may refuse: tried again from a timer (5 ms doubling to 200 ms,
   * as a batch of inserts) until `busyTimeoutMs` after the first refusal, then its error. Never
   * waits inside the event loop.
   */
  private async untilUnlocked<T>(write: () => T): Promise<T> {
    const started = performance.now();
    for (let attempt = 1; ; attempt += 1) {
      try {
        if (!this.db.open) throw new Error('store is closed');
        return write();
      } catch (error) {
        if (!isBusy(error) || performance.now() - started >= this.busyTimeoutMs) throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, busyRetryDelayMs(attempt)));
    }
  }

  /** A mark, and with `attempt` its row for each event it changed, in one transaction; how many it changed. */
  private marked(mark: () => { seq: number }[], attempt: DispatchAttempt | undefined): number {
    if (!attempt) return mark().length;
    return this.db
      .transaction(() => {
        const rows = mark();
        this.console.addAttempts(
          rows.map((r) => r.seq),
          attempt,
        );
        return rows.length;
      })
      .immediate();
  }

  async release(owner: string, ids: readonly string[]): Promise<number> {
    return ids.length ? this.releaseStmt.run(owner, JSON.stringify(ids)).changes : 0;
  }

  async list(state: EventState, limit: number): Promise<StoredEvent[]> {
    return this.withBodies(this.listStmt.all(state, Math.max(0, Math.floor(limit))));
  }

  async requeue(id: string, now: number): Promise<boolean> {
    return this.requeueStmt.run(now, now, id).changes > 0;
  }

  async stats(): Promise<StoreStats> {
    const counts = { pending: 0, delivered: 0, dead: 0 };
    for (const row of this.statsStmt.all()) counts[row.state] = row.n;
    return counts;
  }

  async prune(before: number): Promise<number> {
    return this.db
      .transaction(() => {
        const events = this.pruneEvents.run(before).changes;
        this.pruneDedup.run(before);
        if (this.legacyDedup) this.legacyDedup = this.anyLegacyDedup.get(LEGACY_OCCURRED_AT)!.found === 1;
        this.console.pruneVisualChecks(before);
        return events;
      })
      .immediate();
  }

  async watchVisual(w: NewVisualWatch): Promise<void> {
    await this.untilUnlocked(() => this.putWatch.run(w.route, w.buildId, w.repo, w.eventType, w.body, w.dataCenter, w.firstSeenAt, w.nextCheckAt, w.expiresAt));
  }

  async endVisualWatch(route: string, buildId: string, check?: VisualCheck): Promise<void> {
    await this.untilUnlocked(() => this.withCheck(route, buildId, check, () => this.endWatch.run(route, buildId)));
  }

  async claimVisualWatches(now: number, leaseMs: number, limit: number): Promise<VisualWatch[]> {
    return this.claimWatches.all(now + leaseMs, now, Math.max(0, Math.floor(limit))).map(toWatch);
  }

  async rescheduleVisualWatch(route: string, buildId: string, nextCheckAt: number, update: VisualWatchUpdate): Promise<void> {
    const setExtra = update.extra !== undefined;
    await this.untilUnlocked(() =>
      this.withCheck(route, buildId, update.check, () =>
        this.rescheduleWatch.run(nextCheckAt, update.body ?? null, setExtra ? 1 : 0, update.extra ?? null, update.error ?? null, route, buildId),
      ),
    );
  }

  /** A watch's change, and with `check` the re-read behind it, in one transaction. */
  private withCheck(route: string, buildId: string, check: VisualCheck | undefined, change: () => unknown): void {
    if (!check) {
      change();
      return;
    }
    this.db
      .transaction(() => {
        change();
        this.console.addCheck(route, buildId, check);
      })
      .immediate();
  }

  async listVisualWatches(limit: number): Promise<VisualWatch[]> {
    return this.listWatches.all(Math.max(0, Math.floor(limit))).map(toWatch);
  }

  async readiness(): Promise<StoreReadiness> {
    if (this.closed || !this.db.open) return { ready: false, code: 'closed', reason: 'the store is closed' };
    if (await this.writable()) return { ready: true };
    return { ready: false, code: 'locked', reason: `${this.path} is locked by another process or read-only` };
  }

  async writable(): Promise<boolean> {
    if (this.closed || !this.db.open) return false;
    try {
      // Takes (and drops) the write lock: fails when the file is read-only or another writer holds it too long.
      this.db.exec('BEGIN IMMEDIATE; ROLLBACK');
      return true;
    } catch {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      return false;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.flush(true);
    this.db.close();
  }
}
