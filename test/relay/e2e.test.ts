/**
 * End to end: a relay process → the GitHub API double (every request checked against GitHub's
 * OpenAPI description). Faults: kill -9 after acknowledging a burst, a duplicate burst, GitHub
 * answering 503 then 429 with Retry-After, 404 dead-letters requeued through the CLI.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { envelopeSchema } from '../../src/sauce/envelope.js';
import { signBody } from '../../src/relay/http/signature.js';
import { startGitHubDouble, type GitHubDouble } from '../support/github-double.js';
import { REPO_ROOT, sauceFixture, waitFor } from './support/common.js';
import { ensureBuilt, postSigned, startRelayProcess, tempDir, type RelayProcess } from './support/process.js';

const run = promisify(execFile);
const SECRET = 'e2e-secret-abcdef';
const REPO = 'acme/web';
const DISPATCH = 'POST /repos/{owner}/{repo}/dispatches';

let double: GitHubDouble;
const running: RelayProcess[] = [];

beforeAll(async () => {
  ensureBuilt();
  double = await startGitHubDouble();
}, 120_000);
afterAll(async () => {
  await Promise.all(running.map((r) => r.kill('SIGKILL')));
  await double?.close();
});
afterEach(async () => {
  expect(double.violations).toEqual([]);
  await Promise.all(running.splice(0).map((r) => r.kill('SIGKILL')));
  double.reset();
});

async function relay(dataDir = tempDir(), extra: Record<string, string> = {}): Promise<RelayProcess> {
  const r = await startRelayProcess({
    dataDir,
    env: {
      SAUCE_WEBHOOK_SECRET: SECRET,
      GITHUB_TOKEN: 'ghs_e2etoken',
      GITHUB_API_URL: double.url,
      GITHUB_REPOSITORY: REPO,
      RELAY_GROUP_WINDOW: '200ms',
      RELAY_LEASE: '3s',
      ...extra,
    },
  });
  running.push(r);
  return r;
}

/** A distinct job event (own id and modification_time), as Sauce would send it. */
function jobEvent(id: string): Buffer {
  const base = JSON.parse(sauceFixture('job-vdc-passed.json').toString('utf8')) as Record<string, unknown>;
  return Buffer.from(JSON.stringify({ ...base, id, modification_time: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z') }, null, 1));
}

const send = (r: RelayProcess, body: Buffer) => postSigned(`${r.url}/webhook`, body, signBody(SECRET, body));

interface Delivered {
  jobId: string;
  relayId: string;
}

function delivered(): Delivered[] {
  return double.dispatches(REPO).flatMap((d) => {
    const env = envelopeSchema.parse(d.client_payload);
    return env.events.map((e) => ({ jobId: String((e.payload as { id: unknown }).id), relayId: String(e.id) }));
  });
}

function countOf(ids: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const id of ids) m.set(id, (m.get(id) ?? 0) + 1);
  return m;
}

test('events arrive as repository_dispatch with the contract envelope, grouped', async () => {
  const r = await relay();
  const bodies = [...Array.from({ length: 6 }, (_, i) => jobEvent(`env-${i}`)), sauceFixture('visual-unapproved.json')];
  const answers = await Promise.all(bodies.map((b) => send(r, b)));
  expect(answers.map((a) => a.status)).toEqual(bodies.map(() => 202));
  await waitFor(() => delivered().length >= bodies.length, 15_000, 'all events dispatched');
  const dispatches = double.dispatches(REPO);
  expect(dispatches.length).toBeLessThanOrEqual(2);
  const byId = new Map(answers.map((a, i) => [(JSON.parse(a.body) as { id: string }).id, bodies[i]!]));
  for (const d of dispatches) {
    expect(d.event_type).toBe('saucelabs');
    const payload = d.client_payload as Record<string, unknown>;
    expect(Object.keys(payload).length).toBeLessThanOrEqual(10);
    expect(Buffer.byteLength(JSON.stringify(payload))).toBeLessThan(65_536);
    const env = envelopeSchema.parse(payload);
    expect(env.version).toBe(1);
    for (const e of env.events) {
      // The Sauce event travels verbatim (as JSON), with the relay's id, route and receipt time.
      expect(e.payload).toEqual(JSON.parse(byId.get(String(e.id))!.toString('utf8')));
      expect(e.route).toBe('default');
      expect(Number.isNaN(Date.parse(String(e.received_at)))).toBe(false);
    }
  }
  // The token went out as GitHub expects it.
  const req = double.requests.find((q) => q.route === DISPATCH)!;
  expect(req.headers.authorization).toMatch(/ghs_e2etoken/);
});

test('kill -9 right after acknowledging a burst, then restart: every acknowledged event is delivered', async () => {
  const dataDir = tempDir();
  // Phase 1: killed before the grouping window even closed.
  let r = await relay(dataDir);
  const first = Array.from({ length: 25 }, (_, i) => `kill-a-${i}`);
  const a1 = await Promise.all(first.map((id) => send(r, jobEvent(id))));
  expect(a1.every((a) => a.status === 202)).toBe(true);
  await r.kill('SIGKILL');

  // Phase 2: killed while a dispatch of claimed events is in flight (GitHub slow to answer).
  double.setInterceptor((q) => (q.route === DISPATCH ? { status: 503, delayMs: 3000 } : undefined));
  r = await relay(dataDir);
  const second = Array.from({ length: 25 }, (_, i) => `kill-b-${i}`);
  const a2 = await Promise.all(second.map((id) => send(r, jobEvent(id))));
  expect(a2.every((a) => a.status === 202)).toBe(true);
  await waitFor(() => double.requests.some((q) => q.route === DISPATCH && q.status === 0), 10_000, 'a dispatch in flight');
  await r.kill('SIGKILL');
  double.setInterceptor(null);

  r = await relay(dataDir);
  const all = [...first, ...second];
  await waitFor(
    () => {
      const got = new Set(delivered().map((d) => d.jobId));
      return all.every((id) => got.has(id));
    },
    30_000,
    'every acknowledged event delivered after restart',
  );
});

test('a duplicate burst leads to one dispatch', async () => {
  const r = await relay();
  const body = jobEvent('dup-1');
  const answers = await Promise.all(Array.from({ length: 12 }, () => send(r, body)));
  const statuses = answers.map((a) => a.status).sort();
  expect(statuses.filter((s) => s === 202)).toHaveLength(1);
  expect(statuses.filter((s) => s === 200)).toHaveLength(11);
  expect(new Set(answers.map((a) => (JSON.parse(a.body) as { id: string }).id)).size).toBe(1);
  await waitFor(() => delivered().length >= 1, 10_000, 'the dispatch');
  await new Promise((res) => setTimeout(res, 1500));
  expect(delivered().filter((d) => d.jobId === 'dup-1')).toHaveLength(1);
  expect(double.dispatches(REPO)).toHaveLength(1);
});

test('GitHub answers 503, then 429 with Retry-After, then recovers: all delivered, none twice', async () => {
  double.failNext(DISPATCH, [
    { status: 503, body: { message: 'Service Unavailable' } },
    { status: 503, body: { message: 'Service Unavailable' } },
    { status: 429, headers: { 'retry-after': '1' }, body: { message: 'API rate limit exceeded' } },
  ]);
  const r = await relay(tempDir(), { RELAY_GROUP_WINDOW: '0' });
  const ids = Array.from({ length: 8 }, (_, i) => `flaky-${i}`);
  for (const id of ids) expect((await send(r, jobEvent(id))).status).toBe(202);
  await waitFor(
    () => {
      const got = new Set(delivered().map((d) => d.jobId));
      return ids.every((id) => got.has(id));
    },
    30_000,
    'all delivered after GitHub recovered',
  );
  const failed = double.requests.filter((q) => q.route === DISPATCH && q.status !== 204).map((q) => q.status);
  expect(failed).toEqual([503, 503, 429]);
  const counts = countOf(delivered().map((d) => d.jobId));
  for (const id of ids) expect(counts.get(id)).toBe(1);
  await r.waitForLog((l) => l.msg === 'dispatch failed; will retry');
});

test('404 dead-letters; `outbox dead` shows it and `outbox retry --all` delivers it', async () => {
  double.failNext(DISPATCH, [{ status: 404, body: { message: 'Not Found' } }]);
  const dataDir = tempDir();
  const r = await relay(dataDir, { RELAY_GROUP_WINDOW: '0' });
  expect((await send(r, jobEvent('dead-1'))).status).toBe(202);
  await r.waitForLog((l) => l.msg === 'dispatch rejected; dead-lettered', 10_000);
  const cli = (args: string[]) =>
    run(process.execPath, [join(REPO_ROOT, 'lib/relay/cli.js'), ...args], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? '', RELAY_DATA_DIR: dataDir },
      timeout: 15_000,
    });
  const dead = await cli(['outbox', 'dead']);
  expect(dead.stdout).toMatch(/dead=1/);
  expect(dead.stdout).toMatch(/dead\s+.*default\s+acme\/web/);
  const retried = await cli(['outbox', 'retry', '--all']);
  expect(retried.stdout).toMatch(/requeued /);
  await waitFor(() => delivered().some((d) => d.jobId === 'dead-1'), 15_000, 'the requeued event delivered');
});
