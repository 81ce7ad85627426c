/**
 * The console mounted in the relay's Node server (`startRelay`), in process, on the real stores:
 * off without the admin token (404, nothing recorded); with it, refused requests recorded through
 * the recorder into the store, a dead letter with GitHub's answer, a requeue that is dispatched,
 * a 408 with its route and bytes, a flood of unsigned requests that stays bounded while signed
 * events are still stored, and (on PostgreSQL) every instance's refusals in every console.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { signBody } from '../../../src/relay/http/signature.js';
import { startRelay, type RunningRelay } from '../../../src/relay/http/server.js';
import type { StoreWithConsole } from '../../../src/relay/console/source.js';
import { createMetrics } from '../../../src/relay/metrics.js';
import { startGitHubDouble, type GitHubDouble } from '../../support/github-double.js';
import { postgresAvailable, startPostgres, type PostgresServer } from '../../support/postgres.js';
import { quickConfig, sauceFixture, silentLogger, waitFor } from '../support/common.js';
import { FIXTURE_AGE_ENV, datedNow, postSigned, rawSocket, request, tempDir } from '../support/process.js';
import { ADMIN_TOKEN } from './support.js';

const SECRET = 'mounted-console-secret-0123';
const DISPATCH = 'POST /repos/{owner}/{repo}/dispatches';
const bearer = { authorization: `Bearer ${ADMIN_TOKEN}` };

let github: GitHubDouble;
const running: RunningRelay[] = [];

beforeAll(async () => {
  github = await startGitHubDouble();
});
afterEach(async () => {
  for (const r of running.splice(0)) await r.stop(1_000);
  expect(github.violations).toEqual([]);
  github.reset();
});
afterAll(async () => {
  await github?.close();
});

async function relay(env: Record<string, string> = {}): Promise<RunningRelay> {
  const config = quickConfig({
    SAUCE_WEBHOOK_SECRET: SECRET,
    GITHUB_REPOSITORY: 'acme/web',
    GITHUB_TOKEN: 'ghs_mountedconsole',
    GITHUB_API_URL: github.url,
    RELAY_DATA_DIR: tempDir(),
    PORT: '0',
    RELAY_HOST: '127.0.0.1',
    RELAY_GROUP_WINDOW: '0',
    ...FIXTURE_AGE_ENV,
    ...env,
  });
  const r = await startRelay(config, { logger: silentLogger, metrics: createMetrics({ defaultMetrics: false }) });
  running.push(r);
  return r;
}

const job = (id: string) => datedNow(sauceFixture('job-vdc-failed-boolean.json'), Date.now(), { id });
const send = (r: RunningRelay, body: Buffer, sig: string | null = signBody(SECRET, body), path = '/webhook') => postSigned(`${r.url}${path}`, body, sig);
// biome-ignore lint/suspicious/noExplicitAny: the tests read the JSON API's answers field by field
const api = async (r: RunningRelay, path: string, init: { method?: string } = {}): Promise<{ status: number; json: any }> => {
  const answer = await request(`${r.url}${path}`, {
    method: init.method ?? 'GET',
    headers: { ...bearer, 'content-type': 'application/json' },
    ...(init.method === 'POST' ? { body: '{}' } : {}),
  });
  return { status: answer.status, json: answer.body ? JSON.parse(answer.body) : null };
};

test('without the admin token: /console and /api answer 404 as before, and nothing is recorded', async () => {
  const r = await relay();
  for (const path of ['/console', '/console/login', '/api/deliveries', '/api/session']) {
    const answer = await request(`${r.url}${path}`, { method: 'GET', headers: bearer });
    expect({ path, status: answer.status, body: answer.body }).toEqual({ path, status: 404, body: '{"error":"not found"}' });
  }
  expect((await send(r, job('no-console-1'))).status).toBe(202);
  expect((await send(r, job('no-console-2'), 'wrong')).status).toBe(401);
  await sleep(1_200);
  expect(
    await (r.store as unknown as StoreWithConsole).console.listRequests({ after: null, limit: 10, route: null, repo: null, codes: null, since: 0 }),
  ).toEqual([]);
});

test('with the token: refusals recorded off the request path, a dead letter with GitHub’s answer, requeued and dispatched', async () => {
  const r = await relay({ RELAY_ADMIN_TOKEN: ADMIN_TOKEN, RELAY_REQUEST_TIMEOUT: '1s', RELAY_HEADERS_TIMEOUT: '1s' });
  github.failNext(DISPATCH, [{ status: 404, body: { message: 'Not Found' } }]);
  const stored = await send(r, job('mounted-dead'));
  expect(stored.status).toBe(202);
  const id = (JSON.parse(stored.body) as { id: string }).id;
  expect((await send(r, job('mounted-wrong'), signBody('not-the-secret', job('mounted-wrong')))).status).toBe(401);
  expect((await send(r, Buffer.from('{"not json'))).status).toBe(400);
  expect((await send(r, job('x'), null, '/webhook/typo')).status).toBe(404);
  // A body that stops coming: 408 from the server's own timeout, recorded with its route and bytes.
  const slow = rawSocket(r.url);
  slow.socket.write('POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"id":');
  expect(await slow.received).toMatch(/^HTTP\/1\.1 408/);

  let items: { id: string; outcome: { state: string; code?: string; status?: number } }[] = [];
  await waitFor(
    async () => {
      items = (await api(r, '/api/deliveries?limit=50')).json.items;
      return items.filter((i) => i.outcome.state === 'refused').length === 4 && items.some((i) => i.id === id && i.outcome.state === 'dead');
    },
    15_000,
    'the refusals recorded and the event dead-lettered',
  );
  expect(items.filter((i) => i.outcome.state === 'refused').map((i) => [i.outcome.code, i.outcome.status])).toEqual([
    ['timeout', 408],
    ['not_found', 404],
    ['not_json', 400],
    ['signature', 401],
  ]);
  const timeout = items.find((i) => i.outcome.code === 'timeout')!;
  expect((await api(r, `/api/deliveries/${timeout.id}`)).json.request).toMatchObject({ route: 'default', bytes: 6, source: '127.0.0.1' });
  const signature = items.find((i) => i.outcome.code === 'signature')!;
  const record = (await api(r, `/api/deliveries/${signature.id}`)).json.request;
  expect(record.signature).toMatch(/^[0-9a-f]{8}…$/);
  expect(JSON.stringify(record)).not.toContain(signBody('not-the-secret', job('mounted-wrong')).slice(8));

  const dead = (await api(r, `/api/deliveries/${id}`)).json;
  expect(dead.summary.outcome).toMatchObject({ state: 'dead', reason: expect.stringContaining('404') });
  expect(dead.attempts).toEqual([
    { at: expect.any(Number), dispatchId: expect.stringMatching(/^d-/), events: 1, status: 404, message: 'Not Found', result: 'fatal', code: 'not_found' },
  ]);

  // GitHub accepts again; the requeue is sent without waiting for anything else.
  expect((await api(r, `/api/deliveries/${id}/requeue`, { method: 'POST' })).json).toEqual({ ok: true, count: 1 });
  await waitFor(async () => (await api(r, `/api/deliveries/${id}`)).json.summary.outcome.state === 'dispatched', 15_000, 'the requeued event dispatched');
  const after = (await api(r, `/api/deliveries/${id}`)).json;
  expect(after.attempts.map((a: { status: number }) => a.status)).toEqual([404, 204]);
  expect(after.summary.outcome).toMatchObject({ state: 'dispatched', status: 204, message: 'accepted' });
  expect(github.countRequests((q) => q.route === DISPATCH)).toBe(2);
}, 60_000);

test('a flood of unsigned requests: at most 100 recorded a second, the rest counted; signed events are still stored', async () => {
  const r = await relay({ RELAY_ADMIN_TOKEN: ADMIN_TOKEN });
  const started = Date.now();
  const garbage = Buffer.from('{"id":"flood"}');
  const flood = Promise.all(Array.from({ length: 1_500 }, () => send(r, garbage, 'f'.repeat(64)).then((a) => a.status)));
  const signed = await Promise.all(Array.from({ length: 20 }, (_, i) => send(r, job(`during-flood-${i}`)).then((a) => a.status)));
  const statuses = await flood;
  expect(statuses.every((s) => s === 401)).toBe(true);
  expect(signed).toEqual(signed.map(() => 202));
  await sleep(1_100);
  const seconds = (Date.now() - started) / 1000;
  const store = (r.store as unknown as StoreWithConsole).console;
  const recorded = (await store.listRequests({ after: null, limit: 10_000, route: null, repo: null, codes: null, since: 0 })).length;
  const dropped = (await r.metrics.consoleRequestsDropped.get()).values[0]?.value ?? 0;
  // One write a second at most, of at most 100: the rows follow the clock, not the flood.
  expect(recorded).toBeLessThanOrEqual(100 * Math.ceil(seconds + 1));
  expect(recorded + dropped).toBe(1_500);
  expect(dropped).toBeGreaterThan(0);
  expect((await store.listEvents({ after: null, limit: 100, route: null, repo: null, states: null, attempted: null })).length).toBe(20);
}, 60_000);

const withPostgres = postgresAvailable() ? describe : describe.skip;

withPostgres('two instances on one PostgreSQL database', () => {
  let pg: PostgresServer;
  beforeAll(async () => {
    pg = await startPostgres();
  }, 60_000);
  afterAll(async () => {
    await pg?.close();
  }, 60_000);

  test("each console shows the other instance's refusals and events", async () => {
    const env = { RELAY_ADMIN_TOKEN: ADMIN_TOKEN, RELAY_DATABASE_URL: pg.url };
    const a = await relay(env);
    const b = await relay(env);
    expect((await send(a, job('pg-a'), 'wrong')).status).toBe(401);
    const stored = await send(b, job('pg-b'));
    expect(stored.status).toBe(202);
    const id = (JSON.parse(stored.body) as { id: string }).id;
    for (const r of [a, b]) {
      await waitFor(
        async () => {
          const items: { id: string; outcome: { state: string } }[] = (await api(r, '/api/deliveries')).json.items;
          return items.some((i) => i.outcome.state === 'refused') && items.some((i) => i.id === id);
        },
        15_000,
        'both in each console',
      );
    }
  }, 60_000);
});
