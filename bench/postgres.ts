/**
 * The PostgreSQL section of `npm run bench` (bench/run.ts starts it): the shared store against
 * row 2 and the SQLite relay, in the same run and on the same request stream.
 *
 * - Ingest: row 2 (HMAC + JSON.parse), the relay on SQLite, the relay on PostgreSQL (one instance),
 *   three instances on the same database (the connections split over them).
 * - Every relay row also counts what it stored (its /metrics), so a row that answered without
 *   storing measures nothing and says so.
 * - Dispatch economy: one build of 200 job events of the fixture's size over three instances.
 * - The cost of polling: transactions per second the database sees from three idle instances.
 * - Size on disk per million events (events, bodies, dedup keys, indexes).
 *
 * The database is a throwaway server (test/support/postgres.ts) with its default settings: fsync
 * and synchronous_commit on, on this machine's disk. Without PostgreSQL the section prints one line
 * and is skipped.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer, request as httpRequest, Agent, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import pg from 'pg';
import { createHash } from 'node:crypto';
import { openPostgresStore } from '../src/relay/outbox/postgres-store.js';
import { BENCH_SECRET, jobBody, sign } from './body.js';
import { postgresAvailable, skipLine, startPostgres, type PostgresServer } from '../test/support/postgres.js';

const ROOT = resolve(fileURLToPath(import.meta.url), '../../..');
const BUILD = join(ROOT, '.bench-build');
const CONNECTIONS = 10;
const runTag = `${Date.now().toString(16)}p`;
let seq = 0;

interface Proc {
  readonly url: string;
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

/** Start a server process; `ready` finds its port in what it prints. */
function start(args: string[], env: Record<string, string>, ready: RegExp): Promise<Proc> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`no ready line from ${args.join(' ')}:\n${out.slice(-2000)}`));
    }, 30_000);
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const m = ready.exec(out);
      if (!m) return;
      clearTimeout(timer);
      child.stdout?.removeListener('data', onData);
      child.stderr?.removeListener('data', onData);
      child.stdout?.resume();
      child.stderr?.resume();
      done({
        url: `http://127.0.0.1:${m[1]}`,
        child,
        stop: () =>
          new Promise((stopped) => {
            if (child.exitCode !== null) return stopped();
            child.once('exit', () => stopped());
            child.kill('SIGTERM');
            setTimeout(() => child.kill('SIGKILL'), 5_000).unref();
          }),
      });
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      fail(new Error(`${args.join(' ')} exited ${code}:\n${out.slice(-2000)}`));
    });
  });
}

const relayArgs = ['--max-old-space-size=96', join(ROOT, 'lib/relay/cli.js'), 'serve'];
const relayReady = /"url":"http:\/\/127\.0\.0\.1:(\d+)"/;

const dataDirs: string[] = [];

function relayEnv(extra: Record<string, string>): Record<string, string> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-pg-relay-'));
  dataDirs.push(dataDir);
  return {
    PORT: '0',
    RELAY_HOST: '127.0.0.1',
    SAUCE_WEBHOOK_SECRET: BENCH_SECRET,
    GITHUB_REPOSITORY: 'acme/shop',
    // The bench bodies carry fixed 2026 dates: accept them (not "202 filtered, stale") so every answer is a store.
    RELAY_STALE_AFTER: '3650d',
    RELAY_DEDUP_WINDOW: '3651d',
    RELAY_DATA_DIR: dataDir,
    ...extra,
  };
}

interface Load {
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly codes: Record<string, number>;
  readonly errors: number;
}

/** autocannon against each URL at once (the connections split over them); figures summed, latencies of the worst. */
async function load(urls: string[], seconds: number): Promise<Load> {
  const codes: Record<string, number> = {};
  const results = await Promise.all(
    urls.map((url, i) =>
      autocannon({
        url,
        connections: Math.floor(CONNECTIONS / urls.length) + (i < CONNECTIONS % urls.length ? 1 : 0),
        duration: seconds,
        requests: [
          {
            method: 'POST',
            setupRequest: (req: autocannon.Request) => {
              const body = jobBody(seq++, runTag);
              return { ...req, method: 'POST', body, headers: { 'content-type': 'application/json', 'saucelabs-sign': sign(body) } };
            },
            onResponse: (status: number) => {
              codes[status] = (codes[status] ?? 0) + 1;
            },
          },
        ],
      }),
    ),
  );
  return {
    rps: results.reduce((a, r) => a + r.requests.average, 0),
    p50: Math.max(...results.map((r) => r.latency.p50)),
    p99: Math.max(...results.map((r) => r.latency.p99)),
    codes,
    errors: results.reduce((a, r) => a + r.errors + r.timeouts, 0),
  };
}

/** CPU time (user + system) a process has used, in ms (/proc; clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return 0;
  }
}

/** The server's processes: the postmaster listening on `port` and its children (one backend per connection). */
function postgresPids(port: string): number[] {
  const all = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  const cmd = (pid: string) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      return [];
    }
  };
  const master = all.find((pid) => {
    const args = cmd(pid);
    return args.some((a) => a.endsWith('postgres')) && args.join(' ').includes(`-p ${port} `);
  });
  if (!master) return [];
  const children = all.filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1] === master;
    } catch {
      return false;
    }
  });
  return [master, ...children].map(Number);
}

/** Events a relay stored, from its /metrics. */
async function storedBy(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return [...text.matchAll(/^sauce_relay_stored_total\{[^}]*\} (\d+)/gm)].reduce((a, m) => a + Number(m[1]), 0);
}

async function freshDatabase(admin: pg.Pool, server: PostgresServer, name: string): Promise<string> {
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(server.url);
  url.pathname = `/${name}`;
  return url.href;
}

interface Row {
  readonly name: string;
  readonly r: Load;
  readonly stored: number | null;
  /** CPU ms per stored event: the relay processes, and the database server. */
  readonly relayCpu: number | null;
  readonly dbCpu: number | null;
  /** Database commits per stored event (inserts, claims, marks, polls): how well inserts were batched. */
  readonly commits: number | null;
}

function answers(r: Load): string {
  return (
    Object.entries(r.codes)
      .map(([c, n]) => `${c}×${n}`)
      .join(' ') + (r.errors ? ` errors×${r.errors}` : '')
  );
}

export async function postgresBench(options: { smoke: boolean }): Promise<string[]> {
  if (!postgresAvailable()) return [skipLine('bench/postgres.ts (the PostgreSQL section)')];
  const seconds = options.smoke ? 1 : 10;
  const server = await startPostgres();
  const admin = new pg.Pool({ connectionString: server.url, max: 1 });
  admin.on('error', () => undefined);
  const lines: string[] = [];
  try {
    const rows: Row[] = [];
    /** Warm up 1 s, then measure `seconds`, against processes started by `open`. */
    /** Transactions committed in `database` so far (pg_stat_database: reported by each session about once a second). */
    const commits = async (database: string) =>
      Number((await admin.query<{ n: string }>('SELECT xact_commit::text AS n FROM pg_stat_database WHERE datname = $1', [database])).rows[0]?.n ?? 0);
    const measure = async (name: string, open: () => Promise<Proc[]>, relay: boolean, database?: string) => {
      const procs = await open();
      try {
        const urls = procs.map((p) => (relay ? `${p.url}/webhook` : `${p.url}/`));
        await load(urls, 1);
        const before = relay ? (await Promise.all(procs.map((p) => storedBy(p.url)))).reduce((a, b) => a + b, 0) : 0;
        // Backends of connections opened during the run are missed; the pools open theirs at start and during warm-up.
        const dbPids = postgresPids(new URL(server.url).port);
        const cpu = () => ({ relay: procs.reduce((a, p) => a + cpuMs(p.child.pid ?? 0), 0), db: dbPids.reduce((a, pid) => a + cpuMs(pid), 0) });
        const commits0 = database ? await commits(database) : 0;
        const cpu0 = cpu();
        const r = await load(urls, seconds);
        const cpu1 = cpu();
        const stored = relay ? (await Promise.all(procs.map((p) => storedBy(p.url)))).reduce((a, b) => a + b, 0) - before : null;
        await new Promise((done) => setTimeout(done, database ? 1_500 : 0));
        const commits1 = database ? await commits(database) : 0;
        const per = (n: number) => (stored ? n / stored : null);
        rows.push({
          name,
          r,
          stored,
          relayCpu: per(cpu1.relay - cpu0.relay),
          dbCpu: database ? per(cpu1.db - cpu0.db) : null,
          commits: database ? per(commits1 - commits0) : null,
        });
      } finally {
        await Promise.all(procs.map((p) => p.stop()));
      }
    };
    await measure(
      '2. node:http + HMAC verify + JSON.parse (baseline)',
      async () => [await start([join(BUILD, 'bench/servers/hmac.js')], {}, /listening (\d+)/)],
      false,
    );
    await measure('relay on SQLite (1 process)', async () => [await start(relayArgs, relayEnv({}), relayReady)], true);
    const one = await freshDatabase(admin, server, 'bench_one');
    await measure(
      'relay on PostgreSQL, 1 instance',
      async () => [await start(relayArgs, relayEnv({ RELAY_DATABASE_URL: one }), relayReady)],
      true,
      'bench_one',
    );
    const three = await freshDatabase(admin, server, 'bench_three');
    await measure(
      'relay on PostgreSQL, 3 instances (one database)',
      () => Promise.all([1, 2, 3].map(() => start(relayArgs, relayEnv({ RELAY_DATABASE_URL: three }), relayReady))),
      true,
      'bench_three',
    );
    const base = rows[0]?.r.rps ?? Number.NaN;
    lines.push(
      `${CONNECTIONS} connections in all, ${seconds} s per row after 1 s of warm-up; bodies ${Buffer.byteLength(jobBody(0, runTag))} bytes, distinct and signed; dry-run relays (the dispatcher claims and marks, sends nothing)`,
      '',
      '| row | req/s | ×row 2 | p50 ms | p99 ms | answers | stored | relay CPU ms/event | database CPU ms/event | commits/event |',
      '|---|---:|---:|---:|---:|---|---:|---:|---:|---:|',
    );
    const ms = (v: number | null) => (v === null ? '–' : v.toFixed(2));
    for (const { name, r, stored, relayCpu, dbCpu, commits: perEvent } of rows) {
      lines.push(
        `| ${name} | ${r.rps.toFixed(0)} | ${(r.rps / base).toFixed(2)} | ${r.p50} | ${r.p99} | ${answers(r)} | ${stored ?? '–'} | ${ms(relayCpu)} | ${ms(dbCpu)} | ${ms(perEvent)} |`,
      );
      const accepted = (r.codes[202] ?? 0) + (r.codes[200] ?? 0);
      if (stored !== null && stored < (r.codes[202] ?? 0)) lines.push(`| ⚠ ${name}: ${r.codes[202]} answered 202 but ${stored} stored |`);
      if (accepted === 0) lines.push(`| ⚠ ${name}: no 202: this row measures nothing |`);
    }

    // Size on disk, from the three-instance database (every event it took, delivered in dry-run).
    const size = await new pg.Pool({ connectionString: three, max: 1 });
    try {
      const [r] = (
        await size.query<{ events: number; bytes: number }>(
          `SELECT (SELECT count(*) FROM relay_events)::float8 AS events,
                  (pg_total_relation_size('relay_events') + pg_total_relation_size('relay_bodies') + pg_total_relation_size('relay_dedup'))::float8 AS bytes`,
        )
      ).rows;
      if (r && r.events > 0) {
        lines.push(
          '',
          `size: ${r.events} events (rows, bodies of ${Buffer.byteLength(jobBody(0, runTag))} bytes, dedup keys, indexes) take ${(r.bytes / 2 ** 20).toFixed(1)} MiB: ` +
            `${(((r.bytes / r.events) * 1e6) / 2 ** 30).toFixed(2)} GiB per million events`,
        );
      }
    } finally {
      await size.end();
    }

    lines.push(await fixtureSize(admin, server, options.smoke ? 500 : 20_000));
    lines.push('', ...(await economy(admin, server, options.smoke)));
  } finally {
    await admin.end();
    await server.close();
    for (const d of dataDirs.splice(0)) rmSync(d, { recursive: true, force: true });
  }
  return lines;
}

/** Size per million events of the fixture's size: `n` stored through the store itself, then marked delivered. */
async function fixtureSize(admin: pg.Pool, server: PostgresServer, n: number): Promise<string> {
  const url = await freshDatabase(admin, server, 'bench_size');
  const store = await openPostgresStore(url);
  let bytes = 0;
  try {
    for (let i = 0; i < n; i += 500) {
      const bodies = Array.from({ length: Math.min(500, n - i) }, () => fixtureJobBody(seq++));
      bytes += bodies.reduce((a, b) => a + Buffer.byteLength(b), 0);
      await Promise.all(
        bodies.map((body) =>
          store.insert(
            {
              route: 'default',
              repo: 'acme/shop',
              eventType: 'saucelabs',
              body,
              bodyHash: createHash('sha256').update(body).digest('hex'),
              receivedAt: Date.now(),
            },
            86_400_000,
          ),
        ),
      );
      const claimed = await store.claim('bench', Date.now(), 60_000, 500);
      await store.markDelivered(
        'bench',
        claimed.map((e) => e.id),
        Date.now(),
      );
    }
  } finally {
    await store.close();
  }
  const size = new pg.Pool({ connectionString: url, max: 1 });
  try {
    const total = Number(
      (
        await size.query<{ b: string }>(
          `SELECT (pg_total_relation_size('relay_events') + pg_total_relation_size('relay_bodies') + pg_total_relation_size('relay_dedup'))::text AS b`,
        )
      ).rows[0]?.b,
    );
    return `size: ${n} delivered events of the fixture's size (${(bytes / n).toFixed(0)} bytes) take ${(total / 2 ** 20).toFixed(1)} MiB: ${(((total / n) * 1e6) / 2 ** 30).toFixed(2)} GiB per million events`;
  } finally {
    await size.end();
  }
}

/** A fixture-size job event (~0.9 KB) of one build, distinct per seq. */
function fixtureJobBody(n: number): string {
  const base = JSON.parse(readFileSync(join(ROOT, 'test/fixtures/sauce/job-vdc-passed.json'), 'utf8')) as Record<string, unknown>;
  return JSON.stringify({ ...base, id: `${runTag}${n.toString(16).padStart(16, '0')}`.slice(-32) });
}

/** 200 job events of one build over three instances, round-robin, to a loopback dispatch endpoint; then idle polling. */
async function economy(admin: pg.Pool, server: PostgresServer, smoke: boolean): Promise<string[]> {
  let dispatches = 0;
  let delivered = 0;
  const stub = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method === 'POST' && /\/dispatches$/.test(req.url ?? '')) {
        dispatches += 1;
        delivered += (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { client_payload: { events: unknown[] } }).client_payload.events.length;
        res.writeHead(204);
        res.end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((done) => stub.listen(0, '127.0.0.1', done));
  const api = `http://127.0.0.1:${(stub.address() as { port: number }).port}`;
  const url = await freshDatabase(admin, server, 'bench_economy');
  const env = relayEnv({ RELAY_DATABASE_URL: url, GITHUB_TOKEN: 'bench-token', GITHUB_API_URL: api });
  const procs = await Promise.all([1, 2, 3].map(() => start(relayArgs, env, relayReady)));
  const agent = new Agent({ keepAlive: true, maxSockets: 4 });
  const events = 200;
  let bytes = 0;
  let idleTps = Number.NaN;
  try {
    for (let i = 0; i < events; i++) {
      const body = fixtureJobBody(seq++);
      bytes += Buffer.byteLength(body);
      const target = new URL(procs[i % procs.length]!.url);
      await new Promise<void>((done, fail) => {
        const req = httpRequest(
          {
            host: target.hostname,
            port: target.port,
            path: '/webhook',
            method: 'POST',
            agent,
            headers: { 'content-type': 'application/json', 'saucelabs-sign': sign(body) },
          },
          (res) => {
            res.resume();
            res.on('end', () => done());
          },
        );
        req.on('error', fail);
        req.end(body);
      });
    }
    const deadline = Date.now() + 30_000;
    while (delivered < events && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    // Idle: what three instances' polling costs the database.
    const commits = async () =>
      Number((await admin.query<{ n: string }>(`SELECT xact_commit::text AS n FROM pg_stat_database WHERE datname = 'bench_economy'`)).rows[0]?.n ?? 0);
    await new Promise((r) => setTimeout(r, 1_500));
    const idleSeconds = smoke ? 2 : 10;
    const before = await commits();
    await new Promise((r) => setTimeout(r, idleSeconds * 1_000));
    // pg_stat_database is updated when sessions report, about every second: a long window keeps the error small.
    idleTps = ((await commits()) - before) / idleSeconds;
  } finally {
    agent.destroy();
    await Promise.all(procs.map((p) => p.stop()));
    stub.close();
  }
  return [
    '| 3 instances, one database | value | note |',
    '|---|---:|---|',
    `| dispatches for one build of ${events} job events (${(bytes / events).toFixed(0)} bytes each), round-robin | ${dispatches} | floor (bytes ÷ 64 KB) ${Math.ceil(bytes / 65_535)}; ${delivered} events delivered; target ≤ 3 |`,
    `| database transactions per second, three idle instances | ${idleTps.toFixed(1)} | each polls once a second: a claim and a stats read |`,
  ];
}
