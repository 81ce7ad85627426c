/**
 * The PostgreSQL store on a real server (test/support/postgres.ts, one per file): the store
 * contract (store-contract.ts), then what only a shared database has: migrations that three relays
 * run at once, a database from a newer relay, the server restarting under the pool, a read-only
 * database, and durability settings.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { insertRounds, openPostgresStore } from '../../../src/relay/outbox/postgres-store.js';
import { LATEST_SCHEMA, MIGRATIONS, pendingMigrations } from '../../../src/relay/outbox/postgres-migrations.js';
import { postgresAvailable, skipLine, startPostgres, type PostgresServer } from '../../support/postgres.js';
import { describeConsoleContract } from './console-contract.js';
import { DAY, contractEvent, describeStoreContract } from './store-contract.js';

describe('insertRounds (pure)', () => {
  const item = (route: string, bodyHash: string, dedupWindowMs = DAY) => ({ route, bodyHash, dedupWindowMs });
  it.each([
    ['one round when every key is new', [item('r', 'a'), item('r', 'b'), item('s', 'a')], [[0, 1, 2]]],
    ['a repeated body goes in a later round', [item('r', 'a'), item('r', 'b'), item('r', 'a'), item('r', 'a')], [[0, 1], [2], [3]]],
    ['one window per round', [item('r', 'a', DAY), item('r', 'b', 0), item('r', 'c', DAY)], [[1], [0, 2]]],
    ['no items, no rounds', [], []],
  ])('%s', (_what, items, rounds) => {
    expect(insertRounds(items)).toEqual(rounds);
  });
});

describe('pendingMigrations (pure)', () => {
  it('all of them on an empty database, none when up to date, a refusal past the last one', () => {
    expect(pendingMigrations(0)).toEqual({ ok: true, todo: MIGRATIONS });
    expect(pendingMigrations(LATEST_SCHEMA)).toEqual({ ok: true, todo: [] });
    expect(pendingMigrations(LATEST_SCHEMA + 1)).toEqual({ ok: false, reason: expect.stringMatching(/newer relay .*upgrade the relay/) });
  });
});

// The one line a run without PostgreSQL shows (Jest prints nothing from a file whose tests are all
// skipped, such as chaos.test.ts): it names every test that needs the server.
if (!postgresAvailable()) {
  console.log(skipLine('the PostgreSQL tests (test/relay/outbox/postgres-store.test.ts, test/relay/outbox/chaos.test.ts, test/support/postgres.test.ts)'));
}

const withPostgres = postgresAvailable() ? describe : describe.skip;

withPostgres('PostgreSQL store', () => {
  let server: PostgresServer;
  let admin: pg.Pool;
  const sql = async (text: string) => (await admin.query(text)).rows as Record<string, unknown>[];

  beforeAll(async () => {
    server = await startPostgres();
    admin = new pg.Pool({ connectionString: server.url, max: 2 });
    admin.on('error', () => undefined);
  }, 60_000);

  afterAll(async () => {
    await admin?.end();
    await server?.close();
  }, 60_000);

  const dropAll = () =>
    sql(
      `DROP TABLE IF EXISTS relay_events, relay_bodies, relay_dedup, relay_counters, relay_visual_watches, relay_attempts, relay_visual_checks, relay_requests, relay_migrations`,
    );

  /** Empty every relay table (the schema stays). */
  async function truncate(): Promise<void> {
    const [exists] = await sql(`SELECT to_regclass('relay_events') IS NOT NULL AS e`);
    if (exists?.e)
      await sql(
        `TRUNCATE relay_events, relay_bodies, relay_dedup, relay_visual_watches, relay_attempts, relay_visual_checks, relay_requests; UPDATE relay_counters SET n = 0`,
      );
  }

  describeStoreContract('PostgreSQL', () => ({
    reset: truncate,
    open: () => openPostgresStore(server.url, { maxConnections: 4 }),
  }));

  describeConsoleContract('PostgreSQL', () => ({
    reset: truncate,
    open: () => openPostgresStore(server.url, { maxConnections: 4 }),
    rows: async (table) => Number((await sql(`SELECT count(*)::int AS n FROM relay_${table}`))[0]!.n),
  }));

  describe('group commit', () => {
    it('inserts that arrive together are stored by one transaction', async () => {
      await truncate();
      const store = await openPostgresStore(server.url, { maxConnections: 4 });
      try {
        const results = await Promise.all(Array.from({ length: 200 }, (_, i) => store.insert(contractEvent(i), DAY)));
        expect(results.every((r) => r.kind === 'stored')).toBe(true);
        // xmin: the transaction that wrote each row.
        expect(await sql('SELECT count(DISTINCT xmin::text)::int AS n, count(*)::int AS rows FROM relay_events')).toEqual([{ n: 1, rows: 200 }]);
      } finally {
        await store.close();
      }
    });
  });

  describe('migrations', () => {
    it('three relays starting at once on an empty database: one schema, each migration applied once', async () => {
      await dropAll();
      const stores = await Promise.all([1, 2, 3].map(() => openPostgresStore(server.url, { maxConnections: 2 })));
      try {
        expect(await sql('SELECT version FROM relay_migrations ORDER BY version')).toEqual(MIGRATIONS.map((m) => ({ version: m.version })));
        const ids = await Promise.all(stores.map((s, i) => s.insert(contractEvent(i), DAY)));
        expect(ids.every((r) => r.kind === 'stored')).toBe(true);
        expect(await stores[0]!.stats()).toEqual({ pending: 3, delivered: 0, dead: 0 });
      } finally {
        for (const s of stores) await s.close();
      }
    });

    it('refuses a database written by a newer relay, and writes nothing to it', async () => {
      await (await openPostgresStore(server.url)).close();
      await sql(`INSERT INTO relay_migrations (version, description) VALUES (${LATEST_SCHEMA + 1}, 'from the future')`);
      try {
        await expect(openPostgresStore(server.url)).rejects.toThrow(/newer relay \(schema \d+, this relay knows up to \d+\): upgrade the relay/);
        expect(await sql('SELECT count(*)::int AS n FROM relay_migrations')).toEqual([{ n: LATEST_SCHEMA + 1 }]);
      } finally {
        await sql(`DELETE FROM relay_migrations WHERE version > ${LATEST_SCHEMA}`);
      }
    });
  });

  describe('durability and failures', () => {
    it('commits durably even where the server has synchronous_commit off', async () => {
      await sql(`ALTER DATABASE postgres SET synchronous_commit = off`);
      try {
        const store = await openPostgresStore(server.url, { maxConnections: 1 });
        try {
          await store.insert(contractEvent(1), DAY);
          const { rows } = await (store as unknown as { pool: pg.Pool }).pool.query<{ s: string }>('SELECT current_setting($1) AS s', ['synchronous_commit']);
          expect(rows[0]?.s).toBe('on');
        } finally {
          await store.close();
        }
      } finally {
        await sql(`ALTER DATABASE postgres RESET synchronous_commit`);
      }
    });

    it('not ready on a read-only database, with the reason', async () => {
      await sql(`ALTER DATABASE postgres SET default_transaction_read_only = on`);
      try {
        const store = await openPostgresStore(server.url, { maxConnections: 1 }).catch((e: unknown) => e as Error);
        // Migrations write, so a read-only database that is not yet migrated refuses the start itself.
        if (store instanceof Error) throw store;
        try {
          expect(await store.readiness()).toEqual({ ready: false, code: 'read_only', reason: expect.stringMatching(/read-only/) });
          await expect(store.insert(contractEvent(2), DAY)).rejects.toThrow(/read-only/);
        } finally {
          await store.close();
        }
      } finally {
        await sql(`ALTER DATABASE postgres RESET default_transaction_read_only`);
      }
    });

    it('a connection that dies inside a claim fails that claim, and nothing else (no uncaught error)', async () => {
      const errors: Error[] = [];
      const store = await openPostgresStore(server.url, { maxConnections: 2, onError: (e) => errors.push(e) });
      const holder = await admin.connect();
      try {
        await truncate();
        await store.insert(contractEvent(20), DAY);
        // Hold the claim lock, so the store's claim waits inside its transaction on a checked-out connection.
        await holder.query('BEGIN');
        await holder.query('SELECT pg_advisory_xact_lock($1, $2)', [0x5a0ce, 2]);
        const claim = store.claim('a', Date.now(), 10_000, 10);
        let waiting: Record<string, unknown>[] = [];
        for (let i = 0; i < 200 && waiting.length === 0; i++) {
          waiting = await sql(`SELECT pid FROM pg_stat_activity WHERE application_name = 'sauce-relay' AND wait_event_type = 'Lock'`);
          if (waiting.length === 0) await new Promise((r) => setTimeout(r, 25));
        }
        expect(waiting).toHaveLength(1);
        await sql(`SELECT pg_terminate_backend(${Number(waiting[0]!.pid)})`);
        await expect(claim).rejects.toThrow(/terminat/);
        await holder.query('ROLLBACK');
        // The store goes on with a new connection.
        expect((await store.claim('a', Date.now(), 10_000, 10)).map((e) => e.body)).toEqual([contractEvent(20).body]);
      } finally {
        holder.release();
        await store.close();
      }
    });

    it('the server restarts: inserts fail meanwhile (never resolve as stored), the pool reconnects, nothing stored is lost', async () => {
      if (process.env.RELAY_TEST_DATABASE_URL) return;
      const errors: Error[] = [];
      const store = await openPostgresStore(server.url, { maxConnections: 3, connectTimeoutMs: 1_000, onError: (e) => errors.push(e) });
      try {
        const before = await store.insert(contractEvent(10), DAY);
        await admin.end();
        await server.stop();
        await expect(store.insert(contractEvent(11), DAY)).rejects.toThrow();
        expect(await store.readiness()).toEqual({ ready: false, code: 'unreachable', reason: expect.stringMatching(/unreachable/) });
        await server.start();
        admin = new pg.Pool({ connectionString: server.url, max: 2 });
        admin.on('error', () => undefined);
        // The pool's idle connections died with the server; the next queries open new ones.
        let after: Awaited<ReturnType<typeof store.insert>> | null = null;
        for (let i = 0; i < 3 && after === null; i++) after = await store.insert(contractEvent(11), DAY).catch(() => null);
        expect(after?.kind).toBe('stored');
        expect(await store.readiness()).toEqual({ ready: true });
        expect((await store.list('pending', 100)).map((e) => e.id)).toEqual(expect.arrayContaining([before.id, after!.id]));
      } finally {
        await store.close();
      }
    }, 60_000);
  });
});
