/**
 * A throwaway PostgreSQL server for the tests: `initdb` into a temporary folder and `pg_ctl` on a
 * free loopback port, with the binaries found on PATH or in Debian's place for them
 * (/usr/lib/postgresql/<version>/bin). PostgreSQL refuses to run as root, and CI runs as root: then
 * the server runs as the unprivileged user `nobody`, in a folder that user owns.
 *
 * `RELAY_TEST_DATABASE_URL` names an existing server instead: each `startPostgres()` then gets a
 * database of its own on it (and `restart()` is not available).
 *
 * Where neither is there, `postgresAvailable()` is false and the callers skip their tests with one
 * visible line (`skipLine`).
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { freePort } from './ports.js';

export interface PostgresServer {
  /** `postgres://…` of a database that belongs to this server (or to this caller, on a shared one). */
  readonly url: string;
  /** Stop and start again on the same port and data (a database restart, as an operator does it). */
  restart(): Promise<void>;
  /** Stop the server (`pg_ctl stop -m fast`), or only wait while it is down, e.g. to test outages. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stop and delete everything. */
  close(): Promise<void>;
}

const NOBODY = { uid: 65534, gid: 65534 };

function binDir(): string | null {
  const onPath = spawnSync('sh', ['-c', 'command -v initdb && command -v pg_ctl'], { encoding: 'utf8' });
  if (onPath.status === 0) return dirname(onPath.stdout.split('\n')[0]!.trim());
  const debian = '/usr/lib/postgresql';
  if (!existsSync(debian)) return null;
  const versions = readdirSync(debian)
    .filter((v) => /^\d+$/.test(v) && existsSync(join(debian, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions.length > 0 ? join(debian, versions[0]!, 'bin') : null;
}

const BIN = binDir();
const SHARED_URL = process.env.RELAY_TEST_DATABASE_URL?.trim() || null;

export function postgresAvailable(): boolean {
  return SHARED_URL !== null || BIN !== null;
}

/** The one line a test file prints when it skips for want of PostgreSQL. */
export function skipLine(what: string): string {
  return `${what}: skipped, no PostgreSQL here (install Debian's postgresql package, or set RELAY_TEST_DATABASE_URL=postgres://…); .ci/run installs it`;
}

function run(cmd: string, args: string[], asNobody: boolean): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(asNobody ? NOBODY : {}),
      env: { PATH: process.env.PATH ?? '', LANG: 'C', LC_ALL: 'C' },
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

/** A fresh database on the shared server named by RELAY_TEST_DATABASE_URL (dropped on close). */
async function sharedDatabase(): Promise<PostgresServer> {
  const base = new URL(SHARED_URL!);
  const name = `relay_test_${randomBytes(6).toString('hex')}`;
  const psql = (sql: string) => run('psql', [base.href, '-v', 'ON_ERROR_STOP=1', '-qc', sql], false);
  const made = await psql(`CREATE DATABASE ${name}`);
  if (made.code !== 0) throw new Error(`RELAY_TEST_DATABASE_URL: cannot create a test database: ${made.output}`);
  const url = new URL(base.href);
  url.pathname = `/${name}`;
  const unsupported = async () => {
    throw new Error('restart/stop/start need the throwaway server: unset RELAY_TEST_DATABASE_URL');
  };
  return {
    url: url.href,
    restart: unsupported,
    stop: unsupported,
    start: unsupported,
    async close() {
      await psql(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}

export async function startPostgres(): Promise<PostgresServer> {
  if (SHARED_URL !== null) return sharedDatabase();
  if (BIN === null) throw new Error(skipLine('startPostgres'));
  const asNobody = process.getuid?.() === 0;
  const dir = mkdtempSync(join(tmpdir(), 'relay-pg-'));
  const data = join(dir, 'data');
  const log = join(dir, 'server.log');
  if (asNobody) {
    chmodSync(dir, 0o755);
    chownSync(dir, NOBODY.uid, NOBODY.gid);
  }
  const init = await run(join(BIN, 'initdb'), ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-instructions'], asNobody);
  if (init.code !== 0) throw new Error(`initdb failed: ${init.output}`);
  const port = await freePort();
  const options = `-p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c max_connections=200`;
  const pgCtl = (...args: string[]) => run(join(BIN, 'pg_ctl'), ['-D', data, ...args], asNobody);
  let running = false;
  const start = async (): Promise<void> => {
    const r = await pgCtl('start', '-w', '-t', '60', '-l', log, '-o', options);
    if (r.code !== 0) throw new Error(`pg_ctl start failed: ${r.output}\n${existsSync(log) ? readFileSync(log, 'utf8').slice(-2000) : ''}`);
    running = true;
  };
  const stop = async (): Promise<void> => {
    if (!running) return;
    const r = await pgCtl('stop', '-w', '-t', '60', '-m', 'fast');
    if (r.code !== 0) throw new Error(`pg_ctl stop failed: ${r.output}`);
    running = false;
  };
  await start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    start,
    stop,
    async restart() {
      await stop();
      await start();
    },
    async close() {
      try {
        await stop();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
