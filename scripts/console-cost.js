// What the delivery console's data costs the store (README, "The delivery console", "The cost"):
//   - SQLite ingest: events stored through the store itself (group commit, synchronous=FULL,
//     10 inserts in flight) with the console's index on the receipt time and without it (dropped
//     after open), in interleaved rounds: events a second and CPU per event, medians.
//   - The request path: the handler's own time per unsigned request (refused, 401), with the
//     recorder of refused requests behind its hook and without, in process (logging off).
//   - A flood: relay processes (`serve`, as users run it) take signed events from 5 senders while 5
//     others send unsigned ones as fast as they are answered, with the console (its recorder of
//     refused requests) on and off, interleaved: signed events stored a second, medians.
//   - PostgreSQL size: delivered events of the fixtures' size, marked as the dispatcher marks them
//     (one attempt row each): the outbox's tables, the console's index, the attempt rows. Skipped
//     without PostgreSQL (Debian's postgresql package, or RELAY_TEST_DATABASE_URL=postgres://…).
//
//   node scripts/console-cost.js [--events N] [--rounds R] [--flood-seconds S] [--pg-events M]
//   (defaults 50000, 5, 8, 50000)
import { spawn, spawnSync } from 'node:child_process';
import { createHash, createHmac } from 'node:crypto';
import http from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const root = new URL('..', import.meta.url).pathname;
const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '50000' },
    rounds: { type: 'string', default: '5' },
    'flood-seconds': { type: 'string', default: '8' },
    'pg-events': { type: 'string', default: '50000' },
  },
});
const events = Number(values.events);
const rounds = Number(values.rounds);
const pgEvents = Number(values['pg-events']);
const floodSeconds = Number(values['flood-seconds']);

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

// ---- the request path: the handler's time per refused request, recorder on and off ----

{
  const { RequestRecorder } = await import(join(root, 'lib/relay/console/requests.js'));
  const { createHandler } = await import(join(root, 'lib/relay/http/handler.js'));
  const { createLogger } = await import(join(root, 'lib/relay/logger.js'));
  const { createMetrics } = await import(join(root, 'lib/relay/metrics.js'));
  const { loadConfig } = await import(join(root, 'lib/relay/config/index.js'));
  const logger = createLogger({ level: 'silent' });
  const metrics = createMetrics({ defaultMetrics: false });
  const loaded = loadConfig({ SAUCE_WEBHOOK_SECRET: 'console-cost-secret', RELAY_DATA_DIR: tmpdir() });
  if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
  // Nothing is ever written: the store is never asked (the write timer never fires here).
  const recorder = new RequestRecorder({
    store: { recordRequests: async () => undefined },
    logger,
    onDropped: (n) => metrics.consoleRequestsDropped.inc(n),
    timers: { setTimeout: () => null, clearTimeout: () => undefined },
  });
  const options = { routes: loaded.config.routes, bodyLimitBytes: 1 << 20, dedupWindowMs: 1000, staleAfterMs: 1e12, logger, metrics };
  const store = { insert: async () => ({ kind: 'stored', id: 'never' }) };
  const off = createHandler({ ...options, store });
  const on = createHandler({ ...options, store, onRefused: (r) => recorder.record(r) });
  const body = Buffer.from(JSON.stringify(fixture));
  const request = { method: 'POST', path: '/webhook', headers: { 'saucelabs-sign': 'f'.repeat(64) }, body, remoteAddress: '127.0.0.1' };
  const time = async (handler, n) => {
    const started = process.hrtime.bigint();
    for (let i = 0; i < n; i++) await handler.handle(request);
    return Number(process.hrtime.bigint() - started) / n / 1000;
  };
  await time(off, 20_000);
  await time(on, 20_000);
  const us = { off: [], on: [] };
  for (let r = 0; r < 5; r++) {
    us.off.push(await time(off, 50_000));
    us.on.push(await time(on, 50_000));
  }
  console.log('\nThe request path: the handler (in process, logging off) per unsigned request, 5 interleaved rounds of 50,000 (medians)\n');
  console.log('| recorder | µs per refused request |\n|---|---:|');
  console.log(`| off | ${median(us.off).toFixed(2)} |`);
  console.log(`| on (recording, or counting once this second's 100 are taken) | ${median(us.on).toFixed(2)} |`);
}

// ---- a flood of unsigned requests, the console on and off ----

const SECRET = 'console-cost-secret-0123456789';
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
const failed = JSON.parse(readFileSync(join(root, 'test/fixtures/sauce/job-vdc-failed-boolean.json'), 'utf8'));

function startRelay(consoleOn) {
  const env = {
    PATH: process.env.PATH ?? '',
    PORT: '0',
    RELAY_HOST: '127.0.0.1',
    RELAY_DATA_DIR: mkdtempSync(join(tmpdir(), 'relay-console-flood-')),
    SAUCE_WEBHOOK_SECRET: SECRET,
    LOG_LEVEL: 'info',
    ...(consoleOn ? { RELAY_ADMIN_TOKEN: 'console-cost-admin-token-0123456789abcdef' } : {}),
  };
  const child = spawn(process.execPath, ['--max-old-space-size=96', join(root, 'lib/relay/cli.js'), 'serve'], { env, stdio: ['ignore', 'pipe', 'ignore'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
      for (const line of out.split('\n')) {
        if (!line.includes('"relay listening"')) continue;
        child.stdout.resume();
        child.stdout.removeAllListeners('data');
        child.stdout.on('data', () => undefined);
        resolve({ child, url: JSON.parse(line).url, dataDir: env.RELAY_DATA_DIR });
        return;
      }
    });
    child.once('exit', (code) => reject(new Error(`relay exited ${code}`)));
  });
}

function post(url, body, signature) {
  return new Promise((resolve) => {
    const headers = { 'content-type': 'application/json', 'content-length': body.length };
    if (signature) headers['saucelabs-sign'] = signature;
    const req = http.request(`${url}/webhook`, { method: 'POST', headers, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

async function floodRound(consoleOn) {
  const relay = await startRelay(consoleOn);
  let stored = 0;
  let unsigned = 0;
  const until = Date.now() + floodSeconds * 1000;
  const signedSender = async () => {
    while (Date.now() < until) {
      const body = Buffer.from(JSON.stringify({ ...failed, id: `cost-${process.pid}-${seq++}`, modification_time: new Date().toISOString() }));
      if ((await post(relay.url, body, createHmac('sha256', SECRET).update(body).digest('hex'))) === 202) stored += 1;
    }
  };
  const garbage = Buffer.from(JSON.stringify({ ...failed, id: 'unsigned' }));
  const flooder = async () => {
    while (Date.now() < until) {
      await post(relay.url, garbage, 'f'.repeat(64));
      unsigned += 1;
    }
  };
  await Promise.all([...Array.from({ length: 5 }, signedSender), ...Array.from({ length: 5 }, flooder)]);
  relay.child.kill('SIGKILL');
  rmSync(relay.dataDir, { recursive: true, force: true });
  return { stored: stored / floodSeconds, unsigned: unsigned / floodSeconds };
}

const flood = { off: [], on: [] };
for (let r = 0; r < 3; r++) {
  flood.off.push(await floodRound(false));
  flood.on.push(await floodRound(true));
}
console.log(`\nA flood: 5 senders of signed events, 5 of unsigned ones, ${floodSeconds} s, 3 interleaved rounds (medians)\n`);
console.log('| console | signed events stored/s | unsigned answered/s | every round (stored/s) |\n|---|---:|---:|---|');
for (const [name, list] of [
  ['off', flood.off],
  ['on (recording refusals)', flood.on],
]) {
  console.log(
    `| ${name} | ${Math.round(median(list.map((x) => x.stored)))} | ${Math.round(median(list.map((x) => x.unsigned)))} | ${list.map((x) => Math.round(x.stored)).join(', ')} |`,
  );
}

// ---- PostgreSQL size ----

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
