import { afterAll, afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openSqliteStore, type SqliteEventStore } from '../../../src/relay/outbox/sqlite-store.js';
import { describeConsoleContract } from './console-contract.js';
import { DAY, T0, contractEvent, contractWatch, describeStoreContract } from './store-contract.js';
import { captureConnections, walCommits, walLog } from './support/sqlite-observer.js';

const event = contractEvent;
const watch = contractWatch;

let dir: string;
let store: SqliteEventStore;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'relay-store-'));
  store = openSqliteStore(join(dir, 'data'));
});

afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('openSqliteStore', () => {
  it('creates <dataDir>/relay.db in WAL mode; its connection rests at synchronous=NORMAL (inserts commit at FULL)', async () => {
    expect(store.path).toBe(join(dir, 'data', 'relay.db'));
    expect(existsSync(store.path)).toBe(true);
    // WAL is a property of the file: any connection sees it.
    const db = new Database(store.path, { readonly: true });
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    } finally {
      db.close();
    }
    // synchronous is a setting of the store's own connection: read it there. Which commits fsync
    // is checked from outside, by counting the process's fsyncs (sqlite-fsync.test.ts).
    const seen = captureConnections();
    let own: SqliteEventStore;
    try {
      own = openSqliteStore(join(dir, 'own'));
    } finally {
      seen.restore();
    }
    try {
      expect(seen.connections).toHaveLength(1);
      await own.insert(event(1), DAY);
      // 1 = NORMAL (0 OFF, 2 FULL, 3 EXTRA): also after an insert, which switches to FULL for its COMMIT only.
      expect(seen.connections[0]!.pragma('synchronous', { simple: true })).toBe(1);
    } finally {
      await own.close();
    }
  });

  it('reopens an existing file with its events', async () => {
    const { id } = await store.insert(event(1), DAY);
    await store.close();
    store = openSqliteStore(join(dir, 'data'));
    const [pending] = await store.list('pending', 10);
    expect(pending?.id).toBe(id);
    expect(await store.writable()).toBe(true);
  });

  it('upgrades a schema-2 file (before Visual refresh) in place, keeping its events', async () => {
    const { id } = await store.insert(event(1), DAY);
    await store.close();
    const db = new Database(join(dir, 'data', 'relay.db'));
    db.exec('DROP TABLE visual_watches');
    db.pragma('user_version = 2');
    db.close();
    store = openSqliteStore(join(dir, 'data'));
    expect((await store.list('pending', 10)).map((e) => e.id)).toEqual([id]);
    await store.watchVisual(watch('b1'));
    expect(await store.listVisualWatches(10)).toHaveLength(1);
  });

  it("keeps the relay's extra facts beside the body, and upgrades a schema-3 file to hold them", async () => {
    const { id: before } = await store.insert(event(1), DAY);
    await store.close();
    const db = new Database(join(dir, 'data', 'relay.db'));
    db.exec('ALTER TABLE bodies DROP COLUMN extra');
    db.pragma('user_version = 3');
    db.close();
    store = openSqliteStore(join(dir, 'data'));
    const extra = JSON.stringify({ visual: { diffs: [{ status: 'UNAPPROVED', name: 'cart' }] } });
    const { id: after } = await store.insert({ ...event(2), extra }, DAY);
    const byId = new Map((await store.list('pending', 10)).map((e) => [e.id, e]));
    expect(byId.get(before)?.extra).toBeNull();
    expect(byId.get(after)?.extra).toBe(extra);
    expect(byId.get(after)?.body).toBe(event(2).body);
  });

  it("upgrades a schema-4 file (before the delivery console) in place: its events show in the console's list", async () => {
    const { id } = await store.insert(event(1), DAY);
    await store.close();
    const db = new Database(join(dir, 'data', 'relay.db'));
    db.exec('DROP TABLE attempts; DROP TABLE visual_checks; DROP TABLE requests; DROP INDEX events_received');
    db.pragma('user_version = 4');
    db.close();
    store = openSqliteStore(join(dir, 'data'));
    const query = { after: null, limit: 10, route: null, repo: null, states: null, attempted: null };
    expect((await store.console.listEvents(query)).map((e) => e.id)).toEqual([id]);
    const check = new Database(join(dir, 'data', 'relay.db'), { readonly: true });
    try {
      expect(check.pragma('user_version', { simple: true })).toBe(6);
    } finally {
      check.close();
    }
  });

  it('upgrades a schema-5 file (dedup keyed by hash alone) in place: its keys still catch duplicates until pruned', async () => {
    const timed = event(1, { occurredAt: T0 - 60_000 });
    const { id } = await store.insert(timed, DAY);
    await store.close();
    // Schema 5's dedup table, holding the key that insert wrote.
    const db = new Database(join(dir, 'data', 'relay.db'));
    db.exec(`CREATE TABLE dedup5 (route TEXT NOT NULL, body_hash TEXT NOT NULL, event_id TEXT NOT NULL, first_seen INTEGER NOT NULL,
               PRIMARY KEY (route, body_hash)) WITHOUT ROWID;
             INSERT INTO dedup5 SELECT route, body_hash, event_id, first_seen FROM dedup;
             DROP TABLE dedup; ALTER TABLE dedup5 RENAME TO dedup`);
    db.pragma('user_version = 5');
    db.close();
    store = openSqliteStore(join(dir, 'data'));
    // The redelivery carries its time; the carried-over key has none, and is found all the same.
    expect(await store.insert({ ...timed, receivedAt: T0 + 10 }, DAY)).toEqual({ kind: 'duplicate', id });
    const check = new Database(join(dir, 'data', 'relay.db'), { readonly: true });
    try {
      expect(check.pragma('user_version', { simple: true })).toBe(6);
      expect(check.prepare('SELECT occurred_at FROM dedup').all()).toEqual([{ occurred_at: -1 }]);
    } finally {
      check.close();
    }
    // Once pruned, the old key is gone: the same body is new again.
    await store.prune(T0 + 2);
    expect((await store.insert({ ...timed, receivedAt: T0 + 20 }, DAY)).kind).toBe('stored');
  });

  it.each([
    [1, /pre-release schema \(1\)/],
    [7, /newer relay \(schema 7\)/],
  ])('refuses a schema-%d file with a message that says what to do', async (version, message) => {
    await store.close();
    const db = new Database(join(dir, 'data', 'relay.db'));
    db.pragma(`user_version = ${version}`);
    db.close();
    expect(() => openSqliteStore(join(dir, 'data'))).toThrow(message);
    const fix = new Database(join(dir, 'data', 'relay.db'));
    fix.pragma('user_version = 6');
    fix.close();
    store = openSqliteStore(join(dir, 'data'));
  });

  it('refuses a file from a newer relay before writing anything to it', async () => {
    // A newer relay's file, in rollback-journal mode so that even the switch to WAL would show.
    const newer = join(dir, 'newer');
    const file = join(newer, 'relay.db');
    await openSqliteStore(newer).close();
    const db = new Database(file);
    db.pragma('journal_mode = DELETE');
    db.exec('CREATE TABLE from_the_future (x INTEGER)');
    db.exec('DROP TABLE visual_watches');
    db.pragma('user_version = 7');
    db.close();
    const before = readFileSync(file);
    expect(() => openSqliteStore(newer)).toThrow(/newer relay \(schema 7\)/);
    expect(readFileSync(file).equals(before)).toBe(true);
    expect(existsSync(`${file}-wal`)).toBe(false);
    const after = new Database(file, { readonly: true });
    try {
      expect(after.pragma('journal_mode', { simple: true })).toBe('delete');
      expect(after.prepare("SELECT name FROM sqlite_master WHERE name = 'visual_watches'").get()).toBeUndefined();
    } finally {
      after.close();
    }
  });
});

describe('insert and dedup', () => {
  it('stores an event with everything it was given', async () => {
    const e = event(1);
    const result = await store.insert(e, DAY);
    expect(result.kind).toBe('stored');
    const [stored] = await store.list('pending', 10);
    expect(stored).toEqual({ ...e, id: result.id, state: 'pending', attempts: 0, nextAttemptAt: e.receivedAt, lastError: null, extra: null });
  });

  it('answers a duplicate (same route and body hash) within the window with the original id', async () => {
    const first = await store.insert(event(1), DAY);
    const again = await store.insert({ ...event(1), receivedAt: T0 + DAY - 2 }, DAY);
    expect(again).toEqual({ kind: 'duplicate', id: first.id });
    expect((await store.stats()).pending).toBe(1);
  });

  it('stores the same body again on another route, and after the window', async () => {
    const first = await store.insert(event(1), DAY);
    const otherRoute = await store.insert({ ...event(1), route: 'visual' }, DAY);
    expect(otherRoute.kind).toBe('stored');
    const later = await store.insert({ ...event(1), receivedAt: T0 + 1 + DAY }, DAY);
    expect(later.kind).toBe('stored');
    expect(later.id).not.toBe(first.id);
    // The window now counts from the new first receipt.
    expect(await store.insert({ ...event(1), receivedAt: T0 + 1 + DAY + 5 }, DAY)).toEqual({ kind: 'duplicate', id: later.id });
  });

  it('deduplicates identical bodies inside one batch', async () => {
    const [a, b] = await Promise.all([store.insert(event(7), DAY), store.insert(event(7), DAY)]);
    expect(a?.kind).toBe('stored');
    expect(b).toEqual({ kind: 'duplicate', id: a?.id });
  });
});

describe('dedup keys filed by time', () => {
  it("a batch of events carrying their own time writes its dedup keys to the index's last pages, not a page each", async () => {
    // Two files with the same 3,000 events, then 200 more in one batch: with their times, and without.
    const pagesWritten = async (timed: boolean): Promise<number> => {
      const own = openSqliteStore(join(dir, timed ? 'timed' : 'untimed'));
      try {
        const numbered = (n: number) => event(n, timed ? { occurredAt: T0 + n } : {});
        await Promise.all(Array.from({ length: 3000 }, (_, n) => own.insert(numbered(n), DAY)));
        const other = new Database(own.path);
        other.pragma('wal_checkpoint(TRUNCATE)');
        other.close();
        await Promise.all(Array.from({ length: 200 }, (_, n) => own.insert(numbered(3000 + n), DAY)));
        const log = walLog(own.path);
        expect(log.commits).toBe(1);
        return log.frames;
      } finally {
        await own.close();
      }
    };
    const timed = await pagesWritten(true);
    const untimed = await pagesWritten(false);
    // Without times each new key lands on a random page of ~100 (most of them written); with them,
    // all go to the last few. The event rows, bodies and other indexes write the same in both.
    expect(timed * 2).toBeLessThan(untimed);
  });
});

describe('batched commits', () => {
  it('commits many concurrent inserts in a few transactions, each resolving only after its COMMIT', async () => {
    const before = walCommits(store.path);
    const seenByReader: number[] = [];
    const reader = new Database(store.path, { readonly: true });
    try {
      const count = reader.prepare<[string], { n: number }>('SELECT count(*) AS n FROM events WHERE id = ?');
      const results = await Promise.all(
        Array.from({ length: 200 }, async (_, i) => {
          const r = await store.insert(event(i), DAY);
          // Another connection sees the row the moment the promise resolves: it was committed.
          seenByReader.push(count.get(r.id)!.n);
          return r;
        }),
      );
      expect(new Set(results.map((r) => r.id)).size).toBe(200);
      expect(seenByReader.every((n) => n === 1)).toBe(true);
      const commits = walCommits(store.path) - before;
      expect(commits).toBeGreaterThanOrEqual(1);
      expect(commits).toBeLessThanOrEqual(2);
    } finally {
      reader.close();
    }
  });

  it('batches within batchWindowMs', async () => {
    const windowed = openSqliteStore(join(dir, 'windowed'), { batchWindowMs: 30 });
    try {
      const before = walCommits(windowed.path);
      const first = windowed.insert(event(1), DAY);
      // Past the next turn of the event loop (where a window of 0 would commit), inside the 30 ms.
      await new Promise((r) => setImmediate(r));
      const second = windowed.insert(event(2), DAY);
      await Promise.all([first, second]);
      expect(walCommits(windowed.path) - before).toBe(1);
    } finally {
      await windowed.close();
    }
  });

  it('rejects every queued insert when their commit fails, and stores none of them', async () => {
    const impatient = openSqliteStore(join(dir, 'locked'), { busyTimeoutMs: 0 });
    const locker = new Database(impatient.path);
    try {
      locker.exec('BEGIN EXCLUSIVE');
      const batch = [1, 2, 3].map((n) => impatient.insert(event(n), DAY));
      const settled = await Promise.allSettled(batch);
      expect(settled.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
      for (const r of settled) expect(r.status === 'rejected' && String(r.reason)).toMatch(/locked/);
      locker.exec('ROLLBACK');
      expect(await impatient.stats()).toEqual({ pending: 0, delivered: 0, dead: 0 });
      // Nothing half-done: the same deliveries are stored (not "duplicates") once the lock is gone.
      expect((await impatient.insert(event(1), DAY)).kind).toBe('stored');
    } finally {
      locker.close();
      await impatient.close();
    }
  });

  it('a batch the lock refuses is tried again from a timer, never blocking the event loop, and stored once the lock goes', async () => {
    const patient = openSqliteStore(join(dir, 'patient'), { busyTimeoutMs: 60_000 });
    const locker = new Database(patient.path);
    try {
      locker.exec('BEGIN EXCLUSIVE');
      let settled = false;
      const pending = patient.insert(event(1), DAY).finally(() => {
        settled = true;
      });
      // The loop keeps turning while the batch waits: timers run, and nothing resolves before COMMIT.
      for (let turn = 0; turn < 5; turn += 1) await new Promise((r) => setTimeout(r, 5));
      expect(settled).toBe(false);
      // Nothing else waits for the lock either: /readyz's check answers at once that it cannot write.
      expect(await patient.writable()).toBe(false);
      const joining = patient.insert(event(2), DAY);
      locker.exec('ROLLBACK');
      const [first, second] = await Promise.all([pending, joining]);
      expect([first.kind, second.kind]).toEqual(['stored', 'stored']);
      expect(await patient.stats()).toEqual({ pending: 2, delivered: 0, dead: 0 });
    } finally {
      locker.close();
      await patient.close();
    }
  });

  it('a batch still refused busyTimeoutMs after its first refusal fails, and what arrives later is tried afresh', async () => {
    const brief = openSqliteStore(join(dir, 'brief'), { busyTimeoutMs: 40 });
    const locker = new Database(brief.path);
    try {
      locker.exec('BEGIN EXCLUSIVE');
      await expect(brief.insert(event(1), DAY)).rejects.toMatchObject({ code: expect.stringMatching(/^SQLITE_BUSY/) });
      locker.exec('ROLLBACK');
      expect((await brief.insert(event(2), DAY)).kind).toBe('stored');
      expect(await brief.stats()).toEqual({ pending: 1, delivered: 0, dead: 0 });
    } finally {
      locker.close();
      await brief.close();
    }
  });

  it('a mark and a watch write the lock refuses are tried again until it goes, never lost (a lost mark would mean a resend)', async () => {
    const patient = openSqliteStore(join(dir, 'patient-marks'), { busyTimeoutMs: 60_000 });
    const locker = new Database(patient.path);
    try {
      const { id } = await patient.insert(event(1), DAY);
      const [claimed] = await patient.claim('a', T0 + 1_000, 30_000, 10);
      expect(claimed?.id).toBe(id);
      locker.exec('BEGIN EXCLUSIVE');
      let settled = false;
      const mark = patient.markDelivered('a', [id], T0 + 2_000).finally(() => {
        settled = true;
      });
      const watched = patient.watchVisual(watch('b1'));
      for (let turn = 0; turn < 5; turn += 1) await new Promise((r) => setTimeout(r, 5));
      expect(settled).toBe(false);
      locker.exec('ROLLBACK');
      expect(await mark).toBe(1);
      await watched;
      expect(await patient.stats()).toEqual({ pending: 0, delivered: 1, dead: 0 });
      expect((await patient.listVisualWatches(10)).map((w) => w.buildId)).toEqual(['b1']);
    } finally {
      locker.close();
      await patient.close();
    }
  });

  it('a mark still refused busyTimeoutMs after the first refusal fails with the lock error; the event stays claimed', async () => {
    const brief = openSqliteStore(join(dir, 'brief-marks'), { busyTimeoutMs: 40 });
    const locker = new Database(brief.path);
    try {
      const { id } = await brief.insert(event(1), DAY);
      expect(await brief.claim('a', T0 + 1_000, 30_000, 10)).toHaveLength(1);
      locker.exec('BEGIN EXCLUSIVE');
      await expect(brief.markDelivered('a', [id], T0 + 2_000)).rejects.toMatchObject({ code: expect.stringMatching(/^SQLITE_BUSY/) });
      await expect(brief.watchVisual(watch('b1'))).rejects.toMatchObject({ code: expect.stringMatching(/^SQLITE_BUSY/) });
      locker.exec('ROLLBACK');
      expect(await brief.stats()).toEqual({ pending: 1, delivered: 0, dead: 0 });
      expect(await brief.markDelivered('a', [id], T0 + 3_000)).toBe(1);
    } finally {
      locker.close();
      await brief.close();
    }
  });

  it('names events with time-ordered UUIDs (v7), so the id index grows at its end', async () => {
    const ids: string[] = [];
    for (let n = 0; n < 50; n += 1) ids.push((await store.insert(event(n), DAY)).id);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect([...ids].sort()).toEqual(ids);
  });

  it('close() commits what was queued, then refuses new inserts', async () => {
    const pending = store.insert(event(1), DAY);
    await store.close();
    await expect(pending).resolves.toMatchObject({ kind: 'stored' });
    await expect(store.insert(event(2), DAY)).rejects.toThrow(/closed/);
    expect(await store.writable()).toBe(false);
    store = openSqliteStore(join(dir, 'data'));
    expect((await store.list('pending', 10)).map((e) => JSON.parse(e.body).n)).toEqual([1]);
  });
});

describe('claim', () => {
  /** The query plans of the statements a fresh store prepares that match `pick`, in order. */
  async function plansOf(pick: (sql: string) => boolean): Promise<string[]> {
    const seen = captureConnections();
    let own: SqliteEventStore;
    try {
      own = openSqliteStore(join(dir, 'explain'));
    } finally {
      seen.restore();
    }
    const db = new Database(own.path, { readonly: true });
    try {
      return seen.statements.filter(pick).map((sql) =>
        db
          .prepare<unknown[], { detail: string }>(`EXPLAIN QUERY PLAN ${sql}`)
          // Any value does for a plan: '[]' is also an empty json_each list.
          .all(...(sql.match(/\?/g) ?? []).map(() => '[]'))
          .map((r) => r.detail)
          .join('\n'),
      );
    } finally {
      db.close();
      await own.close();
    }
  }

  it("uses the index for the claim query (the store's own statement)", async () => {
    const plans = await plansOf((sql) => /^\s*UPDATE events SET claimed_by = \?/.test(sql));
    expect(plans).toHaveLength(1);
    expect(plans[0]).toMatch(/USING INDEX events_due/);
    expect(plans[0]).not.toMatch(/TEMP B-TREE/);
    // The groups other owners hold come from the running leases alone, not a scan of every
    // pending event (which made each claim cost in proportion to the backlog).
    expect(plans[0]).toMatch(/SEARCH events USING INDEX events_leased/);
    expect(plans[0]).not.toMatch(/USING INDEX events_due \(state=\?\)$/m);
  });

  it('finds the events a mark or release names by id, never by scanning the pending ones', async () => {
    const plans = await plansOf((sql) => /^\s*UPDATE events SET/.test(sql) && /claimed_by = \? AND id IN/.test(sql));
    // delivered, retry, dead, release
    expect(plans).toHaveLength(4);
    for (const plan of plans) {
      expect(plan).toMatch(/SEARCH events USING INDEX sqlite_autoindex_events_1 \(id=\?\)/);
      expect(plan).not.toMatch(/events_due/);
    }
  });
});

describeStoreContract('SQLite', () => ({
  async reset() {
    contractDir = mkdtempSync(join(tmpdir(), 'relay-contract-'));
    contractDirs.push(contractDir);
  },
  async open() {
    return openSqliteStore(contractDir);
  },
}));

describeConsoleContract('SQLite', () => ({
  async reset() {
    contractDir = mkdtempSync(join(tmpdir(), 'relay-contract-'));
    contractDirs.push(contractDir);
  },
  async open() {
    return openSqliteStore(contractDir);
  },
  async rows(table) {
    const db = new Database(join(contractDir, 'relay.db'), { readonly: true });
    try {
      return db.prepare<[], { n: number }>(`SELECT count(*) AS n FROM ${table}`).get()!.n;
    } finally {
      db.close();
    }
  },
}));

let contractDir = '';
const contractDirs: string[] = [];
afterAll(() => {
  for (const d of contractDirs) rmSync(d, { recursive: true, force: true });
});
