/**
 * The Visual refresher in process, on a driven clock, against the Sauce API double and a real
 * SQLite store: the first read lists the diffs (paginated, bounded, an invalid snapshot, a 5xx in
 * the middle), a build that never finishes gets the relay's "stuck" verdict once, an expired watch
 * leaves a last word, and what it stores always fits one dispatch.
 */
import { planDispatches } from '../../../src/relay/outbox/dispatcher.js';
import { openSqliteStore, type SqliteEventStore } from '../../../src/relay/outbox/sqlite-store.js';
import type { StoredEvent } from '../../../src/relay/outbox/store.js';
import { VisualRefresher } from '../../../src/relay/visual/visual-refresh.js';
import type { DiffReadLimits } from '../../../src/sauce/visual-api.js';
import { parseSauceEvent, type VisualEvent } from '../../../src/sauce/event.js';
import { ENTRY_MAX_BYTES } from '../../../src/sauce/envelope.js';
import { parseVisualNotesText, SNAPSHOT_NAME_MAX_CHARS } from '../../../src/sauce/visual-notes.js';
import { utf8Bytes } from '../../../src/github/limits.js';
import { buildWithDiffs, snapshot, startSauceApiDouble, type DoubleBuild, type SauceApiDouble } from '../../support/sauce-api-double.js';
import { sauceFixture, silentLogger, waitFor } from '../support/common.js';
import { tempDir } from '../support/process.js';

const CREDENTIALS = { username: 'ci-reader', accessKey: 'sauce-access-key-do-not-log-7f3a' };
const MIN = 60_000;
const HOUR = 60 * MIN;
const T0 = Date.parse('2026-07-20T10:00:00.000Z');

let sauce: SauceApiDouble;
let store: SqliteEventStore;
let refresher: VisualRefresher | undefined;
let seq = 0;
const clock = { t: T0 };

beforeAll(async () => {
  sauce = await startSauceApiDouble(CREDENTIALS);
});
afterAll(async () => sauce.close());
beforeEach(() => {
  store = openSqliteStore(tempDir());
  clock.t = T0;
});
afterEach(async () => {
  await refresher?.stop();
  refresher = undefined;
  await store.close();
  expect(sauce.violations).toEqual([]);
});

function newBuildId(): string {
  seq += 1;
  return `0b0e2d4c-2222-4a2b-8c3d-${seq.toString(16).padStart(12, '0')}`;
}

function makeRefresher(opts: { stuckAfterMs?: number | null; watchForMs?: number; diffLimits?: DiffReadLimits } = {}): VisualRefresher {
  refresher = new VisualRefresher({
    config: { ...CREDENTIALS, intervalMs: MIN, watchForMs: opts.watchForMs ?? 72 * HOUR, stuckAfterMs: opts.stuckAfterMs ?? null, apiUrl: sauce.url },
    store,
    logger: silentLogger,
    regionOf: () => 'us-west-1',
    now: () => clock.t,
    ...(opts.diffLimits ? { diffLimits: opts.diffLimits } : {}),
  });
  return refresher;
}

/** A webhook body for a build (the fixture's, with this id, status and summary). */
function webhook(buildId: string, build: Pick<DoubleBuild, 'status' | 'summary'>, extra: Record<string, unknown> = {}): string {
  const event = JSON.parse(sauceFixture('visual-unapproved.json').toString('utf8')) as Record<string, unknown>;
  return JSON.stringify({
    ...event,
    ...extra,
    build_id: buildId,
    build_url: `https://app.saucelabs.com/visual/builds/${buildId}`,
    status: build.status,
    summary: build.summary,
  });
}

async function track(r: VisualRefresher, body: string): Promise<void> {
  const parsed = parseSauceEvent(JSON.parse(body));
  if (!parsed.ok) throw new Error('not a Visual event');
  await r.track({ route: 'default', repo: 'acme/shop', eventType: 'saucelabs', body, event: parsed.event as VisualEvent, receivedAt: clock.t });
}

const stored = async (buildId: string): Promise<StoredEvent[]> =>
  (await store.list('pending', 100)).filter((e) => (JSON.parse(e.body) as { build_id: string }).build_id === buildId);
const requestsFor = (buildId: string) => sauce.requests.filter((r) => r.id === buildId);

test('the first read lists the diffs: every counted status in one request, then pages, within the bounds', async () => {
  const buildId = newBuildId();
  const build = buildWithDiffs('UNAPPROVED', { UNAPPROVED: 5, REJECTED: 1, EQUAL: 40 }, seq);
  sauce.setBuild(buildId, build);
  const r = makeRefresher({ diffLimits: { pageSize: 2, maxItems: 4, maxRequests: 3 } });
  await track(r, webhook(buildId, build));
  await r.tick();

  expect(requestsFor(buildId).map((q) => [q.kind, q.pages.map((p) => `${p.status}:${p.after === null ? 'start' : 'next'}:${p.first}`)])).toEqual([
    ['status', []],
    ['diffs', ['UNAPPROVED:start:2', 'REJECTED:start:2']],
    ['diffs', ['UNAPPROVED:next:2']],
  ]);
  const [event] = await stored(buildId);
  // Sauce's body as the webhook had it; the list beside it.
  expect(event!.body).toBe(webhook(buildId, build));
  const notes = parseVisualNotesText(event!.extra);
  expect(notes.diffs?.totals).toEqual({ UNAPPROVED: 5, REJECTED: 1 });
  expect(notes.diffs?.items.map((d) => d.snapshot)).toEqual(['Unapproved 1', 'Unapproved 2', 'Unapproved 3', 'Unapproved 4']);
  expect(notes.diffs?.readAt).toBe(T0);
  expect(notes.stuck).toBeNull();

  // Unchanged at the next read: the status only, nothing stored.
  clock.t += MIN;
  await r.tick();
  expect(requestsFor(buildId).map((q) => q.kind)).toEqual(['status', 'diffs', 'diffs', 'status']);
  expect(await stored(buildId)).toHaveLength(1);
});

test('an invalid snapshot is listed as invalid; a node Sauce sends malformed is left out, still counted', async () => {
  const buildId = newBuildId();
  const build = buildWithDiffs('ERRORED', { ERRORED: 1, UNAPPROVED: 1 }, seq);
  build.diffs![0] = { ...build.diffs![0]!, snapshot: snapshot('Cart', { error: { code: 'IMAGE_TOO_LARGE' } }) };
  build.rawNodes = [{ status: 'ERRORED', node: { id: 'not-a-diff', snapshot: { name: 42 } } }];
  build.summary = { ...build.summary, errored: 2 };
  sauce.setBuild(buildId, build);
  const r = makeRefresher();
  await track(r, webhook(buildId, build));
  await r.tick();
  const [event] = await stored(buildId);
  const notes = parseVisualNotesText(event!.extra);
  expect(notes.diffs?.totals).toEqual({ UNAPPROVED: 1, ERRORED: 2 });
  expect(notes.diffs?.items.map((d) => [d.status, d.snapshot, d.invalid])).toEqual([
    ['UNAPPROVED', 'Cart', 'IMAGE_TOO_LARGE'],
    ['ERRORED', 'Errored 1', null],
  ]);
  // ERRORED is decided: one read for the list, then no longer watched.
  expect(await store.listVisualWatches(10)).toEqual([]);
});

test('a 5xx in the middle of the pages: the new status goes without a list, and the list follows at the next read', async () => {
  const buildId = newBuildId();
  const queued = buildWithDiffs('QUEUED', { QUEUED: 6, EQUAL: 3 }, seq);
  const unapproved = buildWithDiffs('UNAPPROVED', { UNAPPROVED: 6, EQUAL: 3 }, seq);
  sauce.setBuild(buildId, unapproved);
  const r = makeRefresher({ diffLimits: { pageSize: 3, maxItems: 100, maxRequests: 3 } });
  await track(r, webhook(buildId, queued));
  sauce.failNext(503, 1, { only: 'diffs', after: 1 });
  await r.tick();
  let events = await stored(buildId);
  expect(events).toHaveLength(1);
  expect(JSON.parse(events[0]!.body)).toMatchObject({ status: 'UNAPPROVED' });
  expect(events[0]!.extra).toBeNull();
  expect(requestsFor(buildId).map((q) => q.kind)).toEqual(['status', 'diffs', 'diffs']);

  clock.t += MIN;
  await r.tick();
  events = await stored(buildId);
  expect(events).toHaveLength(2);
  expect(events[1]!.body).toBe(events[0]!.body);
  expect(parseVisualNotesText(events[1]!.extra).diffs?.items).toHaveLength(6);
});

test('a build that never finishes: the stuck verdict once, on time; then Sauce’s later result wins', async () => {
  const buildId = newBuildId();
  const queued = buildWithDiffs('QUEUED', { QUEUED: 4, EQUAL: 2 }, seq);
  sauce.setBuild(buildId, queued);
  const r = makeRefresher({ stuckAfterMs: 2 * HOUR });
  await track(r, webhook(buildId, queued));
  // Read on every due time up to just before the deadline: nothing to say.
  for (;;) {
    const [w] = await store.listVisualWatches(10);
    if (w!.nextCheckAt >= T0 + 2 * HOUR) break;
    clock.t = Math.max(clock.t, w!.nextCheckAt);
    await r.tick();
  }
  expect(await stored(buildId)).toEqual([]);
  // The next read is scheduled at the deadline itself, not 5 minutes past it.
  expect((await store.listVisualWatches(10))[0]!.nextCheckAt).toBe(T0 + 2 * HOUR);
  clock.t = T0 + 2 * HOUR;
  await r.tick();
  let events = await stored(buildId);
  expect(events).toHaveLength(1);
  expect(events[0]!.body).toBe(webhook(buildId, queued)); // Sauce's word unchanged: still QUEUED
  expect(parseVisualNotesText(events[0]!.extra).stuck).toEqual({ since: T0, afterMs: 2 * HOUR, at: T0 + 2 * HOUR });

  // Still QUEUED later: not said again.
  clock.t += 5 * MIN;
  await r.tick();
  expect(await stored(buildId)).toHaveLength(1);

  // Sauce finishes late, with changes to review: a new event, no verdict, the list.
  const unapproved = buildWithDiffs('UNAPPROVED', { UNAPPROVED: 3, EQUAL: 3 }, seq);
  sauce.setBuild(buildId, unapproved);
  clock.t += 5 * MIN;
  await r.tick();
  events = await stored(buildId);
  expect(events).toHaveLength(2);
  expect(JSON.parse(events[1]!.body)).toMatchObject({ status: 'UNAPPROVED' });
  expect(parseVisualNotesText(events[1]!.extra)).toMatchObject({ stuck: null, diffs: { totals: { UNAPPROVED: 3 } } });
});

test('past the timeout while Sauce does not answer: no verdict until Sauce says the build is still unfinished', async () => {
  const buildId = newBuildId();
  const queued = buildWithDiffs('RUNNING', { QUEUED: 2 }, seq);
  sauce.setBuild(buildId, queued);
  const r = makeRefresher({ stuckAfterMs: 2 * HOUR });
  await track(r, webhook(buildId, queued));
  await r.tick();
  clock.t = T0 + 3 * HOUR;
  sauce.failNext(503, 1, { only: 'status' });
  await r.tick();
  expect(await stored(buildId)).toEqual([]);
  clock.t = (await store.listVisualWatches(10))[0]!.nextCheckAt;
  await r.tick();
  const events = await stored(buildId);
  expect(events).toHaveLength(1);
  expect(parseVisualNotesText(events[0]!.extra).stuck).toEqual({ since: T0, afterMs: 2 * HOUR, at: clock.t });
});

test('the refresh period ends on a build awaiting review: a last word, then no more reads', async () => {
  const buildId = newBuildId();
  const build = buildWithDiffs('UNAPPROVED', { UNAPPROVED: 2 }, seq);
  sauce.setBuild(buildId, build);
  const r = makeRefresher({ watchForMs: 3 * HOUR });
  await track(r, webhook(buildId, build));
  await r.tick();
  const reads = requestsFor(buildId).length;
  clock.t = T0 + 3 * HOUR;
  await r.tick();
  const events = await stored(buildId);
  expect(events).toHaveLength(2);
  expect(events[1]!.body).toBe(events[0]!.body);
  const notes = parseVisualNotesText(events[1]!.extra);
  expect(notes.watchEnded).toEqual({ at: T0 + 3 * HOUR, afterMs: 3 * HOUR });
  expect(notes.diffs).toEqual(parseVisualNotesText(events[0]!.extra).diffs);
  expect(requestsFor(buildId)).toHaveLength(reads);
  expect(await store.listVisualWatches(10)).toEqual([]);
});

test('decided webhooks: REJECTED is read once for its list; APPROVED is not read at all', async () => {
  const rejectedId = newBuildId();
  const rejected = buildWithDiffs('REJECTED', { REJECTED: 2, EQUAL: 1 }, seq);
  const approvedId = newBuildId();
  const approved = buildWithDiffs('APPROVED', { APPROVED: 2 }, seq);
  sauce.setBuild(rejectedId, rejected);
  sauce.setBuild(approvedId, approved);
  const r = makeRefresher();
  await track(r, webhook(rejectedId, rejected));
  await track(r, webhook(approvedId, approved));
  await r.tick();
  expect(parseVisualNotesText((await stored(rejectedId))[0]!.extra).diffs?.items.map((d) => d.status)).toEqual(['REJECTED', 'REJECTED']);
  expect(requestsFor(approvedId)).toEqual([]);
  expect(await store.listVisualWatches(10)).toEqual([]);
});

test('hostile snapshot names stay text, cut to their limit; a list that would not fit is cut until the entry fits', async () => {
  const buildId = newBuildId();
  const hostile = (_s: string, n: number) => `${'<img src=x onerror=alert(1)>](javascript:x) **|** '.repeat(200)}${n}`;
  const build = buildWithDiffs('UNAPPROVED', { UNAPPROVED: 100 }, seq, hostile);
  sauce.setBuild(buildId, build);
  const r = makeRefresher();
  // A webhook body of 40 KB (Sauce's unknown fields travel too): the list must share what is left.
  await track(r, webhook(buildId, build, { vendor_details: 'v'.repeat(40_000) }));
  await r.tick();
  const [event] = await stored(buildId);
  const notes = parseVisualNotesText(event!.extra);
  const kept = notes.diffs!.items.length;
  expect(kept).toBeGreaterThan(0);
  expect(kept).toBeLessThan(100);
  expect(notes.diffs!.totals).toEqual({ UNAPPROVED: 100 });
  for (const d of notes.diffs!.items) expect(Array.from(d.snapshot!)).toHaveLength(SNAPSHOT_NAME_MAX_CHARS);
  const plan = planDispatches([event!]);
  expect(plan.rejected).toEqual([]);
  expect(plan.dispatches[0]!.truncated).toEqual([]); // Sauce's body is not shortened for the list
  const [entry] = (plan.dispatches[0]!.clientPayload as { events: Record<string, unknown>[] }).events;
  expect(utf8Bytes(JSON.stringify(entry))).toBeLessThanOrEqual(ENTRY_MAX_BYTES);
  expect((entry!.relay as { diffs: { items: unknown[] } }).diffs.items).toHaveLength(kept);
});

test('a started refresher reads a tracked webhook at once, not at its next poll', async () => {
  const buildId = newBuildId();
  const build = buildWithDiffs('UNAPPROVED', { UNAPPROVED: 1 }, seq);
  sauce.setBuild(buildId, build);
  // A 10-minute interval polls every 10 s: a read well before that is the webhook's own.
  refresher = new VisualRefresher({
    config: { ...CREDENTIALS, intervalMs: 10 * MIN, watchForMs: 72 * HOUR, stuckAfterMs: null, apiUrl: sauce.url },
    store,
    logger: silentLogger,
    regionOf: () => 'us-west-1',
  });
  refresher.start();
  const parsed = parseSauceEvent(JSON.parse(webhook(buildId, build)));
  if (!parsed.ok) throw new Error('fixture');
  await refresher.track({
    route: 'default',
    repo: 'acme/shop',
    eventType: 'saucelabs',
    body: webhook(buildId, build),
    event: parsed.event as VisualEvent,
    receivedAt: Date.now(),
  });
  await waitFor(async () => (await stored(buildId)).length === 1, 5_000, 'the list stored');
  expect(parseVisualNotesText((await stored(buildId))[0]!.extra).diffs?.items).toHaveLength(1);
});

test('every re-read is kept for the console with the watch: what Sauce answered, the event it stored, the error', async () => {
  const buildId = newBuildId();
  const unapproved = buildWithDiffs('UNAPPROVED', { UNAPPROVED: 2, EQUAL: 3 }, seq);
  sauce.setBuild(buildId, unapproved);
  const r = makeRefresher({ watchForMs: 3 * HOUR });
  await track(r, webhook(buildId, unapproved));
  await r.tick(); // the first read: the list of diffs is new, an event goes
  clock.t += MIN;
  await r.tick(); // nothing new
  clock.t += MIN;
  sauce.failNext(503, 1, { only: 'status' });
  await r.tick(); // Sauce fails
  clock.t += 10 * MIN;
  const approved = buildWithDiffs('APPROVED', { APPROVED: 2, EQUAL: 3 }, seq);
  sauce.setBuild(buildId, approved);
  await r.tick(); // decided: an event goes, the watch ends
  const events = await stored(buildId);
  expect(events).toHaveLength(2);
  const checks = await store.console.listVisualChecks('default', buildId, 50);
  expect(checks).toEqual([
    { at: T0, outcome: 'changed', status: 'UNAPPROVED', summary: unapproved.summary, error: null, eventId: events[0]!.id },
    { at: T0 + MIN, outcome: 'unchanged', status: 'UNAPPROVED', summary: unapproved.summary, error: null, eventId: null },
    { at: T0 + 2 * MIN, outcome: 'error', status: null, summary: null, error: expect.stringContaining('503'), eventId: null },
    { at: T0 + 12 * MIN, outcome: 'changed', status: 'APPROVED', summary: approved.summary, error: null, eventId: events[1]!.id },
  ]);
  expect(await store.listVisualWatches(10)).toEqual([]);

  // A build Sauce does not know, and a watch past its period: each ends with its re-read kept.
  const gone = newBuildId();
  const expired = newBuildId();
  sauce.setBuild(expired, unapproved);
  await track(r, webhook(gone, unapproved));
  await r.tick();
  expect(await store.console.listVisualChecks('default', gone, 50)).toEqual([
    { at: clock.t, outcome: 'not_found', status: null, summary: null, error: 'Sauce has no such build for these credentials', eventId: null },
  ]);
  await track(r, webhook(expired, unapproved));
  clock.t += 3 * HOUR;
  await r.tick();
  const [word] = (await stored(expired)).slice(-1);
  expect(await store.console.listVisualChecks('default', expired, 50)).toEqual([
    { at: clock.t, outcome: 'expired', status: null, summary: null, error: null, eventId: word!.id },
  ]);
});
