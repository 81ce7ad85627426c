/**
 * Store-only figures for relay builds, beside the durable limit's own storage: what a change to
 * the SQLite store buys, without HTTP or the load generator in the way.
 *
 *   node .bench-build/bench/store.js --lib before=/tmp/a/lib --lib after=lib [--rounds 2] [--seconds 4] [--backlog 10000]
 *
 * (builds as for bench/compare.ts; `npm run bench -- --only none` or `tsc -p tsconfig.bench.json`
 * compiles this file.)
 *
 * - inserts: 10 concurrent callers, each awaiting its `insert` before the next, for `--seconds`
 *   after 1 s of warm-up; the bench's 2.6 KB bodies, each with its own time. Inserts a second, CPU
 *   per insert and bytes written per insert (`/proc/self/io`: the WAL, its fsyncs and checkpoints).
 *   The durable limit's `put` (bench/servers/durable-store.ts) runs the same way first.
 * - dispatch: a backlog of `--backlog` pending events, then claim 25 and mark them delivered (with
 *   an attempt, as the dispatcher does) until none is left: time per event in claims and in marks.
 *
 * Each measurement runs in a process of its own, the builds in turn within a round.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { flag, libsFromArgs } from './args.js';
import { jobBody } from './body.js';
import { openDurableStore } from './servers/durable-store.js';
import type { NewEvent } from '../src/relay/outbox/store.js';

type StoreModule = typeof import('../src/relay/outbox/sqlite-store.js');

const CONCURRENCY = 10;
const CLAIM = 25;

function bytesWritten(): number {
  return Number(/wchar: (\d+)/.exec(readFileSync('/proc/self/io', 'utf8'))?.[1] ?? Number.NaN);
}

function newEvent(n: number, tag: string): NewEvent {
  const body = jobBody(n, tag);
  const now = Date.now();
  return {
    route: 'default',
    repo: 'acme/shop',
    eventType: 'saucelabs',
    body,
    bodyHash: createHash('sha256').update(body).digest('hex'),
    receivedAt: now,
    occurredAt: now,
  };
}

/** `put` from CONCURRENCY callers for `ms`; how many went in. */
async function drive(put: (event: NewEvent) => Promise<unknown>, ms: number, from: number, tag: string): Promise<number> {
  let n = from;
  const until = performance.now() + ms;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < until) await put(newEvent(n++, tag));
    }),
  );
  return n - from;
}

async function measureInserts(lib: string | null, seconds: number): Promise<Record<string, number>> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-store-'));
  const tag = Date.now().toString(16);
  let put: (event: NewEvent) => Promise<unknown>;
  let close: () => Promise<void>;
  if (lib === null) {
    const limit = openDurableStore(dir);
    put = (event) => new Promise<void>((done, fail) => limit.put(event.body, (error) => (error === undefined ? done() : fail(error))));
    close = async () => limit.close();
  } else {
    const { openSqliteStore } = (await import(join(lib, 'relay/outbox/sqlite-store.js'))) as StoreModule;
    const store = openSqliteStore(dir);
    put = (event) => store.insert(event, 3_600_000);
    close = () => store.close();
  }
  try {
    const warm = await drive(put, 1000, 0, tag);
    const cpu = process.cpuUsage();
    const written = bytesWritten();
    const started = performance.now();
    const n = await drive(put, seconds * 1000, warm, tag);
    const used = process.cpuUsage(cpu);
    return {
      'inserts/s': Math.round(n / ((performance.now() - started) / 1000)),
      'CPU µs per insert': (used.user + used.system) / n,
      'KB written per insert': (bytesWritten() - written) / 1024 / n,
    };
  } finally {
    await close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function measureDispatch(lib: string, backlog: number): Promise<Record<string, number>> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-store-'));
  const { openSqliteStore } = (await import(join(lib, 'relay/outbox/sqlite-store.js'))) as StoreModule;
  const store = openSqliteStore(dir);
  try {
    const tag = Date.now().toString(16);
    for (let n = 0; n < backlog; n += 100)
      await Promise.all(Array.from({ length: Math.min(100, backlog - n) }, (_, i) => store.insert(newEvent(n + i, tag), 3_600_000)));
    const now = Date.now() + 1000;
    let claiming = 0;
    let marking = 0;
    let done = 0;
    const cpu = process.cpuUsage();
    for (;;) {
      let t = performance.now();
      const claimed = await store.claim('bench', now, 60_000, CLAIM);
      claiming += performance.now() - t;
      if (claimed.length === 0) break;
      t = performance.now();
      const attempt = { at: now, dispatchId: 'd-bench', events: claimed.length, status: null, message: 'bench', result: 'sent', code: null } as const;
      await store.markDelivered(
        'bench',
        claimed.map((e) => e.id),
        now,
        attempt,
      );
      marking += performance.now() - t;
      done += claimed.length;
    }
    const used = process.cpuUsage(cpu);
    return {
      'claim µs per event': (claiming * 1000) / done,
      'mark µs per event': (marking * 1000) / done,
      'CPU µs per event': (used.user + used.system) / done,
    };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const self = fileURLToPath(import.meta.url);

if (process.argv[2] === '--child') {
  // --child <inserts|dispatch> <lib|limit> <seconds|backlog>
  const [, , , what, lib, amount] = process.argv;
  const result = what === 'inserts' ? await measureInserts(lib === 'limit' ? null : lib!, Number(amount)) : await measureDispatch(lib!, Number(amount));
  process.stdout.write(JSON.stringify(result));
} else {
  const libs = libsFromArgs();
  if (libs.length === 0) throw new Error('give at least one --lib name=dir');
  const rounds = Number(flag('--rounds', '2'));
  const seconds = flag('--seconds', '4');
  const backlog = flag('--backlog', '10000');
  const child = (what: string, lib: string, amount: string): Record<string, number> =>
    JSON.parse(execFileSync(process.execPath, [self, '--child', what, lib, amount], { encoding: 'utf8' })) as Record<string, number>;
  const rows = new Map<string, Record<string, number>[]>();
  const add = (name: string, result: Record<string, number>): void => {
    rows.set(name, [...(rows.get(name) ?? []), result]);
  };
  for (let round = 0; round < rounds; round += 1) {
    add('inserts: durable limit', child('inserts', 'limit', seconds));
    for (const [name, dir] of libs) add(`inserts: ${name}`, child('inserts', dir, seconds));
    for (const [name, dir] of libs) add(`dispatch: ${name}`, child('dispatch', dir, backlog));
  }
  console.log(`node ${process.version}; ${rounds} round(s), values per round; inserts for ${seconds} s, a backlog of ${backlog} to dispatch`);
  // One table per kind of measurement: the inserts, then the dispatch.
  for (const kind of ['inserts', 'dispatch']) {
    const kindRows = [...rows].filter(([name]) => name.startsWith(kind));
    const measures = Object.keys(kindRows[0]![1][0]!);
    console.log(`\n| ${kind} | ${measures.join(' | ')} |\n|---|${measures.map(() => '---:').join('|')}|`);
    for (const [name, results] of kindRows) {
      const cells = measures.map((m) => results.map((r) => r[m]!.toFixed(m.endsWith('/s') ? 0 : 1)).join(' / '));
      console.log(`| ${name.slice(name.indexOf(':') + 2)} | ${cells.join(' | ')} |`);
    }
  }
}
