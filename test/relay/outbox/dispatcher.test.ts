import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import Database from 'better-sqlite3';
import { Dispatcher, buildDispatches, groupReadyAt, planDispatches, type DispatcherOptions } from '../../../src/relay/outbox/dispatcher.js';
import { createDispatchClient, type DispatchClient } from '../../../src/relay/outbox/dispatch-client.js';
import { openSqliteStore, type SqliteEventStore } from '../../../src/relay/outbox/sqlite-store.js';
import { createLogger } from '../../../src/relay/logger.js';
import { createMetrics, type RelayMetrics } from '../../../src/relay/metrics.js';
import type { NewEvent, StoredEvent } from '../../../src/relay/outbox/store.js';
import { DISPATCH_MAX_KEYS, DISPATCH_MAX_PAYLOAD_BYTES, payloadBytes } from '../../../src/github/limits.js';
import { makeEnvelope } from '../../../src/sauce/envelope.js';
import { startGitHubDouble, type GitHubDouble } from '../../support/github-double.js';
import { waitFor } from '../support/common.js';

const DISPATCH = 'POST /repos/{owner}/{repo}/dispatches';
const DAY = 86_400_000;
const TOKEN = 'ghp_dispatcher_test_token_0123456789';

/** A realistic Sauce job event (shape of test/fixtures/sauce/job-vdc-passed.json), pretty-printed as Sauce sends it. */
function jobBody(n: number, extra: Record<string, unknown> = {}): string {
  return JSON.stringify(
    {
      id: randomBytes(16).toString('hex'),
      creation_time: '2025-09-02T14:03:11Z',
      modification_time: `2025-09-02T14:05:${String(n % 60).padStart(2, '0')}Z`,
      owner: 'jsmith',
      owner_id: '3f1c0c2e9a8b4d6f8e7a6b5c4d3e2f10',
      org_id: '7a9e2b4c6d8f4a1b9c3e5d7f9a1b3c5d',
      team_id: 'b2d4f6a8c0e24b6d8f0a2c4e6a8c0e2f',
      team_name: 'Web QA',
      group_id: '5e7a9c1b3d5f4e7a9c1b3d5f7e9a1c3b',
      status: 'PASSED',
      passed: 1,
      name: `test ${n} should succeed`,
      browser_name: 'chrome',
      browser_version: '128.0.6613.84',
      os_name: 'Windows',
      os_version: '11',
      duration_sec: 126,
      visibility: 'TEAM',
      tags: ['e2e', 'smoke'],
      device: '',
      app: '',
      error: '',
      exception: '',
      commit_id: '9fceb02d0ae598e95dc970b74767f19372d61af8',
      branch_name: 'feature/login',
      build: 'shop-web #1234',
      automation_backend: 'webdriver',
      data_type: 'vdc',
      ...extra,
    },
    null,
    2,
  );
}

function newEvent(n: number, overrides: Partial<NewEvent> & { extra?: Record<string, unknown> } = {}): NewEvent {
  const { extra, ...rest } = overrides;
  const body = rest.body ?? jobBody(n, extra);
  return {
    route: 'default',
    repo: 'acme/shop',
    eventType: 'saucelabs',
    body,
    bodyHash: createHash('sha256').update(body).digest('hex'),
    receivedAt: Date.now(),
    ...rest,
  };
}

function stored(n: number, overrides: Partial<StoredEvent> & { extra?: Record<string, unknown> } = {}): StoredEvent {
  const { extra, ...rest } = overrides;
  return {
    ...newEvent(n, { extra }),
    id: `ev-${n}`,
    state: 'pending',
    attempts: 0,
    nextAttemptAt: 0,
    lastError: null,
    receivedAt: 1_700_000_000_000 + n,
    ...rest,
  };
}

function capture() {
  const lines: Record<string, unknown>[] = [];
  const raw: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) {
        raw.push(line);
        lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      cb();
    },
  });
  return { logger: createLogger({ level: 'info', destination }), lines, raw };
}

const sentIds = (gh: GitHubDouble, repo = 'acme/shop'): string[] =>
  gh.dispatches(repo).flatMap((d) => ((d.client_payload as { events: { id: string }[] }).events ?? []).map((e) => e.id));

describe('buildDispatches (pure)', () => {
  it('groups by repo + event_type and wraps each payload verbatim in the v1 envelope', () => {
    const events = [stored(1), stored(2, { repo: 'acme/web' }), stored(3), stored(4, { eventType: 'sauce-visual' })];
    const out = buildDispatches(events);
    expect(out.map((d) => [d.repo, d.eventType, d.events.map((e) => e.id)])).toEqual([
      ['acme/shop', 'saucelabs', ['ev-1', 'ev-3']],
      ['acme/web', 'saucelabs', ['ev-2']],
      ['acme/shop', 'sauce-visual', ['ev-4']],
    ]);
    expect(out[0]?.clientPayload).toEqual({
      version: 1,
      events: [
        { payload: JSON.parse(events[0]!.body), id: 'ev-1', received_at: new Date(events[0]!.receivedAt).toISOString(), route: 'default' },
        { payload: JSON.parse(events[2]!.body), id: 'ev-3', received_at: new Date(events[2]!.receivedAt).toISOString(), route: 'default' },
      ],
    });
  });

  it('orders a group by receipt', () => {
    const out = buildDispatches([stored(2, { receivedAt: 20 }), stored(1, { receivedAt: 10 })]);
    expect(out[0]?.events.map((e) => e.id)).toEqual(['ev-1', 'ev-2']);
  });

  it('splits exactly at the 64 KB edge', () => {
    const a = stored(1, { extra: { pad: 'a'.repeat(30_000) } });
    const sizeWith = (q: number) =>
      payloadBytes(
        makeEnvelope(
          [a, stored(2, { extra: { pad: 'b'.repeat(q) } })].map((e) => ({
            payload: JSON.parse(e.body),
            id: e.id,
            received_at: new Date(e.receivedAt).toISOString(),
            route: e.route,
          })),
        ),
      );
    const fit = DISPATCH_MAX_PAYLOAD_BYTES - sizeWith(0);
    expect(sizeWith(fit)).toBe(DISPATCH_MAX_PAYLOAD_BYTES);
    const exact = buildDispatches([a, stored(2, { extra: { pad: 'b'.repeat(fit) } })]);
    expect(exact).toHaveLength(1);
    expect(payloadBytes(exact[0]!.clientPayload)).toBe(DISPATCH_MAX_PAYLOAD_BYTES);
    const over = buildDispatches([a, stored(2, { extra: { pad: 'b'.repeat(fit + 1) } })]);
    expect(over.map((d) => d.events.map((e) => e.id))).toEqual([['ev-1'], ['ev-2']]);
    for (const d of [...exact, ...over]) {
      expect(payloadBytes(d.clientPayload)).toBeLessThanOrEqual(DISPATCH_MAX_PAYLOAD_BYTES);
      expect(Object.keys(d.clientPayload).length).toBeLessThanOrEqual(DISPATCH_MAX_KEYS);
    }
  });

  it('leaves out, and reports, an event too large alone or unreadable', () => {
    const huge = stored(1, { extra: { pad: 'x'.repeat(70_000) } });
    const broken = stored(2, { body: '{"truncated": ' });
    const badType = stored(4, { eventType: 'x'.repeat(101) });
    const ok = stored(3);
    expect(buildDispatches([huge, broken, ok, badType]).map((d) => d.events.map((e) => e.id))).toEqual([['ev-3']]);
    const plan = planDispatches([huge, broken, ok, badType]);
    expect(plan.rejected.map((r) => [r.event.id, r.reason.split(' ').slice(0, 3).join(' ')])).toEqual([
      ['ev-2', 'stored body is'],
      ['ev-4', 'invalid event_type (1'],
      ['ev-1', 'event too large'],
    ]);
  });

  it('packs 200 realistic job events into 3 dispatches', () => {
    const out = buildDispatches(Array.from({ length: 200 }, (_, i) => stored(i)));
    expect(out.length).toBeLessThanOrEqual(3);
    expect(out.flatMap((d) => d.events)).toHaveLength(200);
  });
});

describe('groupReadyAt (pure)', () => {
  it.each([
    // first, last, window, maxHold → ready at
    [0, 0, 2_000, 10_000, 2_000],
    [0, 1_500, 2_000, 10_000, 3_500],
    [0, 9_000, 2_000, 10_000, 10_000],
    [0, 50_000, 2_000, 10_000, 10_000],
    [5, 5, 0, 0, 5],
    [0, 0, 2_000, 500, 2_000],
  ])('first %i, last %i, window %i, max hold %i → %i', (first, last, windowMs, maxHold, expected) => {
    expect(groupReadyAt(first, last, windowMs, maxHold)).toBe(expected);
  });
});

describe('Dispatcher against the GitHub double', () => {
  let gh: GitHubDouble;
  let dir: string;
  let store: SqliteEventStore;
  let metrics: RelayMetrics;
  let log: ReturnType<typeof capture>;
  let client: DispatchClient;
  const dispatchers: Dispatcher[] = [];

  beforeAll(async () => {
    gh = await startGitHubDouble();
  });
  afterAll(async () => {
    await gh.close();
  });
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'relay-dispatcher-'));
    store = openSqliteStore(dir);
    metrics = createMetrics({ defaultMetrics: false });
    log = capture();
    client = createDispatchClient({ token: TOKEN, apiUrl: gh.url, logger: log.logger, timeoutMs: 2_000, writeSpacingMs: 0 });
  });
  afterEach(async () => {
    for (const d of dispatchers.splice(0)) await d.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
    expect(gh.violations).toEqual([]);
    expect(log.raw.join('\n')).not.toContain(TOKEN);
    gh.reset();
  });

  function dispatcher(o: Partial<DispatcherOptions> = {}): Dispatcher {
    const d = new Dispatcher({
      store,
      client,
      logger: log.logger,
      metrics,
      groupWindowMs: 100,
      leaseMs: 2_000,
      pollMs: 50,
      backoff: { baseMs: 50, capMs: 200 },
      ...o,
    });
    dispatchers.push(d);
    return d;
  }

  async function insert(d: Dispatcher | null, events: NewEvent[]): Promise<string[]> {
    const ids = [];
    for (const e of events) {
      const r = await store.insert(e, DAY);
      d?.notify();
      ids.push(r.id);
    }
    return ids;
  }

  const allDelivered = async () => {
    const s = await store.stats();
    return s.pending === 0;
  };

  it('groups a burst of 200 job events into at most 3 dispatches, each event delivered once', async () => {
    const d = dispatcher({ groupWindowMs: 500 });
    d.start();
    // Concurrent inserts, as the HTTP side does them, each followed by notify().
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        store.insert(newEvent(i), DAY).then((r) => {
          d.notify();
          return r;
        }),
      ),
    );
    const other = await insert(d, [newEvent(900, { repo: 'acme/web' })]);
    await waitFor(allDelivered, 15_000, 'all delivered');
    const dispatches = gh.dispatches('acme/shop');
    expect(dispatches.length).toBeLessThanOrEqual(3);
    expect(dispatches.every((x) => x.event_type === 'saucelabs')).toBe(true);
    expect(sentIds(gh).sort()).toEqual(results.map((r) => r.id).sort());
    expect(sentIds(gh, 'acme/web')).toEqual(other);
    // Payloads are the stored bodies, verbatim (parsed).
    const bodies = new Map((await store.list('delivered', 1_000)).map((e) => [e.id, JSON.parse(e.body)]));
    for (const x of dispatches)
      for (const e of (x.client_payload as { events: { id: string; payload: unknown }[] }).events) expect(e.payload).toEqual(bodies.get(e.id));
    expect(await store.stats()).toEqual({ pending: 0, delivered: 201, dead: 0 });
    const latency = await metrics.dispatchLatency.get();
    expect(latency.values.find((v) => v.metricName?.endsWith('_count'))?.value).toBe(201);
    expect((await metrics.dispatchedEvents.get()).values[0]?.value).toBe(201);
  });

  it('keeps filling the same dispatches while a build is still sending (arrivals spread over the window)', async () => {
    const d = dispatcher({ groupWindowMs: 300 });
    d.start();
    const ids: string[] = [];
    // 120 events, one every 10 ms: 1.2 s in all, four windows long. A fixed window would cut it into 4+ groups.
    for (let i = 0; i < 120; i++) {
      ids.push(...(await insert(d, [newEvent(2_000 + i)])));
      await new Promise((r) => setTimeout(r, 10));
    }
    await waitFor(allDelivered, 15_000, 'all delivered');
    const dispatches = gh.dispatches('acme/shop');
    expect(dispatches.length).toBe(buildDispatches(await store.list('delivered', 1_000)).length);
    expect(sentIds(gh).sort()).toEqual([...ids].sort());
  });

  it('sends each event alone when grouping is off (window 0)', async () => {
    const d = dispatcher({ groupWindowMs: 0 });
    d.start();
    for (let i = 0; i < 3; i++) {
      await insert(d, [newEvent(i)]);
      await waitFor(allDelivered);
    }
    expect(gh.dispatches('acme/shop')).toHaveLength(3);
  });

  it('survives 503s then a 429 with Retry-After: every event delivered, none lost, none twice', async () => {
    const seen: { at: number; status: number }[] = [];
    gh.failNext(DISPATCH, [
      { status: 503, body: { message: 'Service Unavailable' } },
      { status: 503, body: { message: 'Service Unavailable' } },
      { status: 429, headers: { 'retry-after': '1' }, body: { message: 'Too many requests' } },
    ]);
    gh.setInterceptor((req) => {
      if (req.route === DISPATCH) seen.push({ at: Date.now(), status: 0 });
      return undefined;
    });
    const d = dispatcher();
    d.start();
    const ids = await insert(
      d,
      Array.from({ length: 20 }, (_, i) => newEvent(i)),
    );
    await waitFor(allDelivered, 20_000, 'all delivered');
    expect(sentIds(gh).sort()).toEqual([...ids].sort());
    expect(new Set(sentIds(gh)).size).toBe(ids.length);
    expect(await store.stats()).toEqual({ pending: 0, delivered: 20, dead: 0 });
    // The 429 said "1 second": nothing was sent before that.
    expect(seen.length).toBeGreaterThanOrEqual(4);
    expect(seen[3]!.at - seen[2]!.at).toBeGreaterThanOrEqual(950);
    // Every attempt is logged with the event ids and outcome.
    const attempts = log.lines.filter((l) => l.msg === 'dispatch sent' || l.msg === 'dispatch failed; will retry');
    expect(attempts.length).toBe(seen.length);
    expect(attempts[0]).toMatchObject({ repo: 'acme/shop', outcome: 'retry', attempt: 1, reason: expect.stringContaining('503') });
    expect(attempts[2]).toMatchObject({ outcome: 'retry', attempt: 3, reason: expect.stringContaining('rate limited (429)') });
    expect((attempts[0]!.ids as string[]).length).toBeGreaterThan(0);
    const retries = (await metrics.retries.get()).values;
    expect(retries.find((v) => v.labels.reason === 'server_error')?.value).toBe(2);
    expect(retries.find((v) => v.labels.reason === 'rate_limit')?.value).toBe(1);
  });

  it('dead-letters on 422 and 404 with the reason, and delivers the rest', async () => {
    gh.failNext(DISPATCH, [{ status: 422, body: { message: 'Validation Failed' } }]);
    const d = dispatcher({ groupWindowMs: 0 });
    d.start();
    const [first] = await insert(d, [newEvent(1)]);
    await waitFor(allDelivered);
    gh.failNext(DISPATCH, [{ status: 404, body: { message: 'Not Found' } }]);
    const [second] = await insert(d, [newEvent(2)]);
    await waitFor(allDelivered);
    const [third] = await insert(d, [newEvent(3)]);
    await waitFor(allDelivered);
    const dead = await store.list('dead', 10);
    expect(dead.map((e) => [e.id, e.lastError?.slice(0, 3)])).toEqual([
      [first, '422'],
      [second, '404'],
    ]);
    expect(sentIds(gh)).toEqual([third]);
    expect((await metrics.deadLettered.get()).values.find((v) => v.labels.reason === 'rejected')?.value).toBe(2);
  });

  it('dead-letters an event too large to send, and one past the maximum age; a requeued one is sent', async () => {
    const d = dispatcher({ maxAgeMs: 60_000 });
    d.start();
    const [huge, old, fine] = await insert(d, [
      newEvent(1, { extra: { pad: 'x'.repeat(70_000) } }),
      newEvent(2, { receivedAt: Date.now() - 61_000 }),
      newEvent(3),
    ]);
    await waitFor(allDelivered);
    const dead = new Map((await store.list('dead', 10)).map((e) => [e.id, e.lastError]));
    expect(dead.get(huge!)).toMatch(/too large/);
    expect(dead.get(old!)).toMatch(/undelivered/);
    expect(sentIds(gh)).toEqual([fine]);
    // The operator requeues the old one: its age counts from the requeue.
    expect(await store.requeue(old!, Date.now())).toBe(true);
    d.notify();
    await waitFor(allDelivered);
    expect(sentIds(gh)).toEqual([fine, old]);
  });

  it('after a crash (claimed, never marked), a new dispatcher sends the events once the lease expires', async () => {
    const ids = await insert(
      null,
      Array.from({ length: 5 }, (_, i) => newEvent(i)),
    );
    const crashedAt = Date.now();
    const leaseMs = 1_500;
    // The dead process had claimed them and was about to dispatch.
    expect(await store.claim('crashed-host:123', crashedAt, leaseMs, 100)).toHaveLength(5);
    let firstSentAt = 0;
    gh.setInterceptor((req) => {
      if (req.route === DISPATCH && !firstSentAt) firstSentAt = Date.now();
      return undefined;
    });
    // The restarted process: a new store connection and a new Dispatcher.
    await store.close();
    store = openSqliteStore(dir);
    const d = dispatcher({ leaseMs, groupWindowMs: 0 });
    d.start();
    await waitFor(allDelivered, 10_000, 'redelivery');
    expect(sentIds(gh).sort()).toEqual([...ids].sort());
    expect(firstSentAt).toBeGreaterThanOrEqual(crashedAt + leaseMs);
  });

  it('two relay processes on one data dir share the work: every event sent exactly once', async () => {
    const second = openSqliteStore(dir);
    try {
      const a = dispatcher({ groupWindowMs: 0, owner: 'a' });
      const b = new Dispatcher({ store: second, client, logger: log.logger, metrics, groupWindowMs: 0, pollMs: 20, owner: 'b' });
      dispatchers.push(b);
      a.start();
      b.start();
      const ids = await Promise.all(
        Array.from({ length: 60 }, (_, i) =>
          store.insert(newEvent(i), DAY).then((r) => {
            if (i % 2) a.notify();
            else b.notify();
            return r.id;
          }),
        ),
      );
      await waitFor(allDelivered, 10_000, 'all delivered');
      expect(sentIds(gh).sort()).toEqual([...ids].sort());
      await b.stop();
    } finally {
      await second.close();
    }
  });

  it('stop() finishes the dispatch in flight and gives back what it had not sent', async () => {
    gh.failNext(DISPATCH, [{ status: 204, delayMs: 300 }]);
    const d = dispatcher({ groupWindowMs: 0 });
    d.start();
    const [first] = await insert(d, [newEvent(1)]);
    await waitFor(() => gh.countRequests((r) => r.route === DISPATCH) === 1, 5_000, 'dispatch in flight');
    await d.stop();
    expect((await store.list('delivered', 10)).map((e) => e.id)).toEqual([first]);
    // Anything claimed but unsent is claimable at once by the next process.
    await insert(null, [newEvent(2)]);
    expect(await store.claim('next', Date.now(), 1_000, 10)).toHaveLength(1);
  });

  it('stop() releases events held in their grouping window', async () => {
    const d = dispatcher({ groupWindowMs: 5_000, leaseMs: 30_000 });
    d.start();
    await insert(d, [newEvent(1), newEvent(2)]);
    const reader = new Database(store.path, { readonly: true });
    const claimed = () => reader.prepare<[], { n: number }>('SELECT count(*) AS n FROM events WHERE claimed_by IS NOT NULL').get()!.n;
    try {
      await waitFor(() => claimed() === 2, 5_000, 'claimed by the dispatcher');
      await d.stop();
      expect(claimed()).toBe(0);
    } finally {
      reader.close();
    }
    expect(gh.dispatches('acme/shop')).toHaveLength(0);
    expect(await store.claim('next', Date.now(), 1_000, 10)).toHaveLength(2);
  });

  it('dry-run marks events delivered without calling GitHub', async () => {
    client = createDispatchClient({ logger: log.logger });
    const d = dispatcher({ groupWindowMs: 0 });
    d.start();
    await insert(d, [newEvent(1), newEvent(2)]);
    await d.drain();
    await waitFor(allDelivered);
    expect(gh.requests).toHaveLength(0);
    expect(log.lines.some((l) => l.msg === 'dry-run: would send repository_dispatch')).toBe(true);
  });

  it('drain() resolves once nothing is due', async () => {
    const d = dispatcher({ groupWindowMs: 50 });
    d.start();
    await insert(
      d,
      Array.from({ length: 10 }, (_, i) => newEvent(i)),
    );
    await d.drain();
    expect(await store.stats()).toMatchObject({ pending: 0, delivered: 10 });
    expect(gh.dispatches('acme/shop')).toHaveLength(1);
  });
});
