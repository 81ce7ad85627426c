/**
 * The PostgreSQL store's part for the delivery console (`ConsoleStore`, src/relay/console/source.ts):
 * its reads, actions and the statement fragments the store's marks and watch updates embed, so a
 * mark and its attempt rows (a watch's reschedule and its re-read) are one statement. The tables
 * are migration 2 (postgres-migrations.ts). Every relay on the database reads the same rows: each
 * console shows every instance's deliveries, attempts, re-reads and refused requests.
 *
 * Nothing here runs on the request path: attempts are written by the dispatcher's marks, re-reads
 * by Visual refresh, refused requests by the recorder's timer. The one cost ingest pays is the
 * `relay_events_received` index, which the newest-first list needs.
 */
import type pg from 'pg';
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

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const NEWEST = Number.MAX_SAFE_INTEGER;
const EVENT_COLUMNS =
  'e.id, e.route, e.repo, e.event_type, e.received_at, e.state, e.attempts, e.next_attempt_at, e.last_error, e.requeued_at, b.body, b.extra';
const ATTEMPT_COLUMNS = 'at, dispatch_id, events, status, message, result, code';
const CHECK_COLUMNS = 'at, outcome, status, summary, error, event_id';
const REQUEST_COLUMNS = 'id, received_at, route, repo, status, code, reason, bytes, source, signature, issues, event, duplicate_of';

/**
 * CTEs for a mark statement whose CTE `changed` returns the ids it changed: one attempt row per
 * event (when `$p` is not null), and each event's older rows beyond the latest MAX_ATTEMPTS_KEPT
 * dropped (the CTEs see the rows as they were before the statement, hence the 1 kept for the new one).
 * Its seven parameters start at `$p`: see `attemptParams`.
 */
export function attemptCtes(changed: string, p: number): string {
  const $ = (i: number) => `$${p + i}`;
  return `
  attempt_rows AS (
    INSERT INTO relay_attempts (event_id, ${ATTEMPT_COLUMNS})
    SELECT id, ${$(0)}::bigint, ${$(1)}::text, ${$(2)}::int, ${$(3)}::int, ${$(4)}::text, ${$(5)}::text, ${$(6)}::text FROM ${changed}
    WHERE ${$(0)}::bigint IS NOT NULL
  ),
  attempt_trim AS (
    DELETE FROM relay_attempts x
    USING (SELECT seq, row_number() OVER (PARTITION BY event_id ORDER BY seq DESC) AS n
           FROM relay_attempts WHERE event_id IN (SELECT id FROM ${changed})) old
    WHERE ${$(0)}::bigint IS NOT NULL AND x.seq = old.seq AND old.n >= ${MAX_ATTEMPTS_KEPT}
  )`;
}

/** The seven parameters of `attemptCtes` (all null without an attempt). */
export function attemptParams(attempt: DispatchAttempt | undefined): unknown[] {
  if (!attempt) return [null, null, null, null, null, null, null];
  const a = attemptColumns(attempt);
  return [a.at, a.dispatch_id, a.events, a.status, a.message, a.result, a.code];
}

/**
 * CTEs recording a Visual re-read of (route `$r`, build `$r+1`) when `$p` is not null, and the
 * build's older re-reads beyond the latest MAX_VISUAL_CHECKS_KEPT dropped. Six parameters from `$p`:
 * see `checkParams`.
 */
export function checkCtes(r: number, p: number): string {
  const $ = (i: number) => `$${p + i}`;
  return `
  check_row AS (
    INSERT INTO relay_visual_checks (route, build_id, ${CHECK_COLUMNS})
    SELECT $${r}::text, $${r + 1}::text, ${$(0)}::bigint, ${$(1)}::text, ${$(2)}::text, ${$(3)}::text, ${$(4)}::text, ${$(5)}::text
    WHERE ${$(0)}::bigint IS NOT NULL
  ),
  check_trim AS (
    DELETE FROM relay_visual_checks
    WHERE ${$(0)}::bigint IS NOT NULL AND seq IN (
      SELECT seq FROM relay_visual_checks WHERE route = $${r}::text AND build_id = $${r + 1}::text
      ORDER BY seq DESC OFFSET ${MAX_VISUAL_CHECKS_KEPT - 1})
  )`;
}

export function checkParams(check: VisualCheck | undefined): unknown[] {
  if (!check) return [null, null, null, null, null, null];
  const c = checkColumns(check);
  return [c.at, c.outcome, c.status, c.summary, c.error, c.event_id];
}

type ListRow = EventConsoleRow & { a_at: number | null } & { [K in keyof AttemptRow as `a_${K}`]: AttemptRow[K] | null };

/** Builds a statement's text and parameters together, numbering `$n` as values are added. */
class Sql {
  readonly params: unknown[] = [];
  readonly where: string[] = [];
  add(value: unknown): string {
    this.params.push(value);
    return `$${this.params.length}`;
  }
}

/** A state filter as literals, so PostgreSQL can use the partial index of pending or dead rows. */
function stateLiterals(states: readonly EventState[]): string {
  const known: readonly EventState[] = ['pending', 'delivered', 'dead'];
  return [...new Set(states)]
    .filter((s) => known.includes(s))
    .sort()
    .map((s) => `'${s}'`)
    .join(', ');
}

/** The store's `console` part (`requeue` is the store's own: the CLI's `outbox retry` uses it too). */
export class PostgresConsole implements ConsoleStore {
  /**
   * @param transaction runs `fn` in one transaction on a connection of its own (the store's, which
   * keeps a connection that dies meanwhile from crashing the process).
   */
  constructor(
    private readonly pool: pg.Pool,
    private readonly transaction: <T>(fn: (client: pg.PoolClient) => Promise<T>) => Promise<T>,
  ) {}

  async listEvents(q: EventRowQuery): Promise<EventRow[]> {
    const sql = new Sql();
    const t = sql.add(q.after?.receivedAt ?? NEWEST);
    const id = sql.add(q.after?.id ?? '');
    // Strictly older than (t, id), newest first; the range on the time index, the tie on the id's text.
    sql.where.push(`e.received_at <= ${t} AND (e.received_at < ${t} OR e.id::text COLLATE "C" < ${id})`);
    if (q.route !== null) sql.where.push(`e.route = ${sql.add(q.route)}`);
    if (q.repo !== null) sql.where.push(`lower(e.repo) = lower(${sql.add(q.repo)})`);
    if (q.states !== null) {
      const states = stateLiterals(q.states);
      sql.where.push(states === '' ? 'false' : `e.state IN (${states})`);
    }
    if (q.attempted !== null) sql.where.push(q.attempted ? 'e.attempts > 0' : 'e.attempts = 0');
    const limit = sql.add(Math.max(0, Math.floor(q.limit)));
    const { rows } = await this.pool.query<ListRow>(
      `SELECT ${EVENT_COLUMNS}, a.at AS a_at, a.dispatch_id AS a_dispatch_id, a.events AS a_events, a.status AS a_status,
              a.message AS a_message, a.result AS a_result, a.code AS a_code
       FROM relay_events e JOIN relay_bodies b ON b.id = e.id
       LEFT JOIN LATERAL (SELECT ${ATTEMPT_COLUMNS} FROM relay_attempts x WHERE x.event_id = e.id ORDER BY x.seq DESC LIMIT 1) a ON true
       WHERE ${sql.where.join(' AND ')}
       ORDER BY e.received_at DESC, e.id DESC LIMIT ${limit}`,
      sql.params,
    );
    return rows.map((row) =>
      toEventRow(
        row,
        row.a_at === null
          ? null
          : toAttempt({
              at: row.a_at,
              dispatch_id: row.a_dispatch_id!,
              events: row.a_events!,
              status: row.a_status,
              message: row.a_message!,
              result: row.a_result!,
              code: row.a_code,
            }),
      ),
    );
  }

  async getEvent(id: string): Promise<EventRowDetail | null> {
    if (!UUID_RE.test(id)) return null;
    const [event, attempts] = await Promise.all([
      this.pool.query<EventConsoleRow>(`SELECT ${EVENT_COLUMNS} FROM relay_events e JOIN relay_bodies b ON b.id = e.id WHERE e.id = $1`, [id]),
      this.pool.query<AttemptRow>(
        `SELECT ${ATTEMPT_COLUMNS} FROM (SELECT * FROM relay_attempts WHERE event_id = $1 ORDER BY seq DESC LIMIT $2) x ORDER BY seq`,
        [id, MAX_ATTEMPTS_KEPT],
      ),
    ]);
    const row = event.rows[0];
    if (!row) return null;
    const history = attempts.rows.map(toAttempt);
    return { ...toEventRow(row, history.at(-1) ?? null), attemptHistory: history };
  }

  async listVisualChecks(route: string, buildId: string, limit: number): Promise<VisualCheck[]> {
    const { rows } = await this.pool.query<CheckRow>(
      `SELECT ${CHECK_COLUMNS} FROM (SELECT * FROM relay_visual_checks WHERE route = $1 AND build_id = $2 ORDER BY seq DESC LIMIT $3) x ORDER BY seq`,
      [route, buildId, Math.max(0, Math.floor(limit))],
    );
    return rows.map(toCheck);
  }

  async requeueDead(route: string, now: number): Promise<number> {
    // As the store's own requeue (the CLI's `outbox retry`): due now, a fresh age, attempts from 0.
    const r = await this.pool.query(
      `UPDATE relay_events SET state = 'pending', next_attempt_at = $1, requeued_at = $1, attempts = 0, claimed_by = NULL, lease_until = 0
       WHERE route = $2 AND state = 'dead'`,
      [now, route],
    );
    return r.rowCount ?? 0;
  }

  async resend(id: string, now: number): Promise<boolean> {
    if (!UUID_RE.test(id)) return false;
    const { rows } = await this.pool.query<{ n: number }>(
      `WITH back AS (
         UPDATE relay_events SET state = 'pending', next_attempt_at = $1, requeued_at = $1, attempts = 0, delivered_at = NULL,
           claimed_by = NULL, lease_until = 0
         WHERE id = $2 AND state = 'delivered' RETURNING 1
       ), counted AS (
         UPDATE relay_counters SET n = n - (SELECT count(*) FROM back) WHERE name = 'delivered' AND EXISTS (SELECT 1 FROM back)
       )
       SELECT count(*)::int AS n FROM back`,
      [now, id],
    );
    return (rows[0]?.n ?? 0) > 0;
  }

  async recordRequests(records: readonly RequestRecord[], retention: RequestRetention): Promise<void> {
    const rows = records.map(requestColumns);
    const column = <K extends keyof RequestRow>(k: K) => rows.map((r) => r[k]);
    // One transaction: the rows in, then the table pruned by age and count (in a second statement,
    // which sees the new rows).
    await this.transaction(async (client) => {
      await client.query(
        `INSERT INTO relay_requests (${REQUEST_COLUMNS})
         SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::int[], $6::text[], $7::text[], $8::int[], $9::text[],
                              $10::text[], $11::text[], $12::text[], $13::text[])
         ON CONFLICT (id) DO NOTHING`,
        [
          column('id'),
          column('received_at'),
          column('route'),
          column('repo'),
          column('status'),
          column('code'),
          column('reason'),
          column('bytes'),
          column('source'),
          column('signature'),
          column('issues'),
          column('event'),
          column('duplicate_of'),
        ],
      );
      await client.query('DELETE FROM relay_requests WHERE received_at < $1 OR seq <= (SELECT max(seq) FROM relay_requests) - $2', [
        retention.now - retention.maxAgeMs,
        retention.maxCount,
      ]);
    });
  }

  async listRequests(q: RequestRowQuery): Promise<RequestRecord[]> {
    const sql = new Sql();
    const t = sql.add(q.after?.receivedAt ?? NEWEST);
    const id = sql.add(q.after?.id ?? '');
    sql.where.push(`r.received_at <= ${t} AND (r.received_at < ${t} OR r.id < ${id})`, `r.received_at >= ${sql.add(q.since)}`);
    if (q.route !== null) sql.where.push(`r.route = ${sql.add(q.route)}`);
    if (q.repo !== null) sql.where.push(`lower(r.repo) = lower(${sql.add(q.repo)})`);
    if (q.codes !== null) sql.where.push(`r.code = ANY(${sql.add(q.codes)}::text[])`);
    const limit = sql.add(Math.max(0, Math.floor(q.limit)));
    const { rows } = await this.pool.query<RequestRow>(
      `SELECT ${REQUEST_COLUMNS} FROM relay_requests r WHERE ${sql.where.join(' AND ')} ORDER BY r.received_at DESC, r.id DESC LIMIT ${limit}`,
      sql.params,
    );
    return rows.map(toRequest);
  }

  async getRequest(id: string): Promise<RequestRecord | null> {
    const { rows } = await this.pool.query<RequestRow>(`SELECT ${REQUEST_COLUMNS} FROM relay_requests WHERE id = $1`, [id]);
    return rows[0] ? toRequest(rows[0]) : null;
  }

  /**
   * The newest receipt (an index's end), the pending and dead counts (their partial indexes), the
   * delivered counter, and the newest attempt, re-read and refused request (their keys' ends).
   */
  async changeMarker(): Promise<string> {
    const { rows } = await this.pool.query<{ marker: string }>(
      `SELECT concat_ws('.',
         coalesce((SELECT max(received_at) FROM relay_events), 0),
         (SELECT count(*) FROM relay_events WHERE state = 'pending'),
         coalesce((SELECT n FROM relay_counters WHERE name = 'delivered'), 0),
         (SELECT count(*) FROM relay_events WHERE state = 'dead'),
         coalesce((SELECT max(seq) FROM relay_attempts), 0),
         coalesce((SELECT max(seq) FROM relay_visual_checks), 0),
         coalesce((SELECT max(seq) FROM relay_requests), 0)) AS marker`,
    );
    return rows[0]?.marker ?? '';
  }
}
