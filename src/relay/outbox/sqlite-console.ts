/**
 * The SQLite store's part for the delivery console (`ConsoleStore`, src/relay/console/source.ts):
 * its tables and statements, on the store's own connection. sqlite-store.ts creates the tables
 * with its schema and calls the writes below inside its own transactions (a mark and its attempt
 * rows, a watch's reschedule and its re-read, commit together).
 *
 * Nothing here runs on the request path: attempts are written by the dispatcher's marks, Visual
 * re-reads by Visual refresh, refused requests by the recorder's timer. The one cost ingest pays
 * is the `events_received` index, which the newest-first list needs.
 */
import type Database from 'better-sqlite3';
import type { ConsoleStore, EventRow, EventRowDetail, EventRowQuery, RequestRecord, RequestRetention, RequestRowQuery } from '../console/source.js';
import {
  type AttemptRow,
  type CheckRow,
  type EventConsoleRow,
  type RequestRow,
  attemptColumns,
  checkColumns,
  requestColumns,
  toAttempt,
  toCheck,
  toEventRow,
  toRequest,
} from './console-rows.js';
import { MAX_ATTEMPTS_KEPT, MAX_VISUAL_CHECKS_KEPT, type DispatchAttempt, type EventState, type VisualCheck } from './store.js';

/** Run inside the store's schema transaction (schema 5). */
export const CONSOLE_SCHEMA = `
-- The console's list: every event, newest first (the one index an insert writes for the console).
CREATE INDEX IF NOT EXISTS events_received ON events (received_at);
-- Every dispatch attempt per event (the latest ${MAX_ATTEMPTS_KEPT}), written with the dispatcher's marks.
CREATE TABLE IF NOT EXISTS attempts (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  event_seq   INTEGER NOT NULL,
  at          INTEGER NOT NULL,
  dispatch_id TEXT    NOT NULL,
  events      INTEGER NOT NULL,
  status      INTEGER,
  message     TEXT    NOT NULL,
  result      TEXT    NOT NULL,
  code        TEXT
);
CREATE INDEX IF NOT EXISTS attempts_event ON attempts (event_seq, id);
CREATE TRIGGER IF NOT EXISTS events_attempts_delete AFTER DELETE ON events BEGIN
  DELETE FROM attempts WHERE event_seq = OLD.seq;
END;
-- Visual refresh's re-reads per route and build (the latest ${MAX_VISUAL_CHECKS_KEPT}); pruned by age with delivered events.
CREATE TABLE IF NOT EXISTS visual_checks (
  id       INTEGER PRIMARY KEY AUTOINCREMENT,
  route    TEXT    NOT NULL,
  build_id TEXT    NOT NULL,
  at       INTEGER NOT NULL,
  outcome  TEXT    NOT NULL,
  status   TEXT,
  summary  TEXT,
  error    TEXT,
  event_id TEXT
);
CREATE INDEX IF NOT EXISTS visual_checks_build ON visual_checks (route, build_id, id);
CREATE INDEX IF NOT EXISTS visual_checks_at ON visual_checks (at);
-- Refused requests (metadata only), written in batches by the recorder and pruned by age and count.
CREATE TABLE IF NOT EXISTS requests (
  seq          INTEGER PRIMARY KEY AUTOINCREMENT,
  id           TEXT    NOT NULL UNIQUE,
  received_at  INTEGER NOT NULL,
  route        TEXT,
  repo         TEXT,
  status       INTEGER NOT NULL,
  code         TEXT    NOT NULL,
  reason       TEXT    NOT NULL,
  bytes        INTEGER NOT NULL,
  source       TEXT,
  signature    TEXT,
  issues       TEXT    NOT NULL,
  event        TEXT,
  duplicate_of TEXT
);
CREATE INDEX IF NOT EXISTS requests_received ON requests (received_at, id);
`;

const EVENT_COLUMNS = `e.seq, e.id, e.route, e.repo, e.event_type, e.received_at, e.state, e.attempts, e.next_attempt_at, e.last_error, e.requeued_at, b.body, b.extra`;
const ATTEMPT_COLUMNS = 'at, dispatch_id, events, status, message, result, code';
const CHECK_COLUMNS = 'at, outcome, status, summary, error, event_id';
const REQUEST_COLUMNS = 'id, received_at, route, repo, status, code, reason, bytes, source, signature, issues, event, duplicate_of';

const STATES: readonly EventState[] = ['dead', 'delivered', 'pending'];

/** A list position's bound when there is none: after every time. */
const NEWEST = Number.MAX_SAFE_INTEGER;

type ListRow = EventConsoleRow & { seq: number; last_attempt: string | null };

/** Where a keyset page starts: strictly older than (t, id), newest first. Uses the time index for the range. */
const OLDER_THAN = (table: string) => `${table}.received_at <= @t AND (${table}.received_at < @t OR ${table}.id < @id)`;

/** The store's `console` part (`requeue` is the store's own: the CLI's `outbox retry` uses it too). */
export class SqliteConsole implements ConsoleStore {
  private readonly db: Database.Database;
  private readonly listed = new Map<string, Database.Statement<Record<string, unknown>, ListRow>>();
  private readonly requestLists = new Map<string, Database.Statement<Record<string, unknown>, RequestRow>>();
  private readonly getEventStmt: Database.Statement<[string], EventConsoleRow & { seq: number }>;
  private readonly attemptsOf: Database.Statement<[number, number], AttemptRow>;
  private readonly putAttempt: Database.Statement<[number, number, string, number, number | null, string, string, string | null]>;
  private readonly trimAttempts: Database.Statement<{ seq: number; keep: number }>;
  private readonly putCheck: Database.Statement<[string, string, number, string, string | null, string | null, string | null, string | null]>;
  private readonly trimChecks: Database.Statement<{ route: string; build: string; keep: number }>;
  private readonly checksOf: Database.Statement<[string, string, number], CheckRow>;
  private readonly pruneChecks: Database.Statement<[number]>;
  private readonly requeueDeadStmt: Database.Statement<[number, number, string]>;
  private readonly resendStmt: Database.Statement<[number, number, string]>;
  private readonly putRequest: Database.Statement<RequestRow>;
  private readonly pruneRequestsByAge: Database.Statement<[number]>;
  private readonly pruneRequestsByCount: Database.Statement<[number]>;
  private readonly getRequestStmt: Database.Statement<[string], RequestRow>;
  private readonly markerStmt: Database.Statement<[], { marker: string }>;
  private readonly recordBatch: (records: readonly RequestRecord[], retention: RequestRetention) => void;

  constructor(db: Database.Database) {
    this.db = db;
    this.getEventStmt = db.prepare(`SELECT ${EVENT_COLUMNS} FROM events e JOIN bodies b ON b.seq = e.seq WHERE e.id = ?`);
    this.attemptsOf = db.prepare(`SELECT ${ATTEMPT_COLUMNS} FROM (SELECT * FROM attempts WHERE event_seq = ? ORDER BY id DESC LIMIT ?) ORDER BY id`);
    this.putAttempt = db.prepare(`INSERT INTO attempts (event_seq, ${ATTEMPT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`);
    // Only the latest MAX_ATTEMPTS_KEPT of an event: an index lookup per event marked.
    this.trimAttempts = db.prepare(
      'DELETE FROM attempts WHERE event_seq = @seq AND id <= (SELECT id FROM attempts WHERE event_seq = @seq ORDER BY id DESC LIMIT 1 OFFSET @keep)',
    );
    this.putCheck = db.prepare(`INSERT INTO visual_checks (route, build_id, ${CHECK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`);
    this.trimChecks = db.prepare(
      `DELETE FROM visual_checks WHERE route = @route AND build_id = @build
         AND id <= (SELECT id FROM visual_checks WHERE route = @route AND build_id = @build ORDER BY id DESC LIMIT 1 OFFSET @keep)`,
    );
    this.checksOf = db.prepare(
      `SELECT ${CHECK_COLUMNS} FROM (SELECT * FROM visual_checks WHERE route = ? AND build_id = ? ORDER BY id DESC LIMIT ?) ORDER BY id`,
    );
    this.pruneChecks = db.prepare('DELETE FROM visual_checks WHERE at < ?');
    // As the store's own requeue (the CLI's `outbox retry`): due now, a fresh age, attempts from 0.
    const queue = `state = 'pending', next_attempt_at = ?, requeued_at = ?, attempts = 0, claimed_by = NULL, lease_until = 0`;
    this.requeueDeadStmt = db.prepare(`UPDATE events SET ${queue} WHERE route = ? AND state = 'dead'`);
    this.resendStmt = db.prepare(`UPDATE events SET ${queue}, delivered_at = NULL WHERE id = ? AND state = 'delivered'`);
    this.putRequest = db.prepare(
      `INSERT INTO requests (${REQUEST_COLUMNS}) VALUES (@id, @received_at, @route, @repo, @status, @code, @reason, @bytes, @source, @signature, @issues, @event, @duplicate_of)
       ON CONFLICT (id) DO NOTHING`,
    );
    this.pruneRequestsByAge = db.prepare('DELETE FROM requests WHERE received_at < ?');
    this.pruneRequestsByCount = db.prepare('DELETE FROM requests WHERE seq <= (SELECT max(seq) FROM requests) - ?');
    this.getRequestStmt = db.prepare(`SELECT ${REQUEST_COLUMNS} FROM requests WHERE id = ?`);
    // Constant time: the newest event's rowid, the per-state counts (kept by triggers) and the
    // AUTOINCREMENT counters of the three console tables. Every change the list shows moves one.
    this.markerStmt = db.prepare(
      `SELECT (SELECT coalesce(max(seq), 0) FROM events)
         || '.' || (SELECT group_concat(n, '.') FROM (SELECT n FROM state_counts ORDER BY state))
         || '.' || coalesce((SELECT group_concat(seq, '.') FROM (SELECT seq FROM sqlite_sequence
                    WHERE name IN ('attempts', 'visual_checks', 'requests') ORDER BY name)), '') AS marker`,
    );
    const record = db.transaction((records: readonly RequestRecord[], retention: RequestRetention) => {
      for (const r of records) this.putRequest.run(requestColumns(r));
      this.pruneRequestsByAge.run(retention.now - retention.maxAgeMs);
      this.pruneRequestsByCount.run(retention.maxCount);
    });
    this.recordBatch = (records, retention) => record.immediate(records, retention);
  }

  // ---- writes the store makes inside its own transactions ----

  /** One attempt row per event a mark changed (by rowid), then each event trimmed to its latest. */
  addAttempts(seqs: readonly number[], attempt: DispatchAttempt): void {
    const a = attemptColumns(attempt);
    for (const seq of seqs) {
      this.putAttempt.run(seq, a.at, a.dispatch_id, a.events, a.status, a.message, a.result, a.code);
      this.trimAttempts.run({ seq, keep: MAX_ATTEMPTS_KEPT });
    }
  }

  addCheck(route: string, buildId: string, check: VisualCheck): void {
    const c = checkColumns(check);
    this.putCheck.run(route, buildId, c.at, c.outcome, c.status, c.summary, c.error, c.event_id);
    this.trimChecks.run({ route, build: buildId, keep: MAX_VISUAL_CHECKS_KEPT });
  }

  /** With the store's prune: Visual re-reads older than `before`. */
  pruneVisualChecks(before: number): void {
    this.pruneChecks.run(before);
  }

  // ---- ConsoleStore ----

  async listEvents(q: EventRowQuery): Promise<EventRow[]> {
    const where = [OLDER_THAN('e')];
    if (q.route !== null) where.push('e.route = @route');
    if (q.repo !== null) where.push('lower(e.repo) = lower(@repo)');
    // Pending and dead rows are few: found by state (events_due), then sorted. Delivered ones are
    // most of the file: walked by time (`+` keeps SQLite off the state index).
    // Literals, from the three states only (never text from a caller).
    const states = q.states === null ? null : STATES.filter((s) => q.states!.includes(s));
    if (states !== null) {
      const small = !states.includes('delivered');
      where.push(states.length === 0 ? '0' : `${small ? '' : '+'}e.state IN (${states.map((s) => `'${s}'`).join(', ')})`);
    }
    if (q.attempted !== null) where.push(q.attempted ? 'e.attempts > 0' : 'e.attempts = 0');
    const sql = `SELECT ${EVENT_COLUMNS},
        (SELECT json_array(${ATTEMPT_COLUMNS}) FROM attempts a WHERE a.event_seq = e.seq ORDER BY a.id DESC LIMIT 1) AS last_attempt
      FROM events e JOIN bodies b ON b.seq = e.seq
      WHERE ${where.join(' AND ')}
      ORDER BY e.received_at DESC, e.id DESC LIMIT @limit`;
    let stmt = this.listed.get(sql);
    if (!stmt) {
      stmt = this.db.prepare<Record<string, unknown>, ListRow>(sql);
      this.listed.set(sql, stmt);
    }
    const params: Record<string, unknown> = { t: q.after?.receivedAt ?? NEWEST, id: q.after?.id ?? '', limit: Math.max(0, Math.floor(q.limit)) };
    if (q.route !== null) params.route = q.route;
    if (q.repo !== null) params.repo = q.repo;
    return stmt.all(params).map((row) => toEventRow(row, lastAttempt(row.last_attempt)));
  }

  async getEvent(id: string): Promise<EventRowDetail | null> {
    const row = this.getEventStmt.get(id);
    if (!row) return null;
    const history = this.attemptsOf.all(row.seq, MAX_ATTEMPTS_KEPT).map(toAttempt);
    return { ...toEventRow(row, history.at(-1) ?? null), attemptHistory: history };
  }

  async listVisualChecks(route: string, buildId: string, limit: number): Promise<VisualCheck[]> {
    return this.checksOf.all(route, buildId, Math.max(0, Math.floor(limit))).map(toCheck);
  }

  async requeueDead(route: string, now: number): Promise<number> {
    return this.requeueDeadStmt.run(now, now, route).changes;
  }

  async resend(id: string, now: number): Promise<boolean> {
    return this.resendStmt.run(now, now, id).changes > 0;
  }

  async recordRequests(records: readonly RequestRecord[], retention: RequestRetention): Promise<void> {
    this.recordBatch(records, retention);
  }

  async listRequests(q: RequestRowQuery): Promise<RequestRecord[]> {
    const where = [OLDER_THAN('r'), 'r.received_at >= @since'];
    if (q.route !== null) where.push('r.route = @route');
    if (q.repo !== null) where.push('lower(r.repo) = lower(@repo)');
    if (q.codes !== null) where.push(`r.code IN (SELECT value FROM json_each(@codes))`);
    const sql = `SELECT ${REQUEST_COLUMNS} FROM requests r WHERE ${where.join(' AND ')} ORDER BY r.received_at DESC, r.id DESC LIMIT @limit`;
    let stmt = this.requestLists.get(sql);
    if (!stmt) {
      stmt = this.db.prepare<Record<string, unknown>, RequestRow>(sql);
      this.requestLists.set(sql, stmt);
    }
    const params: Record<string, unknown> = {
      t: q.after?.receivedAt ?? NEWEST,
      id: q.after?.id ?? '',
      since: q.since,
      limit: Math.max(0, Math.floor(q.limit)),
    };
    if (q.route !== null) params.route = q.route;
    if (q.repo !== null) params.repo = q.repo;
    if (q.codes !== null) params.codes = JSON.stringify(q.codes);
    return stmt.all(params).map(toRequest);
  }

  async getRequest(id: string): Promise<RequestRecord | null> {
    const row = this.getRequestStmt.get(id);
    return row ? toRequest(row) : null;
  }

  async changeMarker(): Promise<string> {
    return this.markerStmt.get()?.marker ?? '';
  }
}

function lastAttempt(text: string | null): DispatchAttempt | null {
  if (text === null) return null;
  const [at, dispatchId, events, status, message, result, code] = JSON.parse(text) as [
    number,
    string,
    number,
    number | null,
    string,
    DispatchAttempt['result'],
    DispatchAttempt['code'],
  ];
  return { at, dispatchId, events, status, message, result, code };
}
