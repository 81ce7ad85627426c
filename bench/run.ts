/**
 * `npm run bench`: every figure in BENCHMARKS.md comes from here. Loopback only, bounded in time.
 *
 *   npm run bench              full run (about 4 minutes)
 *   npm run bench -- --smoke   a few seconds per row: checks that it runs and prints its table
 *   npm run bench -- --only delivery   one section (ingest, fsyncs, memory, delivery, action, sqlite, postgres)
 *   npm run bench -- --only ingest --rows 4,5 --connections 50 --seconds 5
 *                              some ingest rows, at one level, shorter (quick comparisons while working)
 *
 * The machine is shared and noisy, so rows run in the same invocation against the same request
 * stream and are quoted as ratios to row 2 (the least any verifying receiver must do).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, Agent, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir, cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { BENCH_SECRET, jobBody, sign } from './body.js';
import { startGitHubDouble } from '../test/support/github-double.js';
import { type GitHubStub, startGitHubStub } from './servers/github-stub.js';

const ROOT = resolve(fileURLToPath(import.meta.url), '../../..');
const BUILD = join(ROOT, '.bench-build');
const SMOKE = process.argv.includes('--smoke');
const secondsFlag = process.argv.indexOf('--seconds');
/** Per row; `--seconds N` overrides it (for quick comparisons while working). */
const SECONDS = secondsFlag > 0 ? Number(process.argv[secondsFlag + 1]) : SMOKE ? 1 : 10;
/** The ingest rows run at each of these; the other sections at the first. */
const CONNECTION_LEVELS = [10, 50] as const;
const CONNECTIONS = CONNECTION_LEVELS[0];
const SOAK_EVENTS = SMOKE ? 2_000 : 100_000;
const runTag = Date.now().toString(16);
let seq = 0;

interface Server {
  readonly port: number;
  readonly pid: number;
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

function startProcess(args: string[], env: Record<string, string> = {}, readyPattern = /listening (\d+)/, command = process.execPath): Promise<Server> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no ready line from ${args.join(' ')}:\n${out}`));
    }, 15_000);
    const onData = (chunk: Buffer): void => {
      out += chunk.toString();
      const match = readyPattern.exec(out);
      if (match) {
        clearTimeout(timer);
        child.stdout?.removeListener('data', onData);
        child.stderr?.removeListener('data', onData);
        // Keep draining so a chatty server never blocks on a full pipe.
        child.stdout?.resume();
        child.stderr?.resume();
        resolvePromise({
          port: Number(match[1]),
          pid: child.pid ?? -1,
          child,
          stop: () =>
            new Promise((done) => {
              if (child.exitCode !== null) return done();
              child.once('exit', () => done());
              child.kill('SIGTERM');
              setTimeout(() => child.kill('SIGKILL'), 5_000).unref();
            }),
        });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${args.join(' ')} exited ${code}:\n${out}`));
    });
  });
}

function procStatusKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = new RegExp(`${field}:\\s+(\\d+) kB`).exec(status);
  return match ? Number(match[1]) : NaN;
}

const mb = (kb: number): string => (kb / 1024).toFixed(0);

interface LoadResult {
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly codes: Record<string, number>;
  readonly errors: number;
}

type Signer = (body: string) => Record<string, string>;

const sauceHeaders: Signer = (body) => ({ 'content-type': 'application/json', 'saucelabs-sign': sign(body) });
const githubHeaders: Signer = (body) => ({
  'content-type': 'application/json',
  'x-hub-signature-256': `sha256=${sign(body)}`,
  'x-github-event': 'check_run',
  'x-github-delivery': `d-${seq}`,
});

/** An answer as the table shows it: the status code, and the `status` field of a JSON answer (e.g. `202 stored`). */
function answerKey(status: number, body: string | Buffer | undefined): string {
  const match = body === undefined ? null : /"status":"([a-z_]+)"/.exec(String(body));
  return match ? `${status} ${match[1]}` : String(status);
}

async function load(url: string, headers: Signer, options: { seconds?: number; amount?: number; connections?: number }): Promise<LoadResult> {
  const codes: Record<string, number> = {};
  const result = await autocannon({
    url,
    connections: options.connections ?? CONNECTIONS,
    ...(options.amount !== undefined ? { amount: options.amount } : { duration: options.seconds ?? SECONDS }),
    requests: [
      {
        method: 'POST',
        setupRequest: (req: autocannon.Request) => {
          const body = jobBody(seq++, runTag);
          return { ...req, method: 'POST', body, headers: headers(body) };
        },
        onResponse: (status: number, body?: string | Buffer) => {
          const key = answerKey(status, body);
          codes[key] = (codes[key] ?? 0) + 1;
        },
      },
    ],
  });
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, codes, errors: result.errors + result.timeouts };
}

interface Row {
  readonly name: string;
  /** Node arguments; the data directory (made fresh for every run of the row) is passed to `args(dir)`. */
  readonly args: (dataDir: string) => string[];
  readonly path: string;
  readonly headers: Signer;
  readonly env?: (dataDir: string) => Record<string, string>;
  readonly ready?: RegExp;
  /** The answer every request must get (`answerKey`), else the row measures nothing. */
  readonly expect: string;
}

function relayEnv(dataDir: string, extra: Record<string, string> = {}): Record<string, string> {
  // BENCH_RELAY_NODE_OPTIONS: V8 flags for the relay alone (e.g. --max-old-space-size=64), not the load generator.
  const nodeOptions: Record<string, string> = process.env.BENCH_RELAY_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_RELAY_NODE_OPTIONS } : {};
  return { PORT: '0', SAUCE_WEBHOOK_SECRET: BENCH_SECRET, RELAY_DATA_DIR: dataDir, GITHUB_REPOSITORY: 'acme/shop', ...nodeOptions, ...extra };
}

// As `npm start` runs it: a bounded old space keeps RSS flat (BENCHMARKS.md, memory).
const relayArgs = ['--max-old-space-size=96', join(ROOT, 'lib/relay/cli.js'), 'serve'];
const relayReady = /"url":"http:\/\/127\.0\.0\.1:(\d+)"/;

const INGEST_ROWS: readonly Row[] = [
  { name: '1. node:http, read body, 204 (ceiling)', args: () => [join(BUILD, 'bench/servers/bare.js')], path: '/', headers: sauceHeaders, expect: '204' },
  {
    name: '2. node:http + HMAC verify + JSON.parse (baseline)',
    args: () => [join(BUILD, 'bench/servers/hmac.js')],
    path: '/',
    headers: sauceHeaders,
    expect: '202',
  },
  {
    name: '3. @octokit/webhooks createNodeMiddleware',
    args: () => [join(BUILD, 'bench/servers/octokit.js')],
    path: '/webhook',
    headers: githubHeaders,
    expect: '200',
  },
  {
    name: '4. durable limit: row 2 + raw body into SQLite (WAL, FULL), group commit, 202 after COMMIT',
    args: (dir) => [join(BUILD, 'bench/servers/durable.js'), dir],
    path: '/',
    headers: sauceHeaders,
    expect: '202 stored',
  },
  {
    name: '5. sauce relay (verify, validate, route, dedup, durable store), dispatching to a GitHub (loopback stub)',
    args: () => relayArgs,
    path: '/webhook',
    headers: sauceHeaders,
    env: (dir) => relayEnv(dir, { GITHUB_TOKEN: 'bench-token', GITHUB_API_URL: dispatchStub?.url ?? '' }),
    ready: relayReady,
    expect: '202 stored',
  },
  {
    name: '6. the same relay in dry-run (no GitHub token: the dispatcher "sends" every event at once)',
    args: () => relayArgs,
    path: '/webhook',
    headers: sauceHeaders,
    env: (dir) => relayEnv(dir),
    ready: relayReady,
    expect: '202 stored',
  },
];
const LIMIT_ROW = 3;
/** The relay rows, each compared with the durable limit. */
const RELAY_ROWS = [4, 5] as const;

/** GitHub for row 5 (github-stub.ts), running while a section that uses it runs. */
let dispatchStub: GitHubStub | null = null;

/** `--rows 4,5`: run only these ingest rows (numbers as in the table); `--connections 50`: only this level. */
function pickedRows(): readonly Row[] {
  const at = process.argv.indexOf('--rows');
  if (at < 0) return INGEST_ROWS;
  const wanted = new Set((process.argv[at + 1] ?? '').split(',').map(Number));
  return INGEST_ROWS.filter((_, i) => wanted.has(i + 1));
}

function pickedLevels(): readonly number[] {
  const at = process.argv.indexOf('--connections');
  return at < 0 ? CONNECTION_LEVELS : [Number(process.argv[at + 1])];
}

interface Measured {
  readonly row: Row;
  readonly r: LoadResult;
  readonly peakKb: number;
}

/** Start the row's server on a fresh data directory, warm it up, load it, stop it. */
async function measureRow(row: Row, connections: number): Promise<Measured> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-row-'));
  try {
    const server = await startProcess(row.args(dataDir), row.env?.(dataDir), row.ready);
    try {
      const url = `http://127.0.0.1:${server.port}${row.path}`;
      // A short warm-up so JIT and SQLite page cache are not measured as the steady state.
      if (!SMOKE) await load(url, row.headers, { seconds: 1, connections });
      const r = await load(url, row.headers, { connections });
      return { row, r, peakKb: procStatusKb(server.pid, 'VmHWM') };
    } finally {
      await server.stop();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

function answersText(r: LoadResult): string {
  return (
    Object.entries(r.codes)
      .map(([code, n]) => `${code}×${n}`)
      .join(' ') + (r.errors ? ` errors×${r.errors}` : '')
  );
}

async function ingestRows(): Promise<string[]> {
  const rows = pickedRows();
  const lines: string[] = [];
  dispatchStub = await startGitHubStub();
  try {
    for (const connections of pickedLevels()) lines.push(...(await ingestLevel(rows, connections)));
  } finally {
    dispatchStub?.stop();
  }
  return lines;
}

async function ingestLevel(rows: readonly Row[], connections: number): Promise<string[]> {
  const lines: string[] = [];
  const results = new Map<Row, Measured>();
  for (const row of rows) results.set(row, await measureRow(row, connections));
  const base = results.get(INGEST_ROWS[1]!)?.r.rps ?? NaN;
  lines.push(`### ${connections} connections`, '', `| row | req/s | ×row 2 | p50 ms | p99 ms | peak RSS MB | answers |`, `|---|---:|---:|---:|---:|---:|---|`);
  for (const { row, r, peakKb } of results.values()) {
    lines.push(`| ${row.name} | ${r.rps.toFixed(0)} | ${(r.rps / base).toFixed(2)} | ${r.p50} | ${r.p99} | ${mb(peakKb)} | ${answersText(r)} |`);
    const good = r.codes[row.expect] ?? 0;
    const total = Object.values(r.codes).reduce((a, b) => a + b, 0) + r.errors;
    if (total === 0 || good !== total) lines.push(`| ⚠ ${row.name}: only ${good}/${total} answers were ${row.expect}: this row measures nothing |`);
  }
  const limit = results.get(INGEST_ROWS[LIMIT_ROW]!)?.r;
  const peer = results.get(INGEST_ROWS[2]!)?.r;
  for (const index of RELAY_ROWS) {
    const relay = results.get(INGEST_ROWS[index]!)?.r;
    if (!relay || !limit) continue;
    const p99Ratio = limit.p99 > 0 ? (relay.p99 / limit.p99).toFixed(2) : `${relay.p99} ms vs ${limit.p99} ms`;
    const extra = [
      Number.isNaN(base) ? '' : `; / row 2 = ${(relay.rps / base).toFixed(2)}`,
      peer ? `; / row 3 = ${(relay.rps / peer.rps).toFixed(2)}` : '',
    ].join('');
    lines.push(
      '',
      `row ${index + 1} / durable limit = ${(relay.rps / limit.rps).toFixed(2)} (target ≥ 0.8); p99 / limit p99 = ${p99Ratio} (target ≤ 2)${extra}`,
    );
  }
  lines.push('');
  return lines;
}

/** Whether `strace` can be run here (it counts the fsyncs; the section says so when it is missing). */
function straceAvailable(): boolean {
  return spawnSync('strace', ['-V'], { stdio: 'ignore' }).status === 0;
}

/** The fsync and fdatasync calls in an `strace -c` summary. */
function fsyncCalls(summary: string): number {
  let calls = 0;
  for (const line of summary.split('\n')) {
    const cols = line.trim().split(/\s+/);
    const name = cols[cols.length - 1];
    if (name !== 'fsync' && name !== 'fdatasync') continue;
    // % time, seconds, usecs/call, calls, [errors,] syscall
    calls += Number(cols[3]);
  }
  return calls;
}

/**
 * Fsyncs per acknowledged event: the row's server runs under `strace -f -c` (only fsync and
 * fdatasync are traced, through a seccomp filter, so the other calls run at full speed) for a fixed
 * number of events; the count covers the whole process (every thread, the WAL and checkpoints).
 */
async function fsyncRows(): Promise<string[]> {
  if (!straceAvailable()) return ['strace is not installed: fsyncs not counted (apt-get install strace)'];
  const events = SMOKE ? 500 : 30_000;
  const lines = [
    `| row | connections | events acknowledged | fsync + fdatasync calls | per acknowledged event | events per fsync | req/s under strace |`,
    `|---|---:|---:|---:|---:|---:|---:|`,
  ];
  dispatchStub = await startGitHubStub();
  for (const connections of pickedLevels()) {
    for (const row of [INGEST_ROWS[LIMIT_ROW]!, ...RELAY_ROWS.map((i) => INGEST_ROWS[i]!)]) {
      const dataDir = mkdtempSync(join(tmpdir(), 'bench-fsync-'));
      const summaryFile = join(dataDir, 'strace.txt');
      try {
        const strace = ['-f', '-c', '--seccomp-bpf', '-e', 'trace=fsync,fdatasync', '-o', summaryFile, process.execPath, ...row.args(dataDir)];
        const server = await startProcess(strace, row.env?.(dataDir), row.ready, 'strace');
        let r: LoadResult;
        try {
          r = await load(`http://127.0.0.1:${server.port}${row.path}`, row.headers, { amount: events, connections });
        } finally {
          // Stop the traced node process (strace's child); strace writes its summary when it exits.
          const children = readFileSync(`/proc/${server.pid}/task/${server.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
          for (const pid of children) process.kill(Number(pid), 'SIGTERM');
          await server.stop();
        }
        const acked = r.codes[row.expect] ?? 0;
        const calls = fsyncCalls(readFileSync(summaryFile, 'utf8'));
        lines.push(
          `| ${row.name.split(/[:(]/)[0]!.trim()} | ${connections} | ${acked} | ${calls} | ${(calls / acked).toFixed(3)} | ${(acked / calls).toFixed(1)} | ${r.rps.toFixed(0)} |`,
        );
      } finally {
        rmSync(dataDir, { recursive: true, force: true });
      }
    }
  }
  dispatchStub?.stop();
  return lines;
}

async function soak(): Promise<string[]> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-soak-'));
  const server = await startProcess(relayArgs, relayEnv(dataDir), relayReady);
  const samples: number[] = [];
  const sampler = setInterval(() => samples.push(procStatusKb(server.pid, 'VmRSS')), 500);
  let r: LoadResult;
  try {
    r = await load(`http://127.0.0.1:${server.port}/webhook`, sauceHeaders, { amount: SOAK_EVENTS });
    samples.push(procStatusKb(server.pid, 'VmRSS'));
  } finally {
    clearInterval(sampler);
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
  const tenth = samples[Math.max(0, Math.floor(samples.length / 10))] ?? NaN;
  const last = samples[samples.length - 1] ?? NaN;
  const peak = Math.max(...samples);
  return [
    `| events | answers | RSS at 10% MB | RSS at end MB | peak RSS MB | growth 10%→end |`,
    `|---:|---|---:|---:|---:|---:|`,
    `| ${SOAK_EVENTS} | ${Object.entries(r.codes)
      .map(([c, n]) => `${c}×${n}`)
      .join(' ')} | ${mb(tenth)} | ${mb(last)} | ${mb(peak)} | ${((last / tenth - 1) * 100).toFixed(1)}% |`,
  ];
}

/** A job event the size Sauce really sends (the shared fixture, ~0.9 KB), distinct per seq. */
function fixtureJobBody(seq: number): string {
  const base = JSON.parse(readFileSync(join(ROOT, 'test/fixtures/sauce/job-vdc-passed.json'), 'utf8')) as Record<string, unknown>;
  return JSON.stringify({
    ...base,
    id: `${runTag}${seq.toString(16).padStart(16, '0')}`,
    // Dated now: a job event older than the relay's stale limit (24 h) would be filtered, not relayed.
    modification_time: new Date(Date.now() + seq * 10).toISOString().replace(/\.\d{3}Z$/, 'Z'),
  });
}

async function delivery(): Promise<string[]> {
  const lines = [
    `| job events | body | over | naive dispatches | relay dispatches | floor (bytes ÷ 64 KB) | events delivered | ack→dispatch p50 ms | p99 ms |`,
    `|---:|---|---:|---:|---:|---:|---:|---:|---:|`,
  ];
  const burst = SMOKE ? { events: 40, spreadMs: 2_000 } : { events: 200, spreadMs: 10_000 };
  lines.push(await deliveryRow('fixture-size (~0.9 KB)', (i) => fixtureJobBody(i), burst));
  lines.push(await deliveryRow('bench body (~2 KB)', (i) => jobBody(i, runTag, 'shop-web #delivery'), burst));
  // Latency on its own: events far enough apart that each group is one event.
  lines.push(await deliveryRow('sparse: one every 2.5 s', (i) => fixtureJobBody(i), SMOKE ? { events: 2, spreadMs: 5_000 } : { events: 8, spreadMs: 20_000 }));
  lines.push(
    '',
    'targets: ≤ 3 dispatches for 200 events in 10 s; p50 ≤ grouping window (2000 ms) + 50 ms. Each dispatch carries whole events (re-serialised, shortened only past 64 KB: README, The envelope), so it holds at most 64 KB of them.',
  );
  return lines;
}

/** 200 job events of one build within 10 s, through the relay to a loopback dispatch endpoint. */
async function deliveryRow(label: string, makeBody: (seq: number) => string, { events, spreadMs }: { events: number; spreadMs: number }): Promise<string> {
  const acked = new Map<string, number>();
  const latencies: number[] = [];
  let dispatches = 0;
  let delivered = 0;
  let totalBytes = 0;
  const stub = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const at = performance.now();
      if (req.method === 'POST' && /\/dispatches$/.test(req.url ?? '')) {
        dispatches += 1;
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { client_payload: { events: { payload: { id: string } }[] } };
        for (const e of body.client_payload.events) {
          delivered += 1;
          const t = acked.get(e.payload.id);
          if (t !== undefined) latencies.push(at - t);
        }
        res.writeHead(204);
        res.end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((done) => stub.listen(0, '127.0.0.1', done));
  const stubPort = (stub.address() as { port: number }).port;
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-delivery-'));
  const server = await startProcess(relayArgs, relayEnv(dataDir, { GITHUB_TOKEN: 'bench-token', GITHUB_API_URL: `http://127.0.0.1:${stubPort}` }), relayReady);
  const agent = new Agent({ keepAlive: true, maxSockets: 4 });
  try {
    const start = performance.now();
    for (let i = 0; i < events; i++) {
      const due = start + (i * spreadMs) / events;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const body = makeBody(seq++);
      totalBytes += Buffer.byteLength(body);
      const jobId = (JSON.parse(body) as { id: string }).id;
      await new Promise<void>((done, fail) => {
        const req = httpRequest({ host: '127.0.0.1', port: server.port, path: '/webhook', method: 'POST', agent, headers: sauceHeaders(body) }, (res) => {
          res.resume();
          res.on('end', () => {
            acked.set(jobId, performance.now());
            done();
          });
        });
        req.on('error', fail);
        req.end(body);
      });
    }
    const deadline = performance.now() + 15_000;
    while (delivered < events && performance.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  } finally {
    agent.destroy();
    await server.stop();
    stub.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
  latencies.sort((a, b) => a - b);
  const pct = (p: number): string =>
    latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]!.toFixed(0) : 'n/a';
  const floor = Math.ceil(totalBytes / 65_535);
  return `| ${events} | ${label} | ${spreadMs / 1000} s | ${events} | ${dispatches} | ${floor} | ${delivered} | ${pct(50)} | ${pct(99)} |`;
}

interface ActionRun {
  readonly wallMs: number;
  readonly calls: number;
  readonly code: number | null;
}

/** The committed bundle, started as the runner starts it, against the loopback GitHub double. */
async function actionRuns(): Promise<string[]> {
  const double = await startGitHubDouble();
  const sha = '9fceb02d0ae598e95dc970b74767f19372d61af8';
  const dir = mkdtempSync(join(tmpdir(), 'bench-action-'));
  /** `prHead`: the commit is an open PR's head and carries the CI workflow's own check run, as when the tests ran in a pull_request workflow. */
  const runOnce = async (events: unknown[], tag: string, confirmDelayMs = 0, prHead = false): Promise<ActionRun> => {
    double.reset();
    double.addCommit('acme/shop', sha);
    double.setBranch('acme/shop', 'feature/login', sha);
    if (prHead) {
      double.addPull('acme/shop', { number: 12, headSha: sha, headRef: 'feature/login', mergeCommitSha: null });
      double.addForeignCheckRun('acme/shop', 'e2e (chrome)', sha);
    }
    const eventPath = join(dir, `event-${tag}.json`);
    writeFileSync(eventPath, JSON.stringify({ action: 'saucelabs', client_payload: { version: 1, events: events.map((payload) => ({ payload })) } }));
    writeFileSync(join(dir, 'out'), '');
    writeFileSync(join(dir, 'summary'), '');
    const start = performance.now();
    const code = await new Promise<number | null>((done) => {
      const child = spawn(process.execPath, [join(ROOT, 'dist/index.js')], {
        env: {
          PATH: process.env.PATH ?? '',
          GITHUB_EVENT_NAME: 'repository_dispatch',
          GITHUB_EVENT_PATH: eventPath,
          GITHUB_REPOSITORY: 'acme/shop',
          GITHUB_API_URL: double.url,
          GITHUB_OUTPUT: join(dir, 'out'),
          GITHUB_STEP_SUMMARY: join(dir, 'summary'),
          'INPUT_GITHUB-TOKEN': 'bench-token',
          'INPUT_CONFIRM-DELAY-MS': String(confirmDelayMs),
        },
        stdio: 'ignore',
      });
      child.on('exit', (c) => done(c));
    });
    return { wallMs: performance.now() - start, calls: double.countRequests(), code };
  };
  const baseline = async (): Promise<number> => {
    const start = performance.now();
    await new Promise((done) => spawn(process.execPath, ['-e', ''], { stdio: 'ignore' }).on('exit', done));
    return performance.now() - start;
  };
  const one = JSON.parse(readFileSync(join(ROOT, 'test/fixtures/sauce/job-vdc-failed-boolean.json'), 'utf8')) as unknown;
  const batch = Array.from({ length: 100 }, (_, i) => JSON.parse(jobBody(i, runTag)) as unknown);
  const repeats = SMOKE ? 2 : 7;
  const singles: ActionRun[] = [];
  const nodeOnly: number[] = [];
  for (let i = 0; i < repeats; i++) {
    nodeOnly.push(await baseline());
    singles.push(await runOnce([one], `one-${i}`));
  }
  const batchRun = await runOnce(batch, 'batch');
  const passing = JSON.parse(readFileSync(join(ROOT, 'test/fixtures/sauce/job-vdc-passed.json'), 'utf8')) as unknown;
  const firstCalls = {
    bare: { passing: await runOnce([passing], 'bare-pass'), failing: singles[0]! },
    prHead: { passing: await runOnce([passing], 'pr-pass', 0, true), failing: await runOnce([one], 'pr-fail', 0, true) },
  };
  const withDefaultDelay = await runOnce([one], 'default-delay', 1000);
  await double.close();
  rmSync(dir, { recursive: true, force: true });
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
  const wall = median(singles.map((s) => s.wallMs));
  const base = median(nodeOnly);
  const violations = double.violations.length;
  return [
    `| measure | value | baseline / note |`,
    `|---|---:|---|`,
    `| cold \`node dist/index.js\`, one job event, \`confirm-delay-ms: 0\` (median of ${repeats}) | ${wall.toFixed(0)} ms | bare \`node -e ''\` ${base.toFixed(0)} ms (×${(wall / base).toFixed(1)}); target ≤ 400 ms |`,
    `| the same with the default \`confirm-delay-ms: 1000\` | ${withDefaultDelay.wallMs.toFixed(0)} ms | the wait before the read-back that guards concurrent runs is idle time, not work |`,
    `| API calls, first job event on an open PR's head (carries the CI's own check run): passing / failing | ${firstCalls.prHead.passing.calls} / ${firstCalls.prHead.failing.calls} | target ≤ 4; a failing job adds its own check run; exit ${firstCalls.prHead.passing.code} / ${firstCalls.prHead.failing.code} |`,
    `| API calls, first job event on a commit with no check runs at all: passing / failing | ${firstCalls.bare.passing.calls} / ${firstCalls.bare.failing.calls} | + the open-PR lookup (it may be a temporary merge commit); exit ${firstCalls.bare.passing.code} / ${firstCalls.bare.failing.code} |`,
    `| API calls per event, 100-event batch | ${(batchRun.calls / 100).toFixed(2)} | ${batchRun.calls} calls in all; target ≤ 2.5; exit ${batchRun.code} |`,
    `| requests the OpenAPI description rejected | ${violations} | must be 0 |`,
  ];
}

/** bench/store.ts on this build: the relay's SQLite store beside the durable limit's storage, no HTTP. */
async function storeAlone(): Promise<string[]> {
  const args = [
    join(BUILD, 'bench/store.js'),
    '--lib',
    `this=${join(ROOT, 'lib')}`,
    '--rounds',
    '1',
    '--seconds',
    SMOKE ? '1' : '4',
    '--backlog',
    SMOKE ? '500' : '10000',
  ];
  const run = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8', timeout: 300_000 });
  if (run.status !== 0) throw new Error(`bench/store.js failed (${run.status}): ${run.stderr}`);
  return run.stdout.trimEnd().split('\n');
}

async function main(): Promise<void> {
  const started = performance.now();
  const cpu = cpus()[0]?.model ?? 'unknown';
  const header = [
    `# sauce bridge bench ${SMOKE ? '(smoke: figures are not meaningful)' : ''}`,
    `node ${process.version}, ${cpus().length} cores (${cpu}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB; autocannon in this process, ingest at ${CONNECTION_LEVELS.join(' and ')} connections (the soak at ${CONNECTIONS}), ${SECONDS} s per row; bodies ${Buffer.byteLength(jobBody(0, runTag))} bytes, each distinct and signed`,
  ];
  const sections: [string, () => Promise<string[]>][] = [
    ['Ingest', ingestRows],
    ['Fsyncs per acknowledged event', fsyncRows],
    [`Memory across ${SOAK_EVENTS} events`, soak],
    ['Delivery economy and latency', delivery],
    ['The Action', actionRuns],
    ['The SQLite store alone', storeAlone],
    ['PostgreSQL: the shared store, one and three instances', async () => (await import('./postgres.js')).postgresBench({ smoke: SMOKE })],
  ];
  const only = process.argv.indexOf('--only');
  const pick = only > 0 ? process.argv[only + 1]?.toLowerCase() : undefined;
  const out: string[] = [...header];
  for (const [title, fn] of sections) {
    if (pick && !title.toLowerCase().includes(pick)) continue;
    out.push('', `## ${title}`, '');
    try {
      out.push(...(await fn()));
    } catch (error) {
      out.push(`FAILED: ${error instanceof Error ? error.message : String(error)}`);
      process.exitCode = 1;
    }
    process.stdout.write(`${out.splice(0).join('\n')}\n`);
  }
  process.stdout.write(`\n(bench took ${((performance.now() - started) / 1000).toFixed(0)} s)\n`);
}

await main();
// Never leave a server behind: a failed row must not keep the run (or CI) waiting.
process.exit();
