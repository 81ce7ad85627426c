// What the delivery console's data costs the store (README, "The delivery console", "The cost"):
//   - SQLite ingest: events stored through the store itself (group commit, synchronous=FULL,
//     10 inserts in flight) with the console's index on the receipt time and without it (dropped
//     after open), in interleaved rounds: events a second and CPU per event, medians.
//   - PostgreSQL size: delivered events of the fixtures' size, marked as the dispatcher marks them
//     (one attempt row each): the outbox's tables, the console's index, the attempt rows. Skipped
//     without PostgreSQL (Debian's postgresql package, or RELAY_TEST_DATABASE_URL=postgres://…).
//
//   node scripts/console-cost.js [--events N] [--rounds R] [--pg-events M]   (defaults 50000, 5, 50000)
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const root = new URL('..', import.meta.url).pathname;
const { values } = parseArgs({
  options: { events: { type: 'string', default: '50000' }, rounds: { type: 'string', default: '5' }, 'pg-events': { type: 'string', default: '50000' } },
});
const events = Number(values.events);
const rounds = Number(values.rounds);
const pgEvents = Number(values['pg-events']);

for (const [cmd, args] of [
  ['npm', ['run', 'build']],
  [process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.bench.json']],
]) {
  const built = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (built.status !== 0) process.exit(built.status ?? 1);
}

const { default: Database } = await import('better-sqlite3');
const { openSqliteStore } = await import(join(root, 'lib/relay/outbox/sqlite-store.js'));
const fixture = JSON.parse(readFileSync(join(root, 'test/fixtures/sauce/job-vdc-passed.json'), 'utf8'));
let seq = 0;
function event() {
  seq += 1;
  const body = JSON.stringify({ ...fixture, id: `job-${seq}-${process.pid}`, modification_time: new Date().toISOString() }, null, 1);
  return {
    route: 'default',
    repo: 'acme/shop',
    eventType: 'saucelabs',
    body,
    bodyHash: createHash('sha256').update(body).digest('hex'),
    receivedAt: Date.now(),
  };
}
const median = (list) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)];

async function sqliteRound(withIndex) {
  const dir = mkdtempSync(join(tmpdir(), 'relay-console-cost-'));
  const store = openSqliteStore(dir);
  if (!withIndex) {
    const db = new Database(join(dir, 'relay.db'));
    db.exec('DROP INDEX events_received');
    db.close();
  }
  const cpu = process.cpuUsage();
  const started = process.hrtime.bigint();
  let next = 0;
  await Promise.all(
    Array.from({ length: 10 }, async () => {
      while (next < events) {
        next += 1;
        await store.insert(event(), 86_400_000);
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const used = process.cpuUsage(cpu);
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  return { perSecond: events / seconds, cpuUs: (used.user + used.system) / events };
}

const runs = { with: [], without: [] };
for (let r = 0; r < rounds; r++) {
  runs.without.push(await sqliteRound(false));
  runs.with.push(await sqliteRound(true));
}
const line = (name, list) =>
  `| ${name} | ${Math.round(median(list.map((x) => x.perSecond)))} | ${median(list.map((x) => x.cpuUs)).toFixed(1)} | ${list.map((x) => Math.round(x.perSecond)).join(', ')} |`;
console.log(`\nSQLite store, ${events} events stored, 10 in flight, ${rounds} interleaved rounds (medians)\n`);
console.log('| schema | events/s | CPU µs per event | every round (events/s) |\n|---|---:|---:|---|');
console.log(line('without the console index', runs.without));
console.log(line('with it (as shipped)', runs.with));

const { postgresAvailable, startPostgres } = await import(join(root, '.bench-build/test/support/postgres.js'));
if (!postgresAvailable()) {
  console.log('\nPostgreSQL size: skipped, no PostgreSQL here');
  process.exit(0);
}
const { default: pg } = await import('pg');
const { openPostgresStore } = await import(join(root, 'lib/relay/outbox/postgres-store.js'));
const server = await startPostgres();
try {
  const store = await openPostgresStore(server.url);
  let bytes = 0;
  for (let i = 0; i < pgEvents; i += 500) {
    const batch = Array.from({ length: Math.min(500, pgEvents - i) }, event);
    bytes += batch.reduce((a, e) => a + Buffer.byteLength(e.body), 0);
    await Promise.all(batch.map((e) => store.insert(e, 86_400_000)));
    const claimed = await store.claim('cost', Date.now(), 60_000, 500);
    // As the dispatcher marks them: dispatches of 70 events, each with its attempt.
    for (let k = 0; k < claimed.length; k += 70) {
      const ids = claimed.slice(k, k + 70).map((e) => e.id);
      const attempt = { at: Date.now(), dispatchId: `d-${i}-${k}`, events: ids.length, status: 204, message: 'accepted', result: 'sent', code: null };
      await store.markDelivered('cost', ids, Date.now(), attempt);
    }
  }
  await store.close();
  const pool = new pg.Pool({ connectionString: server.url, max: 1 });
  const size = async (relation) => Number((await pool.query(`SELECT pg_total_relation_size($1)::text AS b`, [relation])).rows[0].b);
  const outbox = (await size('relay_events')) + (await size('relay_bodies')) + (await size('relay_dedup'));
  const index = await size('relay_events_received');
  const attempts = await size('relay_attempts');
  await pool.end();
  const gib = (b) => `${(((b / pgEvents) * 1e6) / 2 ** 30).toFixed(2)} GiB`;
  console.log(`\nPostgreSQL, ${pgEvents} delivered events of ${Math.round(bytes / pgEvents)} bytes, per million events\n`);
  console.log('| what | size |\n|---|---:|');
  console.log(`| the outbox without the console's index (events, bodies, dedup keys, their indexes) | ${gib(outbox - index)} |`);
  console.log(`| the console's index on the receipt time | ${gib(index)} |`);
  console.log(`| the dispatch attempts (one row per event) | ${gib(attempts)} |`);
  console.log(`| total | ${gib(outbox + attempts)} |`);
} finally {
  await server.close();
}
