/**
 * Before/after comparisons of relay builds, in one run: what each change in BENCHMARKS.md bought.
 *
 *   node .bench-build/bench/compare.js --lib before=/tmp/a/lib --lib after=lib [--rounds 3] [--connections 10] [--seconds 5] [--github]
 *
 * (after `npm run bench -- --only none` or `tsc -p tsconfig.bench.json`, and a build of each
 * commit: `git archive <commit> src package.json tsconfig.json tsconfig.build.json | tar -x -C /tmp/a`,
 * `ln -s $PWD/node_modules /tmp/a/`, `(cd /tmp/a && npx tsc -p tsconfig.build.json)`.)
 *
 * Each round runs the durable limit and then every build, one after the other, on fresh data
 * directories, so a build is always compared with its neighbours in time; the shared machine's
 * drift shows as spread across rounds. Besides req/s it reports the server's CPU time per event
 * (user + system, from /proc), which the other processes on the machine disturb far less.
 * `--github`: the relays dispatch to a loopback stub that answers like GitHub (bench row 5);
 * without it they run in dry-run (row 6).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { BENCH_SECRET, jobBody, sign } from './body.js';
import { flag, libsFromArgs } from './args.js';
import { startGitHubStub } from './servers/github-stub.js';

const ROOT = resolve(fileURLToPath(import.meta.url), '../../..');
const BUILD = join(ROOT, '.bench-build');
const TICKS_PER_SECOND = 100;

const libs = libsFromArgs();
const rounds = Number(flag('--rounds', '3'));
const connections = Number(flag('--connections', '10'));
const seconds = Number(flag('--seconds', '5'));
const withGitHub = process.argv.includes('--github');
const runTag = Date.now().toString(16);
const githubUrl = withGitHub ? (await startGitHubStub()).url : '';
let seq = 0;

interface Target {
  readonly name: string;
  readonly args: (dir: string) => string[];
  readonly env: (dir: string) => Record<string, string>;
  readonly path: string;
}

const targets: Target[] = [
  { name: 'durable limit', args: (dir) => [join(BUILD, 'bench/servers/durable.js'), dir], env: () => ({}), path: '/' },
  ...libs.map(
    ([name, dir]): Target => ({
      name,
      args: () => ['--max-old-space-size=96', join(dir, 'relay/cli.js'), 'serve'],
      env: (data) => ({
        PORT: '0',
        SAUCE_WEBHOOK_SECRET: BENCH_SECRET,
        RELAY_DATA_DIR: data,
        GITHUB_REPOSITORY: 'acme/shop',
        ...(withGitHub ? { GITHUB_TOKEN: 'bench-token', GITHUB_API_URL: githubUrl } : {}),
      }),
      path: '/webhook',
    }),
  ),
];

function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

async function measure(target: Target): Promise<{ rps: number; p99: number; cpuUs: number; good: number; total: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-compare-'));
  const child = spawn(process.execPath, target.args(dir), { cwd: ROOT, env: { ...process.env, ...target.env(dir) }, stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const port = await new Promise<string>((done, fail) => {
      let out = '';
      const onData = (chunk: Buffer): void => {
        out += chunk.toString();
        const m = /listening (\d+)|"url":"http:\/\/127\.0\.0\.1:(\d+)"/.exec(out);
        if (!m) return;
        child.stdout.off('data', onData);
        child.stdout.resume();
        child.stderr.resume();
        done(m[1] ?? m[2]!);
      };
      child.stdout.on('data', onData);
      child.once('exit', (code) => fail(new Error(`${target.name} exited ${code}: ${out}`)));
    });
    let good = 0;
    let total = 0;
    const run = (duration: number) =>
      autocannon({
        url: `http://127.0.0.1:${port}${target.path}`,
        connections,
        duration,
        requests: [
          {
            method: 'POST',
            setupRequest: (req: autocannon.Request) => {
              const body = jobBody(seq++, runTag);
              return { ...req, method: 'POST', body, headers: { 'content-type': 'application/json', 'saucelabs-sign': sign(body) } };
            },
            onResponse: (status: number, body?: string | Buffer) => {
              total += 1;
              if (status === 202 && String(body).includes('"stored"')) good += 1;
            },
          },
        ],
      });
    await run(1);
    good = 0;
    total = 0;
    const before = cpuSeconds(child.pid!);
    const result = await run(seconds);
    const cpu = cpuSeconds(child.pid!) - before;
    return { rps: result.requests.average, p99: result.latency.p99, cpuUs: (cpu / Math.max(1, total)) * 1e6, good, total };
  } finally {
    // A target that already exited (it died before it was ready) has no 'exit' left to wait for.
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((done) => child.once('exit', done));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

const rows = new Map<string, { rps: number[]; p99: number[]; cpu: number[]; ratio: number[] }>();
for (let round = 0; round < rounds; round += 1) {
  let limit = NaN;
  for (const target of targets) {
    const m = await measure(target);
    if (target === targets[0]) limit = m.rps;
    const row = rows.get(target.name) ?? { rps: [], p99: [], cpu: [], ratio: [] };
    row.rps.push(m.rps);
    row.p99.push(m.p99);
    row.cpu.push(m.cpuUs);
    row.ratio.push(m.rps / limit);
    rows.set(target.name, row);
    if (m.good !== m.total) process.stdout.write(`⚠ ${target.name}: ${m.total - m.good} of ${m.total} answers were not 202 stored\n`);
  }
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const list = (xs: number[], digits = 0): string => xs.map((x) => x.toFixed(digits)).join(' / ');
process.stdout.write(
  `${connections} connections, ${seconds} s per measurement, ${rounds} rounds, relays ${withGitHub ? 'dispatching to a GitHub stub' : 'in dry-run'} (values per round; median in bold)\n\n` +
    `| build | req/s | × durable limit | p99 ms | server CPU µs per event |\n|---|---|---|---|---|\n`,
);
for (const [name, r] of rows) {
  process.stdout.write(
    `| ${name} | ${list(r.rps)} (**${median(r.rps).toFixed(0)}**) | ${list(r.ratio, 2)} (**${median(r.ratio).toFixed(2)}**) | ${list(r.p99)} | ${list(r.cpu)} (**${median(r.cpu).toFixed(0)}**) |\n`,
  );
}
process.exit();
