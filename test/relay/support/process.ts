/**
 * Real relay processes for the tests: build lib/ once (a lock keeps parallel jest workers from
 * building at the same time), start `node lib/relay/cli.js serve` on 127.0.0.1 with an explicit
 * environment (nothing inherited: no stray GitHub token), and read its JSON logs.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmdirSync, statSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './common.js';
import { afterAll } from '@jest/globals';

const CLI = join(REPO_ROOT, 'lib/relay/cli.js');

/**
 * The node flags of `npm start` (today the 96 MB old-space cap), read from package.json so the
 * test relays run with the same heap limit that users get and the two cannot drift apart.
 */
export const START_NODE_ARGS: readonly string[] = (() => {
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const words = pkg.scripts.start!.split(/\s+/);
  const script = words.indexOf('lib/relay/cli.js');
  if (words[0] !== 'node' || script < 1) throw new Error(`unexpected start script: ${pkg.scripts.start}`);
  return words.slice(1, script);
})();

/**
 * The Sauce fixtures are recorded bodies with fixed dates (2025-2026). A relay with the default
 * stale limit (24 h) answers their job events "202 filtered, stale", so test relays accept job
 * events up to ten years old unless a test sets RELAY_STALE_AFTER itself (the stale tests do, or
 * send `datedNow` bodies). The dedup window stays longer than the stale limit, as the config
 * requires: a test that sets RELAY_DEDUP_WINDOW sets RELAY_STALE_AFTER below it too.
 */
export const FIXTURE_AGE_ENV: Readonly<Record<string, string>> = { RELAY_STALE_AFTER: '3650d', RELAY_DEDUP_WINDOW: '3651d' };

/** A job event body with its creation and modification times set to `at` (and optional fields patched). */
export function datedNow(body: Buffer, at = Date.now(), patch: Record<string, unknown> = {}): Buffer {
  const event = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
  const time = new Date(at).toISOString();
  return Buffer.from(JSON.stringify({ ...event, ...patch, creation_time: time, modification_time: time }));
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** `npm run build` unless lib/relay/cli.js is newer than every file in src/. */
export function ensureBuilt(): void {
  const lock = join(tmpdir(), `relay-test-build-${createHash('sha256').update(REPO_ROOT).digest('hex').slice(0, 12)}.lock`);
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      // Another worker is building; a lock older than 2 minutes is stale.
      try {
        if (Date.now() - statSync(lock).mtimeMs > 120_000) rmdirSync(lock);
      } catch {
        /* gone already */
      }
      if (Date.now() > deadline) throw new Error('timed out waiting for the build lock');
      sleepSync(200);
    }
  }
  try {
    let built = 0;
    try {
      built = statSync(CLI).mtimeMs;
    } catch {
      built = 0;
    }
    if (built < newestMtime(join(REPO_ROOT, 'src'))) {
      execFileSync(process.execPath, [join(REPO_ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: REPO_ROOT, stdio: 'pipe' });
    }
  } finally {
    rmdirSync(lock);
  }
}

export function tempDir(prefix = 'relay-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export interface RelayProcess {
  readonly child: ChildProcess;
  readonly url: string;
  readonly dataDir: string;
  /** Raw stdout so far (the banner and the JSON logs). */
  stdout(): string;
  stderr(): string;
  logs(): LogLine[];
  waitForLog(pred: (l: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Resident set size of the child in bytes (Linux /proc). */
  rss(): number;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
  readonly exited: Promise<number | null>;
}

export interface StartOptions {
  readonly env?: Record<string, string>;
  readonly dataDir?: string;
  readonly args?: string[];
  readonly timeoutMs?: number;
}

/**
 * Every relay process this test file started and that still runs. A test that fails before its own
 * cleanup (or reassigns the variable holding its relay) would otherwise leave the process running,
 * and its open pipes keep Jest from exiting: every file that starts relays kills what is left after
 * its last test.
 */
const running = new Set<ChildProcess>();
afterAll(async () => {
  const left = [...running];
  for (const child of left) child.kill('SIGKILL');
  await Promise.all(left.map((child) => (child.exitCode === null && child.signalCode === null ? new Promise((r) => child.once('exit', r)) : null)));
});

export async function startRelayProcess(options: StartOptions = {}): Promise<RelayProcess> {
  const dataDir = options.dataDir ?? tempDir();
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    PORT: '0',
    RELAY_HOST: '127.0.0.1',
    RELAY_DATA_DIR: dataDir,
    LOG_LEVEL: 'info',
    ...FIXTURE_AGE_ENV,
    ...options.env,
  };
  const child = spawn(process.execPath, [...START_NODE_ARGS, CLI, ...(options.args ?? ['serve'])], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  child.once('exit', () => running.delete(child));
  let out = '';
  let err = '';
  const lines: LogLine[] = [];
  const waiters = new Set<() => void>();
  let partial = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    partial += chunk;
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) {
      if (!line.startsWith('{')) continue;
      try {
        lines.push(JSON.parse(line) as LogLine);
      } catch {
        /* not a log line */
      }
    }
    for (const w of waiters) w();
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk;
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal ? -1 : null))));
  let done = false;
  void exited.then(() => {
    done = true;
    for (const w of waiters) w();
  });

  function waitForLog(pred: (l: LogLine) => boolean, timeoutMs = 10_000): Promise<LogLine> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const hit = lines.find(pred);
        if (hit) {
          cleanup();
          resolve(hit);
        } else if (done) {
          cleanup();
          reject(new Error(`relay exited before the expected log line\nstdout:\n${out}\nstderr:\n${err}`));
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out waiting for a log line\nstdout:\n${out.slice(-4000)}\nstderr:\n${err}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });
  }

  let listening: LogLine;
  try {
    // Needs LOG_LEVEL info or lower: the URL comes from the 'relay listening' line.
    listening = await waitForLog((l) => l.msg === 'relay listening', options.timeoutMs ?? 15_000);
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  }
  return {
    child,
    url: String(listening.url),
    dataDir,
    stdout: () => out,
    stderr: () => err,
    logs: () => lines,
    waitForLog,
    rss() {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      const kb = /VmRSS:\s+(\d+)/.exec(status)?.[1];
      return Number(kb ?? 0) * 1024;
    },
    async kill(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
    exited,
  };
}

export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request on a fresh connection; resolves with the answer even if the server closes early. */
export function request(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: Buffer | string; timeoutMs?: number } = {},
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: options.method ?? 'POST', headers: options.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.setTimeout(options.timeoutMs ?? 15_000, () => req.destroy(new Error('client timeout')));
    req.on('error', reject);
    if (options.body !== undefined) req.end(options.body);
    else req.end();
  });
}

export function postSigned(url: string, body: Buffer | string, signature: string | null, extra: Record<string, string> = {}): Promise<HttpAnswer> {
  const headers: Record<string, string> = { 'content-type': 'application/json', ...extra };
  if (signature !== null) headers['saucelabs-sign'] = signature;
  return request(url, { body, headers });
}

/** A raw TCP connection to a relay URL: everything it answers, collected until the socket closes. */
export function rawSocket(url: string): { socket: net.Socket; received: Promise<string> } {
  const { port } = new URL(url);
  const socket = net.connect(Number(port), '127.0.0.1');
  let got = '';
  socket.setEncoding('utf8');
  socket.on('data', (d: string) => (got += d));
  socket.on('error', () => undefined);
  const received = new Promise<string>((resolve) => socket.on('close', () => resolve(got)));
  return { socket, received };
}
