/**
 * The store unavailable under a real relay process: another process holds SQLite's write lock
 * (`BEGIN EXCLUSIVE`), so the relay cannot make an event durable. It must answer 503 with
 * Retry-After (never 2xx for an event it did not store), report not-ready, and take the same
 * delivery once the lock is gone. Meanwhile it is not frozen: no statement waits on the lock inside
 * the event loop, so /healthz and /metrics answer at once while the insert is being retried.
 */
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { signBody } from '../../../src/relay/http/signature.js';
import { sauceFixture } from '../support/common.js';
import { ensureBuilt, postSigned, request, startRelayProcess, tempDir, type RelayProcess } from '../support/process.js';

const SECRET = 'store-down-secret-1234';
let relay: RelayProcess | undefined;

beforeAll(() => ensureBuilt(), 120_000);
afterAll(async () => {
  await relay?.kill('SIGKILL');
});

test('write lock held elsewhere → 503 + Retry-After and /readyz 503; released → the retry is stored', async () => {
  const dataDir = tempDir();
  relay = await startRelayProcess({ dataDir, env: { SAUCE_WEBHOOK_SECRET: SECRET, RELAY_GROUP_WINDOW: '0' } });
  const body = sauceFixture('job-vdc-failed-boolean.json');
  const url = `${relay.url}/webhook`;

  const locker = new Database(join(dataDir, 'relay.db'));
  locker.pragma('busy_timeout = 0');
  locker.exec('BEGIN EXCLUSIVE');
  try {
    // The relay retries the insert from a timer for up to 2 s, then gives up on this request.
    const post = postSigned(url, body, signBody(SECRET, body), {});
    // Meanwhile the probes answer at once (they used to wait out a 5 s busy timeout twice: 9.9 s).
    for (const path of ['/healthz', '/metrics', '/readyz']) {
      const started = performance.now();
      const probe = await request(`${relay.url}${path}`, { method: 'GET' });
      const ms = performance.now() - started;
      expect({ path, status: probe.status, fast: ms < 500 }).toEqual({ path, status: path === '/readyz' ? 503 : 200, fast: true });
    }
    const answer = await post;
    expect(answer.status).toBe(503);
    expect(answer.headers['retry-after']).toBe('5');
    expect(JSON.parse(answer.body)).toEqual({ error: 'store unavailable, retry later' });
    await relay.waitForLog((l) => l.msg === 'store unavailable');
  } finally {
    locker.exec('ROLLBACK');
    locker.close();
  }

  // Sauce (or anyone) delivers again: stored now, and not a "duplicate" of the refused attempt.
  const retry = await postSigned(url, body, signBody(SECRET, body), {});
  expect(retry.status).toBe(202);
  expect(JSON.parse(retry.body)).toMatchObject({ status: 'stored' });
  expect((await request(`${relay.url}/readyz`, { method: 'GET' })).status).toBe(200);
  await relay.waitForLog((l) => l.msg === 'dispatch sent');
  const metrics = (await request(`${relay.url}/metrics`, { method: 'GET' })).body;
  expect(metrics).toMatch(/sauce_relay_rejected_total\{reason="store_unavailable"\} 1/);
  expect(relay.child.exitCode).toBeNull();
}, 30_000);
