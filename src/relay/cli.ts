#!/usr/bin/env node
/**
 * sauce-relay: run the relay and talk to it.
 *
 *   sauce-relay [serve]                           run the relay (zero config: dry-run, generated secret)
 *   sauce-relay send [<file>|--sample] --url <webhook url> [--secret <s>|--secret-file <f>] [--unsigned]
 *   sauce-relay sign <file> --secret <s>          print the saucelabs-sign value for a body
 *   sauce-relay check-config                      validate RELAY_CONFIG / the environment
 *   sauce-relay outbox list [--state pending|dead|delivered] [--limit N]
 *   sauce-relay outbox dead                       dead-lettered events and why
 *   sauce-relay outbox retry <id>|--all           put dead events back in the queue
 *   sauce-relay outbox watches                    Visual builds re-read from Sauce until reviewed
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULTS, describeConfig, loadConfig, redactUrl, withSecrets, type ConfigResult } from './config/index.js';
import { splitList } from './config/env.js';
import { databaseUrlProblem, shownDatabaseUrl } from './config/url.js';
import { createLogger } from './logger.js';
import { startRelay } from './http/server.js';
import { selfCommand } from './invocation.js';
import { signBody } from './http/signature.js';
import { openPostgresStore, type PostgresEventStore } from './outbox/postgres-store.js';
import { openSqliteStore, type SqliteEventStore } from './outbox/sqlite-store.js';
import type { EventState, StoredEvent, VisualWatch } from './outbox/store.js';

export const SECRET_FILE = 'webhook-secret';

const USAGE = `usage: sauce-relay <command>

  serve                     run the relay (default). Quick mode from env, or RELAY_CONFIG=<file>
  send [<file>] --url <u>   sign a body as Sauce Labs does and POST it
       [--secret <s> | --secret-file <f>] [--sample] [--unsigned]
  sign <file> --secret <s>  print the saucelabs-sign header value for a body
  check-config              validate the configuration and print it (without secrets)
  outbox list [--state pending|dead|delivered] [--limit N]
  outbox dead               dead-lettered events with the reason
       (every outbox command: the relay's store, or --data-dir <dir> | --database-url <postgres://…>)
  outbox retry <id> | --all put dead-lettered events back in the queue
  outbox watches            Visual builds awaiting review that the relay re-reads from Sauce
`;

function fail(message: string, code = 2): never {
  process.stderr.write(message.endsWith('\n') ? message : `${message}\n`);
  process.exit(code);
}

/** The quick-mode secret: read from the data dir, or generated and persisted there (mode 0600). */
export function ensureSecret(dataDir: string): { secret: string; fresh: boolean; path: string } {
  const path = join(dataDir, SECRET_FILE);
  mkdirSync(dataDir, { recursive: true });
  if (existsSync(path)) {
    const secret = readFileSync(path, 'utf8').trim();
    if (secret !== '') return { secret, fresh: false, path };
  }
  // Hex: 192 bits, and never a leading `-`, which a command line would take for an option (a
  // base64url secret began with one once in 64 starts, and the printed sample command failed).
  const secret = randomBytes(24).toString('hex');
  writeFileSync(path, `${secret}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
  return { secret, fresh: true, path };
}

/** A valid Sauce job event with a fresh id, so each sample is a new event (not a duplicate). */
export function sampleEvent(now = new Date()): string {
  const time = now.toISOString().replace(/\.\d{3}Z$/, 'Z');
  const event = {
    id: randomUUID().replace(/-/g, ''),
    creation_time: time,
    modification_time: time,
    owner: 'sample-user',
    status: 'PASSED',
    passed: true,
    name: 'sample: relay smoke test',
    browser_name: 'chrome',
    browser_version: '128.0.6613.84',
    os_name: 'Windows',
    os_version: '11',
    duration_sec: 12,
    tags: ['sample'],
    commit_id: '0000000000000000000000000000000000000000',
    branch_name: 'main',
    build: 'sample build',
    error: '',
    data_type: 'vdc',
  };
  return `${JSON.stringify(event, null, 2)}\n`;
}

/** `serve` and `check-config` load the configuration the same way: every error at once, exit 2. */
function loadOrExit(): Extract<ConfigResult, { ok: true }> {
  const result = loadConfig(process.env);
  if (!result.ok) {
    fail(`configuration error${result.errors.length > 1 ? 's' : ''}:\n${result.errors.map((e) => `  - ${e}`).join('\n')}`);
  }
  return result;
}

async function serve(): Promise<void> {
  const loaded = loadOrExit();
  let config = loaded.config;
  const logger = createLogger({ level: config.logLevel });
  for (const w of loaded.warnings) logger.warn(w);
  let generated: ReturnType<typeof ensureSecret> | null = null;
  if (config.needsGeneratedSecret) {
    generated = ensureSecret(config.dataDir);
    config = withSecrets(config, [generated.secret]);
  }
  const relay = await startRelay(config, { logger });
  const shown = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
  const base = `http://${shown}:${relay.port}`;
  logger.info({ url: relay.url, ...describeConfig(config) }, 'relay listening');
  if (config.mode === 'quick') {
    const webhook = `${base}${config.routes[0]!.path}`;
    const secretPath = relative(process.cwd(), generated?.path ?? '') || generated?.path;
    if (generated?.fresh) {
      process.stdout.write(
        `${[
          '',
          `  Sauce Labs relay is running${config.dryRun ? ' (dry-run: no GitHub credentials, dispatches are only logged)' : ''}`,
          '',
          `  Webhook URL:  ${webhook}   (behind your public HTTPS hostname)`,
          `  Secret:       ${generated.secret}`,
          `                (generated now and kept in ${secretPath}, for trying the relay locally;`,
          '                 for Sauce Labs, set SAUCE_WEBHOOK_SECRET to the webhook security token it shows)',
          '',
          '  Send it a sample event:',
          `    ${selfCommand(process.argv[1] ?? '')} send --sample --url ${webhook} --secret=${generated.secret}`,
          '',
        ].join('\n')}\n`,
      );
    } else if (generated) {
      process.stdout.write(`\n  Sauce Labs relay: ${webhook}  (secret in ${secretPath})\n\n`);
    }
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    logger.info({ signal }, 'stopping: finishing requests in flight, unsent events stay stored');
    relay.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err: err instanceof Error ? err.message : String(err) }, 'unclean stop');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

function readSecret(values: { secret?: string | undefined; 'secret-file'?: string | undefined }): string {
  if (values.secret) return values.secret;
  if (values['secret-file']) return readFileSync(values['secret-file'], 'utf8').trim();
  const fromEnv = splitList(process.env.SAUCE_WEBHOOK_SECRET ?? '')[0];
  if (fromEnv) return fromEnv;
  const stored = join(process.env.RELAY_DATA_DIR || DEFAULTS.dataDir, SECRET_FILE);
  if (existsSync(stored)) return readFileSync(stored, 'utf8').trim();
  return fail('no secret: pass --secret <secret> or --secret-file <file> (or set SAUCE_WEBHOOK_SECRET)');
}

async function send(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      url: { type: 'string' },
      secret: { type: 'string' },
      'secret-file': { type: 'string' },
      sample: { type: 'boolean' },
      unsigned: { type: 'boolean' },
    },
  });
  if (!values.url) fail(`send: --url <webhook url> is required\n${USAGE}`);
  const file = positionals[0];
  if (!file && !values.sample) fail('send: give a file with the event body, or --sample');
  const body = file ? readFileSync(file) : Buffer.from(sampleEvent(), 'utf8');
  const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'sauce-relay-cli' };
  if (!values.unsigned) headers['saucelabs-sign'] = signBody(readSecret(values), body);
  let response: Response;
  try {
    response = await fetch(values.url, { method: 'POST', headers, body });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code;
    return fail(`send: cannot reach ${redactUrl(values.url)}${cause ? ` (${cause})` : ''}`, 1);
  }
  const text = await response.text();
  process.stdout.write(`${response.status} ${text}\n`);
  process.exitCode = response.ok ? 0 : 1;
}

function sign(args: string[]): void {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { secret: { type: 'string' }, 'secret-file': { type: 'string' } },
  });
  const file = positionals[0];
  if (!file) fail(`sign: give the file whose bytes to sign\n${USAGE}`);
  process.stdout.write(`${signBody(readSecret(values), readFileSync(file))}\n`);
}

function checkConfig(): void {
  const result = loadOrExit();
  for (const w of result.warnings) process.stderr.write(`warning: ${w}\n`);
  process.stdout.write(`${JSON.stringify(describeConfig(result.config), null, 2)}\n`);
  process.stdout.write('configuration OK\n');
}

function formatEvent(e: StoredEvent): string {
  const when = new Date(e.receivedAt).toISOString();
  const err = e.lastError ? `  ${e.lastError}` : '';
  return `${e.id}  ${e.state.padEnd(9)} ${when}  ${e.route}  ${e.repo}  attempts=${e.attempts}${err}`;
}

function formatWatch(w: VisualWatch): string {
  let status = '?';
  try {
    status = String((JSON.parse(w.body) as { status?: unknown }).status);
  } catch {
    /* shown as ? */
  }
  const err = w.lastError ? `  ${w.lastError}` : '';
  return `${w.buildId}  ${status.padEnd(10)} ${w.route}  ${w.repo}  next=${new Date(w.nextCheckAt).toISOString()}  until=${new Date(w.expiresAt).toISOString()}  checks=${w.checks}${err}`;
}

/**
 * The store the relay uses: `--database-url`, else `--data-dir`, else what the configuration names
 * (RELAY_DATABASE_URL / database_url, or the data directory).
 */
async function openOutboxStore(dataDirFlag: string | undefined, urlFlag: string | undefined): Promise<SqliteEventStore | PostgresEventStore> {
  const result = dataDirFlag || urlFlag ? null : loadConfig(process.env);
  const url = urlFlag ?? (result?.ok ? result.config.databaseUrl : dataDirFlag ? null : process.env.RELAY_DATABASE_URL?.trim() || null);
  if (url) {
    const problem = databaseUrlProblem(url);
    if (problem !== null) fail(`outbox: ${shownDatabaseUrl(url)} is not a postgres:// URL (${problem})`);
    try {
      return await openPostgresStore(url, { maxConnections: 2 });
    } catch (err) {
      return fail(`outbox: cannot open the database ${shownDatabaseUrl(url)}: ${err instanceof Error ? err.message : String(err)}`, 1);
    }
  }
  const dataDir = dataDirFlag || (result?.ok ? result.config.dataDir : process.env.RELAY_DATA_DIR || DEFAULTS.dataDir);
  if (!existsSync(dataDir)) fail(`outbox: no data directory at ${dataDir} (set RELAY_DATA_DIR or --data-dir, or RELAY_DATABASE_URL or --database-url)`);
  return openSqliteStore(dataDir);
}

async function outbox(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      state: { type: 'string' },
      limit: { type: 'string' },
      all: { type: 'boolean' },
      'data-dir': { type: 'string' },
      'database-url': { type: 'string' },
    },
  });
  const sub = positionals[0] ?? 'list';
  const limit = values.limit ? Number(values.limit) : 100;
  if (!Number.isInteger(limit) || limit < 1) fail('outbox: --limit must be a positive integer');
  const store = await openOutboxStore(values['data-dir'], values['database-url']);
  try {
    if (sub === 'list' || sub === 'dead') {
      const state = (sub === 'dead' ? 'dead' : (values.state ?? 'pending')) as EventState;
      if (!['pending', 'dead', 'delivered'].includes(state)) fail('outbox list: --state is pending, dead or delivered');
      const stats = await store.stats();
      process.stdout.write(`pending=${stats.pending} delivered=${stats.delivered} dead=${stats.dead}\n`);
      for (const e of await store.list(state, limit)) process.stdout.write(`${formatEvent(e)}\n`);
    } else if (sub === 'retry') {
      const ids = values.all ? (await store.list('dead', 1_000_000)).map((e) => e.id) : positionals.slice(1);
      if (ids.length === 0) fail('outbox retry: give an event id (see `outbox dead`) or --all');
      let missing = 0;
      for (const id of ids) {
        if (await store.requeue(id, Date.now())) process.stdout.write(`requeued ${id}\n`);
        else {
          missing += 1;
          process.stderr.write(`no dead event ${id}\n`);
        }
      }
      process.stdout.write('a running relay (any instance, on a shared database) sends requeued events within its next poll, about a second\n');
      if (missing > 0) process.exitCode = 1;
    } else if (sub === 'watches') {
      const watches = await store.listVisualWatches(limit);
      process.stdout.write(`visual builds watched: ${watches.length}${watches.length === limit ? '+' : ''}\n`);
      for (const w of watches) process.stdout.write(`${formatWatch(w)}\n`);
    } else {
      fail(`outbox: unknown subcommand ${sub}\n${USAGE}`);
    }
  } finally {
    await store.close();
  }
}

export async function main(argv: string[]): Promise<void> {
  const [command = 'serve', ...rest] = argv;
  switch (command) {
    case 'serve':
      return serve();
    case 'send':
      return send(rest);
    case 'sign':
      return sign(rest);
    case 'check-config':
      return checkConfig();
    case 'outbox':
      return outbox(rest);
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return;
    default:
      fail(`unknown command: ${command}\n${USAGE}`);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  fail(`sauce-relay: ${err instanceof Error ? err.message : String(err)}`, 1);
});
