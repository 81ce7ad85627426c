import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openSqliteStore, type SqliteEventStore } from '../../../src/relay/outbox/sqlite-store.js';
import type { NewEvent, NewVisualWatch } from '../../../src/relay/outbox/store.js';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 1);

function event(n: number, overrides: Partial<NewEvent> = {}): NewEvent {
  const body = JSON.stringify({ id: `job-${n}`, status: 'PASSED', n });
  return {
    route: 'default',
    repo: 'acme/shop',
    eventType: 'saucelabs',
    body,
    bodyHash: createHash('sha256').update(body).digest('hex'),
    receivedAt: T0 + n,
    ...overrides,
  };
}

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
  it('creates <dataDir>/relay.db in WAL mode with synchronous=FULL', () => {
    expect(store.path).toBe(join(dir, 'data', 'relay.db'));
    expect(existsSync(store.path)).toBe(true);
    const db = new Database(store.path, { readonly: true });
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    } finally {
      db.close();
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

  it.each([
    [1, /pre-release schema \(1\)/],
    [4, /newer relay \(schema 4\)/],
  ])('refuses a schema-%d file with a message that says what to do', async (version, message) => {
    await store.close();
    const db = new Database(join(dir, 'data', 'relay.db'));
    db.pragma(`user_version = ${version}`);
    db.close();
    expect(() => openSqliteStore(join(dir, 'data'))).toThrow(message);
    const fix = new Database(join(dir, 'data', 'relay.db'));
    fix.pragma('user_version = 3');
    fix.close();
    store = openSqliteStore(join(dir, 'data'));
  });
});

function watch(buildId: string, overrides: Partial<NewVisualWatch> = {}): NewVisualWatch {
  return {
    route: 'default',
    buildId,
    repo: 'acme/shop',
    eventType: 'saucelabs',
    body: JSON.stringify({ build_id: buildId, status: 'UNAPPROVED' }),
    dataCenter: 'us-west-1',
    firstSeenAt: T0,
    nextCheckAt: T0 + 60_000,
    expiresAt: T0 + 3 * DAY,
    ...overrides,
  };
}

describe('Visual watches', () => {
  it('a newer webhook for a watched build takes its body; first sighting and expiry stay', async () => {
    await store.watchVisual(watch('b1'));
    await store.watchVisual(watch('b1', { body: '{"status":"QUEUED"}', firstSeenAt: T0 + 5000, nextCheckAt: T0 + 65_000, expiresAt: T0 + 9 * DAY }));
    const [w] = await store.listVisualWatches(10);
    expect(w).toMatchObject({ buildId: 'b1', body: '{"status":"QUEUED"}', firstSeenAt: T0, nextCheckAt: T0 + 60_000, expiresAt: T0 + 3 * DAY, checks: 0 });
  });

  it('the same build on another route is another watch', async () => {
    await store.watchVisual(watch('b1'));
    await store.watchVisual(watch('b1', { route: 'team-b' }));
    expect((await store.listVisualWatches(10)).map((w) => w.route).sort()).toEqual(['default', 'team-b']);
  });

  it('claims only due watches, and a claimed one is not claimable again until its lease runs out', async () => {
    await store.watchVisual(watch('due-1', { nextCheckAt: T0 + 10 }));
    await store.watchVisual(watch('due-2', { nextCheckAt: T0 + 20 }));
    await store.watchVisual(watch('later', { nextCheckAt: T0 + 10_000 }));
    expect((await store.claimVisualWatches(T0 + 100, 60_000, 10)).map((w) => w.buildId)).toEqual(['due-1', 'due-2']);
    expect(await store.claimVisualWatches(T0 + 200, 60_000, 10)).toEqual([]);
    expect((await store.claimVisualWatches(T0 + 10_000, 60_000, 1)).map((w) => w.buildId)).toEqual(['later']);
    // A process that died mid-check: its lease runs out and another claims the watch.
    expect((await store.claimVisualWatches(T0 + 100 + 60_000, 60_000, 10)).map((w) => w.buildId)).toEqual(['due-1', 'due-2']);
  });

  it('reschedule counts the check, keeps or replaces the body, records or clears the error', async () => {
    await store.watchVisual(watch('b1'));
    await store.rescheduleVisualWatch('default', 'b1', T0 + 120_000, { error: 'HTTP 503' });
    let [w] = await store.listVisualWatches(10);
    expect(w).toMatchObject({ nextCheckAt: T0 + 120_000, checks: 1, lastError: 'HTTP 503', body: watch('b1').body });
    await store.rescheduleVisualWatch('default', 'b1', T0 + 180_000, { body: '{"status":"UNAPPROVED","n":2}' });
    [w] = await store.listVisualWatches(10);
    expect(w).toMatchObject({ nextCheckAt: T0 + 180_000, checks: 2, lastError: null, body: '{"status":"UNAPPROVED","n":2}' });
  });

  it('end removes only that watch, and survives a reopen', async () => {
    await store.watchVisual(watch('b1'));
    await store.watchVisual(watch('b2'));
    await store.endVisualWatch('default', 'b1');
    await store.endVisualWatch('default', 'no-such-build');
    await store.close();
    store = openSqliteStore(join(dir, 'data'));
    expect((await store.listVisualWatches(10)).map((w) => w.buildId)).toEqual(['b2']);
  });
});

describe('insert and dedup', () => {
  it('stores an event with everything it was given', async () => {
    const e = event(1);
    const result = await store.insert(e, DAY);
    expect(result.kind).toBe('stored');
    const [stored] = await store.list('pending', 10);
    expect(stored).toEqual({ ...e, id: result.id, state: 'pending', attempts: 0, nextAttemptAt: e.receivedAt, lastError: null });
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

describe('batched commits', () => {
  it('commits many concurrent inserts in a few transactions, each resolving only after its COMMIT', async () => {
    const before = store.insertCommits;
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
      const commits = store.insertCommits - before;
      expect(commits).toBeGreaterThanOrEqual(1);
      expect(commits).toBeLessThanOrEqual(2);
    } finally {
      reader.close();
    }
  });

  it('batches within batchWindowMs', async () => {
    const windowed = openSqliteStore(join(dir, 'windowed'), { batchWindowMs: 30 });
    try {
      const first = windowed.insert(event(1), DAY);
      await new Promise((r) => setTimeout(r, 5));
      const second = windowed.insert(event(2), DAY);
      await Promise.all([first, second]);
      expect(windowed.insertCommits).toBe(1);
    } finally {
      await windowed.close();
    }
  });

  it('rejects every queued insert when the store is closed underneath', async () => {
    const pending = store.insert(event(1), DAY);
    await store.close();
    // close() flushes what was queued: that insert is durable and resolved.
    await expect(pending).resolves.toMatchObject({ kind: 'stored' });
    await expect(store.insert(event(2), DAY)).rejects.toThrow(/closed/);
    expect(await store.writable()).toBe(false);
    store = openSqliteStore(join(dir, 'data'));
  });

  it('without batching, one transaction per insert (the baseline for the measurement)', async () => {
    const single = openSqliteStore(join(dir, 'single'), { batching: false });
    try {
      await Promise.all(Array.from({ length: 20 }, (_, i) => single.insert(event(i), DAY)));
      expect(single.insertCommits).toBe(20);
    } finally {
      await single.close();
    }
  });
});

describe('claim and lease', () => {
  it('hands each due event to one owner until its lease expires', async () => {
    for (let i = 0; i < 5; i++) await store.insert(event(i), DAY);
    const now = T0 + 100;
    const a = await store.claim('a', now, 1_000, 3);
    expect(a.map((e) => JSON.parse(e.body).n)).toEqual([0, 1, 2]);
    const b = await store.claim('b', now, 1_000, 10);
    expect(b.map((e) => JSON.parse(e.body).n)).toEqual([3, 4]);
    expect(await store.claim('c', now + 999, 1_000, 10)).toEqual([]);
    // 'a' died: its events come back once the lease is over (b's too, they were never marked).
    const c = await store.claim('c', now + 1_000, 1_000, 10);
    expect(c).toHaveLength(5);
  });

  it('does not hand out events before nextAttemptAt, or delivered and dead ones', async () => {
    const ids = [];
    for (let i = 0; i < 4; i++) ids.push((await store.insert(event(i), DAY)).id);
    const now = T0 + 100;
    await store.claim('a', now, 1_000, 10);
    await store.markDelivered([ids[0]!], now);
    await store.markDead([ids[1]!], '422 dispatch rejected');
    await store.markRetry([ids[2]!], now + 5_000, 'GitHub 503');
    await store.release([ids[3]!]);
    const again = await store.claim('b', now, 60_000, 10);
    expect(again.map((e) => e.id)).toEqual([ids[3]]);
    expect(again[0]?.attempts).toBe(0); // release counts no attempt
    const later = await store.claim('b', now + 5_000, 1_000, 10);
    expect(later.map((e) => ({ id: e.id, attempts: e.attempts, lastError: e.lastError }))).toEqual([{ id: ids[2], attempts: 1, lastError: 'GitHub 503' }]);
    expect(await store.stats()).toEqual({ pending: 2, delivered: 1, dead: 1 });
  });

  it('never turns a delivered event back into pending or dead', async () => {
    const { id } = await store.insert(event(1), DAY);
    await store.claim('a', T0, 1_000, 10);
    await store.markDelivered([id], T0 + 10);
    await store.markRetry([id], T0 + 20, 'late failure from a stale owner');
    await store.markDead([id], 'late');
    expect(await store.stats()).toEqual({ pending: 0, delivered: 1, dead: 0 });
  });

  it('two stores on one file (two processes) never claim the same event', async () => {
    const other = openSqliteStore(join(dir, 'data'));
    try {
      await Promise.all(Array.from({ length: 50 }, (_, i) => store.insert(event(i), DAY)));
      const got: string[] = [];
      for (let round = 0; round < 10; round++) {
        got.push(...(await store.claim('a', T0 + 100, 60_000, 3)).map((e) => e.id));
        got.push(...(await other.claim('b', T0 + 100, 60_000, 4)).map((e) => e.id));
      }
      expect(got).toHaveLength(50);
      expect(new Set(got).size).toBe(50);
    } finally {
      await other.close();
    }
  });

  it('uses the index for the claim query', () => {
    const db = new Database(store.path, { readonly: true });
    try {
      const plan = db
        .prepare<[], { detail: string }>(
          `EXPLAIN QUERY PLAN SELECT seq FROM events WHERE state = 'pending' AND next_attempt_at <= 5 AND lease_until <= 5 ORDER BY next_attempt_at, seq LIMIT 10`,
        )
        .all()
        .map((r) => r.detail)
        .join('\n');
      expect(plan).toMatch(/USING INDEX events_due/);
      expect(plan).not.toMatch(/TEMP B-TREE/);
    } finally {
      db.close();
    }
  });
});

describe('dead letters, requeue and prune', () => {
  it('lists dead events with their reason and requeues one, due now, with a fresh age', async () => {
    const { id } = await store.insert(event(1), DAY);
    await store.claim('a', T0, 1_000, 10);
    await store.markDead([id], '404 repository not found');
    const [dead] = await store.list('dead', 10);
    expect(dead).toMatchObject({ id, state: 'dead', lastError: '404 repository not found' });
    expect(await store.requeue('no-such-id', T0 + 5)).toBe(false);
    const requeueAt = T0 + 4 * DAY;
    expect(await store.requeue(id, requeueAt)).toBe(true);
    expect(await store.requeue(id, requeueAt)).toBe(false); // no longer dead
    const [back] = await store.claim('b', requeueAt, 1_000, 10);
    expect(back).toMatchObject({ id, state: 'pending', attempts: 0, nextAttemptAt: requeueAt, requeuedAt: requeueAt, receivedAt: T0 + 1 });
  });

  it('prunes delivered events and dedup keys older than the cutoff, keeping pending and dead ones', async () => {
    const a = await store.insert(event(1), DAY);
    const b = await store.insert(event(2), DAY);
    const c = await store.insert(event(3), DAY);
    await store.claim('x', T0 + 10, 1_000, 10);
    await store.markDelivered([a.id], T0 + 10);
    await store.markDead([b.id], 'gone');
    expect(await store.prune(T0 + 5)).toBe(0);
    expect(await store.prune(T0 + 11)).toBe(1);
    expect(await store.stats()).toEqual({ pending: 1, delivered: 0, dead: 1 });
    // Dedup keys went too: the same body is new again.
    expect((await store.insert({ ...event(1), receivedAt: T0 + 20 }, DAY)).kind).toBe('stored');
    expect(c.kind).toBe('stored');
  });
});
