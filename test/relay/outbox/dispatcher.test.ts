import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import Database from 'better-sqlite3';
import {
  Dispatcher,
  dispatchAttempt,
  groupReadyAt,
  planDispatches,
  type DispatcherOptions,
  type PlannedDispatch,
} from '../../../src/relay/outbox/dispatcher.js';
import { createDispatchClient, type DispatchClient } from '../../../src/relay/outbox/dispatch-client.js';
import { openSqliteStore, type SqliteEventStore } from '../../../src/relay/outbox/sqlite-store.js';
import { createLogger } from '../../../src/relay/logger.js';
import { createMetrics, type RelayMetrics } from '../../../src/relay/metrics.js';
import type { EventStore, NewEvent, StoredEvent } from '../../../src/relay/outbox/store.js';
import { DISPATCH_MAX_KEYS, DISPATCH_MAX_PAYLOAD_BYTES, payloadBytes, utf8Bytes } from '../../../src/github/limits.js';
import { ENTRY_MAX_BYTES, EMPTY_ENVELOPE_BYTES, TRUNCATION_MARKER } from '../../../src/sauce/envelope.js';
import type { DispatchOutcome } from '../../../src/github/answers.js';
import { startGitHubDouble, type GitHubDouble } from '../../support/github-double.js';
import { waitFor } from '../support/common.js';
import { ManualClock } from './support/manual-clock.js';

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

function newEvent(n: number, overrides: Omit<Partial<NewEvent>, 'extra'> & { fields?: Record<string, unknown> } = {}): NewEvent {
  const { fields, ...rest } = overrides;
  const body = rest.body ?? jobBody(n, fields);
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

function stored(n: number, overrides: Omit<Partial<StoredEvent>, 'extra'> & { fields?: Record<string, unknown> } = {}): StoredEvent {
  const { fields, ...rest } = overrides;
  return {
    ...newEvent(n, { fields }),
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

const idsOf = (dispatches: PlannedDispatch[]) => dispatches.map((d) => d.events.map((e) => e.id));

/** The entry of one event as planDispatches places it (id, receipt time and route around the parsed body). */
const entryOf = (e: StoredEvent) => ({ payload: JSON.parse(e.body), id: e.id, received_at: new Date(e.receivedAt).toISOString(), route: e.route });

describe('planDispatches (pure)', () => {
  it('groups by repo + event_type and wraps each event in the v1 envelope', () => {
    const events = [stored(1), stored(2, { repo: 'acme/web' }), stored(3), stored(4, { eventType: 'sauce-visual' })];
    const { dispatches, rejected } = planDispatches(events);
    expect(rejected).toEqual([]);
    expect(dispatches.map((d) => [d.repo, d.eventType, d.events.map((e) => e.id)])).toEqual([
      ['acme/shop', 'saucelabs', ['ev-1', 'ev-3']],
      ['acme/web', 'saucelabs', ['ev-2']],
      ['acme/shop', 'sauce-visual', ['ev-4']],
    ]);
    expect(dispatches[0]?.clientPayload).toEqual({ version: 1, events: [entryOf(events[0]!), entryOf(events[2]!)] });
    expect(dispatches.every((d) => d.truncated.length === 0)).toBe(true);
  });

  it('orders a group by receipt', () => {
    expect(idsOf(planDispatches([stored(2, { receivedAt: 20 }), stored(1, { receivedAt: 10 })]).dispatches)).toEqual([['ev-1', 'ev-2']]);
  });

  it('splits exactly at the 64 KB edge', () => {
    const a = stored(1, { fields: { pad: 'a'.repeat(30_000) } });
    const entryBytes = (e: StoredEvent) => utf8Bytes(JSON.stringify(entryOf(e)));
    // Two entries and their comma in the envelope.
    const sizeWith = (q: number) => EMPTY_ENVELOPE_BYTES + entryBytes(a) + 1 + entryBytes(stored(2, { fields: { pad: 'b'.repeat(q) } }));
    const fit = DISPATCH_MAX_PAYLOAD_BYTES - sizeWith(0);
    expect(sizeWith(fit)).toBe(DISPATCH_MAX_PAYLOAD_BYTES);
    const exact = planDispatches([a, stored(2, { fields: { pad: 'b'.repeat(fit) } })]).dispatches;
    expect(idsOf(exact)).toEqual([['ev-1', 'ev-2']]);
    expect(payloadBytes(exact[0]!.clientPayload)).toBe(DISPATCH_MAX_PAYLOAD_BYTES);
    const over = planDispatches([a, stored(2, { fields: { pad: 'b'.repeat(fit + 1) } })]).dispatches;
    expect(idsOf(over)).toEqual([['ev-1'], ['ev-2']]);
    for (const d of [...exact, ...over]) {
      expect(payloadBytes(d.clientPayload)).toBeLessThanOrEqual(DISPATCH_MAX_PAYLOAD_BYTES);
      expect(Object.keys(d.clientPayload).length).toBeLessThanOrEqual(DISPATCH_MAX_KEYS);
    }
  });

  it('an event over the limit is shortened and sent, not rejected; unreadable ones are rejected as invalid', () => {
    const huge = stored(1, { fields: { exception: `Error: boom\n${'    at frame (x.js:1:1)\n'.repeat(3_000)}` } });
    const broken = stored(2, { body: '{"truncated": ' });
    const badType = stored(4, { eventType: 'x'.repeat(101) });
    const ok = stored(3);
    const plan = planDispatches([huge, broken, ok, badType]);
    expect(plan.rejected.map((r) => [r.event.id, r.code, r.reason.split(' ').slice(0, 3).join(' ')])).toEqual([
      ['ev-2', 'invalid', 'stored body is'],
      ['ev-4', 'invalid', 'invalid event_type (1'],
    ]);
    expect(idsOf(plan.dispatches)).toEqual([['ev-1'], ['ev-3']]);
    const [first] = plan.dispatches;
    expect(payloadBytes(first!.clientPayload)).toBeLessThanOrEqual(DISPATCH_MAX_PAYLOAD_BYTES);
    const entry = (first!.clientPayload as { events: Record<string, unknown>[] }).events[0]!;
    const original = JSON.parse(huge.body) as Record<string, unknown>;
    expect(entry.truncated).toEqual([{ field: 'exception', bytes: utf8Bytes(original.exception as string) }]);
    expect(((entry.payload as Record<string, unknown>).exception as string).endsWith(TRUNCATION_MARKER)).toBe(true);
    expect(first!.truncated).toEqual([{ id: 'ev-1', fields: entry.truncated }]);
    expect(ENTRY_MAX_BYTES).toBeLessThan(DISPATCH_MAX_PAYLOAD_BYTES);
  });

  it('packs 200 realistic job events into 3 dispatches', () => {
    const { dispatches } = planDispatches(Array.from({ length: 200 }, (_, i) => stored(i)));
    expect(dispatches.length).toBeLessThanOrEqual(3);
    expect(dispatches.flatMap((d) => d.events)).toHaveLength(200);
  });

  it('what parsing and serialising again changes in a body (and nothing else)', () => {
    // Received text, with each thing JSON.parse + JSON.stringify rewrites.
    const body =
      '{ "id": "job-1",\n  "status": "PASSED", "data_type": "vdc",\n' +
      '  "big": 12345678901234567890123, "float": 1.0, "exp": 1E3, "neg_zero": -0, "small": 1e-7,\n' +
      '  "dup": "first", "dup": "last",\n' +
      '  "escaped": "caf\\u00e9 \\/ \\"q\\"", "emoji": "\\ud83d\\ude00",\n' +
      '  "b": 1, "2": "two", "1": "one" }';
    const [d] = planDispatches([stored(1, { body })]).dispatches;
    const payload = (d!.clientPayload as { events: { payload: unknown }[] }).events[0]!.payload;
    expect(JSON.stringify(payload)).toBe(
      '{"1":"one","2":"two","id":"job-1","status":"PASSED","data_type":"vdc",' + // integer-like keys first, ascending
        '"big":1.2345678901234568e+22,"float":1,"exp":1000,"neg_zero":0,"small":1e-7,' + // numbers as doubles, shortest form
        '"dup":"last",' + // a repeated key: its last value, at its first place
        '"escaped":"café / \\"q\\"","emoji":"😀",' + // escapes decoded: the same strings
        '"b":1}', // whitespace between tokens gone
    );
  });
});

describe('dispatchAttempt (pure): what the store keeps of one call', () => {
  it.each<[string, DispatchOutcome, boolean, Partial<ReturnType<typeof dispatchAttempt>>]>([
    ['accepted', { kind: 'sent', status: 204 }, false, { status: 204, message: 'accepted', result: 'sent', code: null }],
    ['a dry run', { kind: 'sent' }, true, { status: null, message: 'dry run: logged, not sent', result: 'sent', code: null }],
    [
      "GitHub's error: its status and message",
      { kind: 'fatal', code: 'not_found', reason: '404 repository not found or not accessible to the token: Not Found', status: 404, message: 'Not Found' },
      false,
      { status: 404, message: 'Not Found', result: 'fatal', code: 'not_found' },
    ],
    [
      'an error without a message: the reason',
      { kind: 'retry', code: 'server_error', reason: 'GitHub 502', status: 502 },
      false,
      { status: 502, message: 'GitHub 502', result: 'retry', code: 'server_error' },
    ],
    ['no answer at all', { kind: 'retry', code: 'timeout', reason: 'timeout' }, false, { status: null, message: 'timeout', result: 'retry', code: 'timeout' }],
  ])('%s', (_what, outcome, dryRun, expected) => {
    expect(dispatchAttempt(outcome, 'd-1', 3, 1_000, dryRun)).toEqual({ at: 1_000, dispatchId: 'd-1', events: 3, ...expected });
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

/** The store, with some methods replaced (a store that fails, or watches what is asked of it). */
function storeWith(store: EventStore, overrides: Partial<EventStore>): EventStore {
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop in overrides) return overrides[prop as keyof EventStore];
      const value = Reflect.get(target, prop, receiver) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

describe('Dispatcher (driven clock) against the GitHub double', () => {
  let gh: GitHubDouble;
  let dir: string;
  let store: SqliteEventStore;
  let metrics: RelayMetrics;
  let log: ReturnType<typeof capture>;
  let client: DispatchClient;
  let clock: ManualClock;
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
    clock = new ManualClock();
    // Generous timeout: this is real time (a loaded machine), not the dispatcher's clock.
    client = createDispatchClient({ token: TOKEN, apiUrl: gh.url, logger: log.logger, timeoutMs: 30_000, writeSpacingMs: 0 });
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
      now: clock.now,
      timers: clock,
      ...o,
    });
    dispatchers.push(d);
    return d;
  }

  /** Store events received now (the driven clock's now), each followed by notify(). */
  async function insert(d: Dispatcher | null, events: NewEvent[]): Promise<string[]> {
    const ids = [];
    for (const e of events) {
      const r = await store.insert({ ...e, receivedAt: clock.now() }, DAY);
      d?.notify();
      ids.push(r.id);
    }
    return ids;
  }

  const pending = async () => (await store.stats()).pending;
  /** Every dispatch sent so far is full: another ~1 KB job event would not have fitted. */
  const expectOnlyFullDispatches = () => {
    for (const x of gh.dispatches('acme/shop')) expect(payloadBytes(x.client_payload)).toBeGreaterThan(DISPATCH_MAX_PAYLOAD_BYTES - 1_100);
  };
  const counter = async (c: { get(): Promise<{ values: { labels: Record<string, unknown>; value: number }[] }> }, reason: string) =>
    (await c.get()).values.find((v) => v.labels.reason === reason)?.value ?? 0;

  it('groups a burst of 200 job events into at most 3 dispatches, each event delivered once', async () => {
    const d = dispatcher({ groupWindowMs: 500 });
    d.start();
    // Concurrent inserts, as the HTTP side does them, each followed by notify().
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        store.insert({ ...newEvent(i), receivedAt: clock.now() }, DAY).then((r) => {
          d.notify();
          return r;
        }),
      ),
    );
    const other = await insert(d, [newEvent(900, { repo: 'acme/web' })]);
    await clock.advance(499);
    // Before the window closes only full dispatches leave; the rest waits for more of its build.
    expectOnlyFullDispatches();
    expect(await pending()).toBeGreaterThan(0);
    await clock.advance(1);
    expect(await pending()).toBe(0);
    const dispatches = gh.dispatches('acme/shop');
    expect(dispatches.length).toBeLessThanOrEqual(3);
    expect(dispatches.every((x) => x.event_type === 'saucelabs')).toBe(true);
    expect(sentIds(gh).sort()).toEqual(results.map((r) => r.id).sort());
    expect(sentIds(gh, 'acme/web')).toEqual(other);
    // Payloads are the stored bodies, parsed.
    const bodies = new Map((await store.list('delivered', 1_000)).map((e) => [e.id, JSON.parse(e.body)]));
    for (const x of dispatches)
      for (const e of (x.client_payload as { events: { id: string; payload: unknown }[] }).events) expect(e.payload).toEqual(bodies.get(e.id));
    expect(await store.stats()).toEqual({ pending: 0, delivered: 201, dead: 0 });
    const latency = await metrics.dispatchLatency.get();
    expect(latency.values.find((v) => v.metricName?.endsWith('_count'))?.value).toBe(201);
    expect((await metrics.dispatchedEvents.get()).values[0]?.value).toBe(201);
  });

  it('three dispatchers on one store (three processes): a build that reached all of them leaves in as few dispatches as from one', async () => {
    const ds = [dispatcher(), dispatcher(), dispatcher()];
    // Started apart, so they poll at different moments (as processes do) and each finds new events.
    for (const d of ds) {
      d.start();
      await clock.advance(17);
    }
    // 120 job events of one build (two dispatches' worth), 3 ms apart, all within one maximum hold,
    // each stored by the next process in turn (a load balancer), which wakes its own dispatcher.
    const ids: string[] = [];
    for (let i = 0; i < 120; i++) {
      await clock.advance(3);
      ids.push(...(await insert(ds[i % 3]!, [newEvent(i)])));
    }
    await clock.advance(2_000);
    expect(await pending()).toBe(0);
    const fromOne = planDispatches(await store.list('delivered', 1_000)).dispatches.length;
    expect(fromOne).toBe(2);
    // Without whole-group claims each process sends its own share: 3 dispatches here.
    expect(gh.dispatches('acme/shop').length).toBe(fromOne);
    expect(sentIds(gh).sort()).toEqual([...ids].sort());
  });

  it('keeps filling the same dispatches while a build is still sending (arrivals spread over the window)', async () => {
    const d = dispatcher({ groupWindowMs: 300 });
    d.start();
    const ids: string[] = [];
    // 120 events, one every 10 ms: 1.2 s in all, four windows long. A fixed window would cut it into 4+ groups.
    for (let i = 0; i < 120; i++) {
      ids.push(...(await insert(d, [newEvent(2_000 + i)])));
      await clock.advance(10);
    }
    expectOnlyFullDispatches();
    expect(await pending()).toBeGreaterThan(0);
    await clock.advance(300);
    expect(await pending()).toBe(0);
    const delivered = await store.list('delivered', 1_000);
    expect(gh.dispatches('acme/shop').length).toBe(planDispatches(delivered).dispatches.length);
    expect(sentIds(gh).sort()).toEqual([...ids].sort());
  });

  it('sends each event alone when grouping is off (window 0)', async () => {
    const d = dispatcher({ groupWindowMs: 0 });
    d.start();
    for (let i = 0; i < 3; i++) {
      await insert(d, [newEvent(i)]);
      await clock.advance(0);
      expect(await pending()).toBe(0);
    }
    expect(gh.dispatches('acme/shop')).toHaveLength(3);
  });

  it('survives 503s then a 429 with Retry-After: every event delivered, none lost, none twice', async () => {
    const seen: number[] = [];
    gh.failNext(DISPATCH, [
      { status: 503, body: { message: 'Service Unavailable' } },
      { status: 503, body: { message: 'Service Unavailable' } },
      { status: 429, headers: { 'retry-after': '1' }, body: { message: 'Too many requests' } },
    ]);
    gh.setInterceptor((req) => {
      if (req.route === DISPATCH) seen.push(clock.now());
      return undefined;
    });
    const d = dispatcher();
    d.start();
    const ids = await insert(
      d,
      Array.from({ length: 20 }, (_, i) => newEvent(i)),
    );
    await clock.advance(5_000);
    expect(sentIds(gh).sort()).toEqual([...ids].sort());
    expect(new Set(sentIds(gh)).size).toBe(ids.length);
    expect(await store.stats()).toEqual({ pending: 0, delivered: 20, dead: 0 });
    // One group, four attempts; the 429 said "1 second": nothing was sent before that.
    expect(seen).toHaveLength(4);
    expect(seen[3]! - seen[2]!).toBeGreaterThanOrEqual(1_000);
    // Every attempt is logged with the event ids and outcome.
    const attempts = log.lines.filter((l) => l.msg === 'dispatch sent' || l.msg === 'dispatch failed; will retry');
    expect(attempts.length).toBe(seen.length);
    expect(attempts[0]).toMatchObject({ repo: 'acme/shop', outcome: 'retry', attempt: 1, reason: expect.stringContaining('503') });
    expect(attempts[2]).toMatchObject({ outcome: 'retry', attempt: 3, reason: expect.stringContaining('rate limited (429)') });
    expect((attempts[0]!.ids as string[]).length).toBe(20);
    expect(await counter(metrics.retries, 'server_error')).toBe(2);
    expect(await counter(metrics.retries, 'rate_limit')).toBe(1);
  });

  it('dead-letters on 422 and 404 with the reason, and delivers the rest', async () => {
    gh.failNext(DISPATCH, [{ status: 422, body: { message: 'Validation Failed' } }]);
    const d = dispatcher({ groupWindowMs: 0 });
    d.start();
    const [first] = await insert(d, [newEvent(1)]);
    await clock.advance(0);
    gh.failNext(DISPATCH, [{ status: 404, body: { message: 'Not Found' } }]);
    const [second] = await insert(d, [newEvent(2)]);
    await clock.advance(0);
    const [third] = await insert(d, [newEvent(3)]);
    await clock.advance(0);
    expect(await pending()).toBe(0);
    const dead = await store.list('dead', 10);
    expect(dead.map((e) => [e.id, e.lastError?.slice(0, 3)])).toEqual([
      [first, '422'],
      [second, '404'],
    ]);
    expect(sentIds(gh)).toEqual([third]);
    expect(await counter(metrics.deadLettered, 'rejected')).toBe(2);
  });

  it("records every attempt with the event: GitHub's status and message, the dispatch and how many it carried", async () => {
    const d = dispatcher({ groupWindowMs: 0 });
    d.start();
    gh.failNext(DISPATCH, [
      { status: 502, body: { message: 'Bad Gateway' } },
      { status: 404, body: { message: 'Not Found' } },
    ]);
    const [id] = await insert(d, [newEvent(1)]);
    await clock.advance(0);
    await clock.advance(1_000);
    const dead = await store.console.getEvent(id!);
    expect(dead?.state).toBe('dead');
    expect(dead?.attemptHistory).toEqual([
      {
        at: expect.any(Number),
        dispatchId: expect.stringMatching(/^d-[0-9a-f]{12}$/),
        events: 1,
        status: 502,
        message: 'Bad Gateway',
        result: 'retry',
        code: 'server_error',
      },
      { at: expect.any(Number), dispatchId: expect.stringMatching(/^d-/), events: 1, status: 404, message: 'Not Found', result: 'fatal', code: 'not_found' },
    ]);
    const [a, b] = dead!.attemptHistory;
    expect(a!.dispatchId).not.toBe(b!.dispatchId);
    // The log line of each attempt names its dispatch, so the console and the log meet.
    expect(log.lines.filter((l) => l.dispatchId !== undefined).map((l) => l.dispatchId)).toEqual([a!.dispatchId, b!.dispatchId]);

    // Requeued by hand (the console) and woken: sent in this very cycle, not at the next poll.
    expect(await store.requeue(id!, clock.now())).toBe(true);
    d.wakeNow();
    await clock.advance(0);
    expect(sentIds(gh)).toEqual([id]);
    const sent = (await store.console.getEvent(id!))!;
    expect(sent.state).toBe('delivered');
    expect(sent.attemptHistory.at(-1)).toMatchObject({ status: 204, message: 'accepted', result: 'sent', code: null, at: clock.now() });
  });

  it('a group: one attempt row per event, all with the dispatch and its count', async () => {
    const d = dispatcher();
    d.start();
    const ids = await insert(d, [newEvent(1), newEvent(2), newEvent(3)]);
    await clock.advance(200);
    expect(gh.dispatches('acme/shop')).toHaveLength(1);
    const rows = await Promise.all(ids.map(async (id) => (await store.console.getEvent(id))!.attemptHistory));
    expect(rows.map((r) => r.length)).toEqual([1, 1, 1]);
    expect(new Set(rows.map((r) => r[0]!.dispatchId)).size).toBe(1);
    expect(rows[0]![0]).toMatchObject({ events: 3, status: 204 });
  });

  it('delivers a 70 KB event shortened, dead-letters one past the maximum age; a requeued one is sent', async () => {
    const d = dispatcher({ maxAgeMs: 60_000 });
    d.start();
    const stack = `TimeoutError: never appeared\n${'    at step (webpack:///src/pay.ts:10:5)\n'.repeat(2_000)}`;
    expect(utf8Bytes(stack)).toBeGreaterThan(70_000);
    const [huge] = await insert(d, [newEvent(1, { fields: { exception: stack, status: 'FAILED', passed: 0 } })]);
    clock.jump(-61_000);
    const [old] = await insert(d, [newEvent(2)]);
    clock.jump(61_000);
    const [fine] = await insert(d, [newEvent(3)]);
    await clock.advance(100);
    expect(await pending()).toBe(0);
    expect((await store.list('dead', 10)).map((e) => [e.id, e.lastError])).toEqual([[old, expect.stringMatching(/undelivered/)]]);
    expect(await counter(metrics.deadLettered, 'max_age')).toBe(1);
    expect(await counter(metrics.deadLettered, 'invalid')).toBe(0);
    // The big one went, shortened, with every field the Action needs.
    const entries = gh.dispatches('acme/shop').flatMap((x) => (x.client_payload as { events: Record<string, unknown>[] }).events);
    const big = entries.find((e) => e.id === huge)!;
    expect(big.truncated).toEqual([{ field: 'exception', bytes: utf8Bytes(stack) }]);
    expect(big.payload).toMatchObject({ status: 'FAILED', passed: 0, commit_id: '9fceb02d0ae598e95dc970b74767f19372d61af8', branch_name: 'feature/login' });
    expect(log.lines.find((l) => l.msg === 'dispatch sent' && Array.isArray(l.truncated))).toMatchObject({ truncated: [{ id: huge, fields: big.truncated }] });
    expect(sentIds(gh).sort()).toEqual([huge, fine].sort());
    // The operator requeues the old one: its age counts from the requeue.
    expect(await store.requeue(old!, clock.now())).toBe(true);
    d.notify();
    await clock.advance(100);
    expect(await pending()).toBe(0);
    expect(sentIds(gh)).toContain(old);
  });

  it('after a crash (claimed, never marked), a new dispatcher sends the events once the lease expires', async () => {
    const ids = await insert(
      null,
      Array.from({ length: 5 }, (_, i) => newEvent(i)),
    );
    const crashedAt = clock.now();
    const leaseMs = 1_500;
    // The dead process had claimed them and was about to dispatch.
    expect(await store.claim('crashed-host:123', crashedAt, leaseMs, 100)).toHaveLength(5);
    // The restarted process: a new store connection and a new Dispatcher.
    await store.close();
    store = openSqliteStore(dir);
    const d = dispatcher({ leaseMs, groupWindowMs: 0 });
    d.start();
    await clock.advance(leaseMs - 1);
    expect(gh.countRequests((r) => r.route === DISPATCH)).toBe(0);
    await clock.advance(1);
    expect(sentIds(gh).sort()).toEqual([...ids].sort());
  });

  it('stop() finishes the dispatch in flight and gives back what it had not sent', async () => {
    gh.failNext(DISPATCH, [{ status: 204, delayMs: 300 }]);
    const d = dispatcher({ groupWindowMs: 0 });
    d.start();
    const [first] = await insert(d, [newEvent(1)]);
    const cycle = clock.advance(0);
    await waitFor(() => gh.countRequests((r) => r.route === DISPATCH) === 1, 10_000, 'dispatch in flight');
    await d.stop();
    await cycle;
    expect((await store.list('delivered', 10)).map((e) => e.id)).toEqual([first]);
    // Anything claimed but unsent is claimable at once by the next process.
    await insert(null, [newEvent(2)]);
    expect(await store.claim('next', clock.now(), 1_000, 10)).toHaveLength(1);
  });

  it('stop() releases events held in their grouping window', async () => {
    const d = dispatcher({ groupWindowMs: 5_000, leaseMs: 30_000 });
    d.start();
    await insert(d, [newEvent(1), newEvent(2)]);
    await clock.advance(1_000);
    const reader = new Database(store.path, { readonly: true });
    const claimed = () => reader.prepare<[], { n: number }>('SELECT count(*) AS n FROM events WHERE claimed_by IS NOT NULL').get()!.n;
    try {
      expect(claimed()).toBe(2);
      await d.stop();
      expect(claimed()).toBe(0);
    } finally {
      reader.close();
    }
    expect(gh.dispatches('acme/shop')).toHaveLength(0);
    expect(await store.claim('next', clock.now(), 1_000, 10)).toHaveLength(2);
  });

  it('dry-run marks events delivered without calling GitHub', async () => {
    client = createDispatchClient({ logger: log.logger });
    const d = dispatcher({ groupWindowMs: 0 });
    d.start();
    await insert(d, [newEvent(1), newEvent(2)]);
    await clock.advance(0);
    expect(await store.stats()).toMatchObject({ pending: 0, delivered: 2 });
    expect(gh.requests).toHaveLength(0);
    expect(log.lines.some((l) => l.msg === 'dry-run: would send repository_dispatch')).toBe(true);
  });

  it('renews a lease running low before sending on it (a long send before it)', async () => {
    // Two dispatches for one group; the first takes long enough for the second's lease to run low.
    const sends: { at: number; leaseLeft: number }[] = [];
    const reader = new Database(store.path, { readonly: true });
    const leaseOf = (ids: string[]) =>
      reader
        .prepare<[string], { until: number }>('SELECT min(lease_until) AS until FROM events WHERE id IN (SELECT value FROM json_each(?))')
        .get(JSON.stringify(ids))!.until;
    const leaseMs = 10_000;
    client = {
      dryRun: false,
      async dispatch(_repo, _type, payload) {
        const ids = (payload as { events: { id: string }[] }).events.map((e) => e.id);
        sends.push({ at: clock.now(), leaseLeft: leaseOf(ids) - clock.now() });
        clock.jump(6_000);
        return { kind: 'sent' };
      },
    };
    try {
      const d = dispatcher({ groupWindowMs: 0, leaseMs });
      d.start();
      await insert(
        d,
        Array.from({ length: 120 }, (_, i) => newEvent(i)),
      );
      await clock.advance(0);
      expect(await pending()).toBe(0);
      expect(sends.length).toBeGreaterThanOrEqual(2);
      // Never sent on less than half a lease: the second waited for a new claim.
      for (const s of sends) expect(s.leaseLeft).toBeGreaterThanOrEqual(leaseMs / 2);
      expect(await store.stats()).toEqual({ pending: 0, delivered: 120, dead: 0 });
    } finally {
      reader.close();
    }
  });

  it('recovers after a failed cycle (the store throws once)', async () => {
    let failures = 1;
    const flaky = storeWith(store, {
      claim: async (...args: Parameters<EventStore['claim']>) => {
        if (failures-- > 0) throw new Error('SQLITE_IOERR: disk I/O error');
        return store.claim(...args);
      },
    });
    const d = dispatcher({ store: flaky, groupWindowMs: 0, pollMs: 1_000 });
    d.start();
    await insert(d, [newEvent(1)]);
    await clock.advance(0);
    expect(log.lines.some((l) => l.msg === 'dispatcher cycle failed; trying again shortly')).toBe(true);
    expect(await pending()).toBe(1);
    await clock.advance(1_000);
    expect(await pending()).toBe(0);
    expect(gh.dispatches('acme/shop')).toHaveLength(1);
  });

  it('a dispatch client that throws: retried later as a network failure, then delivered', async () => {
    let throws = 1;
    const real = client;
    client = {
      dryRun: false,
      dispatch: async (...args) => {
        if (throws-- > 0) throw new TypeError('fetch failed');
        return real.dispatch(...args);
      },
    };
    const d = dispatcher({ groupWindowMs: 0 });
    d.start();
    const [id] = await insert(d, [newEvent(1)]);
    await clock.advance(0);
    expect(await pending()).toBe(1);
    expect((await store.list('pending', 10))[0]).toMatchObject({ attempts: 1, lastError: 'network error: fetch failed' });
    await clock.advance(200);
    expect(sentIds(gh)).toEqual([id]);
    expect(await counter(metrics.retries, 'network')).toBe(1);
  });

  it('prunes delivered events past the retention, once an hour', async () => {
    const d = dispatcher({ groupWindowMs: 0, pollMs: 60_000, retentionMs: 10 * 60_000 });
    d.start();
    await insert(d, [newEvent(1), newEvent(2)]);
    await clock.advance(0);
    expect(await store.stats()).toEqual({ pending: 0, delivered: 2, dead: 0 });
    await clock.advance(59 * 60_000);
    expect((await store.stats()).delivered).toBe(2);
    await clock.advance(60_000);
    expect(await store.stats()).toEqual({ pending: 0, delivered: 0, dead: 0 });
    expect(log.lines.find((l) => l.msg === 'pruned delivered events')).toMatchObject({ forgotten: 2 });
  });

  it('a mark that finds the lease taken over changes nothing and says so', async () => {
    client = {
      dryRun: false,
      async dispatch() {
        // While this send is in flight the lease runs out and another process claims the event.
        clock.jump(5_000);
        expect(await store.claim('other', clock.now(), 60_000, 10)).toHaveLength(1);
        return { kind: 'sent' } satisfies DispatchOutcome;
      },
    };
    const late = dispatcher({ groupWindowMs: 0, leaseMs: 1_000, client });
    late.start();
    await insert(late, [newEvent(1)]);
    await clock.advance(0);
    // Still pending, held by the other process, which sends it itself.
    expect(await store.stats()).toEqual({ pending: 1, delivered: 0, dead: 0 });
    expect(log.lines.find((l) => String(l.msg).startsWith('lease lost'))).toMatchObject({ mark: 'delivered', changed: 0 });
  });
});

describe('Dispatcher in real time', () => {
  it('two relay processes on one data dir share the work: every event sent exactly once', async () => {
    const gh = await startGitHubDouble();
    const dir = mkdtempSync(join(tmpdir(), 'relay-dispatcher-'));
    const first = openSqliteStore(dir);
    const second = openSqliteStore(dir);
    const log = capture();
    const metrics = createMetrics({ defaultMetrics: false });
    const client = createDispatchClient({ token: TOKEN, apiUrl: gh.url, logger: log.logger, timeoutMs: 30_000, writeSpacingMs: 0 });
    const a = new Dispatcher({ store: first, client, logger: log.logger, metrics, groupWindowMs: 0, pollMs: 20, owner: 'a' });
    const b = new Dispatcher({ store: second, client, logger: log.logger, metrics, groupWindowMs: 0, pollMs: 20, owner: 'b' });
    try {
      a.start();
      b.start();
      const ids = await Promise.all(
        Array.from({ length: 60 }, (_, i) =>
          first.insert(newEvent(i), DAY).then((r) => {
            if (i % 2) a.notify();
            else b.notify();
            return r.id;
          }),
        ),
      );
      await waitFor(async () => (await first.stats()).pending === 0, 60_000, 'all delivered');
      expect(sentIds(gh).sort()).toEqual([...ids].sort());
      expect(gh.violations).toEqual([]);
    } finally {
      await a.stop();
      await b.stop();
      await second.close();
      await first.close();
      await gh.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
