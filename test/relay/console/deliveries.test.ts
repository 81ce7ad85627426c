import { BadCursorError } from '../../../src/relay/console/deliveries.js';
import type { DeliveryQuery, DeliverySummary } from '../../../src/relay/console/source.js';
import { sauceFixture } from '../support/common.js';
import { createMemorySource } from './memory-source.js';
import { seed } from './seed.js';

const ids = (items: readonly DeliverySummary[]) => items.map((i) => i.id);

async function all(source: ReturnType<typeof createMemorySource>['source'], query: Omit<DeliveryQuery, 'cursor'>): Promise<DeliverySummary[]> {
  const out: DeliverySummary[] = [];
  let cursor: string | null = null;
  for (let pages = 0; pages < 1000; pages += 1) {
    const page = await source.list({ ...query, cursor });
    out.push(...page.items);
    if (page.next === null) return out;
    cursor = page.next;
  }
  throw new Error('no end');
}

describe('one list of stored events and refused requests, newest first', () => {
  test('the seeded console: every item once, in order, across pages of any size', async () => {
    const m = createMemorySource();
    seed(m);
    const whole = await m.source.list({ limit: 200 });
    expect(whole.next).toBeNull();
    expect(whole.items).toHaveLength(m.store.events.size + m.store.requests.length);
    const times = whole.items.map((i) => i.receivedAt);
    expect([...times].sort((a, b) => b - a)).toEqual(times);
    for (const size of [1, 2, 3, 7]) expect(ids(await all(m.source, { limit: size }))).toEqual(ids(whole.items));
  });

  test.each([
    ['dead', { outcome: 'dead' }, (s: ReturnType<typeof seed>) => [s.hostile, s.deadMobile2, s.deadMobile]],
    ['retrying', { outcome: 'retrying' }, (s: ReturnType<typeof seed>) => [s.retrying]],
    ['stored', { outcome: 'stored' }, (s: ReturnType<typeof seed>) => [s.visualRefreshed]],
    ['duplicate', { outcome: 'duplicate' }, (s: ReturnType<typeof seed>) => [s.duplicate]],
    ['filtered', { outcome: 'filtered' }, (s: ReturnType<typeof seed>) => [s.filtered]],
    ['route mobile, dead', { route: 'mobile', outcome: 'dead' }, (s: ReturnType<typeof seed>) => [s.deadMobile2, s.deadMobile]],
    ['Visual builds', { kind: 'visual' }, (s: ReturnType<typeof seed>) => [s.visualRefreshed, s.visual]],
    ['text "checkout"', { text: 'checkout' }, (s: ReturnType<typeof seed>) => [s.deadMobile2, s.deadMobile]],
    ['repository', { repo: 'ACME/mobile' }, (s: ReturnType<typeof seed>) => [s.deadMobile2, s.deadMobile]],
  ] as const)('filter: %s', async (_name, query, expected) => {
    const m = createMemorySource();
    const s = seed(m);
    expect(ids(await all(m.source, { limit: 2, ...query }))).toEqual(expected(s));
  });

  test('refused requests carry their answer; a text search passes over those without an event', async () => {
    const m = createMemorySource();
    seed(m);
    const refused = (await m.source.list({ limit: 50, outcome: 'refused' })).items;
    expect(refused.map((i) => i.outcome.state === 'refused' && i.outcome.status)).toEqual([408, 413, 422, 400, 401]);
    expect((await m.source.list({ limit: 50, text: 'login' })).items.map((i) => i.outcome.state)).toEqual(['duplicate', 'filtered', 'dispatched']);
  });

  test('a scan budget ends a page early, with a cursor to go on; nothing is skipped or repeated', async () => {
    const m = createMemorySource({ scanLimit: 60, now: 2000 });
    const body = sauceFixture('job-vdc-passed.json').toString('utf8');
    const rdc = sauceFixture('job-rdc-failed-tags.json').toString('utf8');
    for (let i = 0; i < 300; i += 1) m.store.add({ receivedAt: 1000 + i, body: i % 100 === 0 ? rdc : body });
    for (let i = 0; i < 300; i += 7) m.refuse({ receivedAt: 1000 + i, route: 'default', status: 401, code: 'signature', reason: 'x', bytes: 1 });
    const first = await m.source.list({ limit: 10, kind: 'rdc' });
    expect(first.items.length).toBeLessThan(3);
    expect(first.next).not.toBeNull();
    expect((await all(m.source, { limit: 10, kind: 'rdc' })).map((i) => i.receivedAt)).toEqual([1200, 1100, 1000]);
    const everything = await all(m.source, { limit: 10 });
    expect(everything).toHaveLength(300 + 43);
    expect(new Set(ids(everything)).size).toBe(everything.length);
  });

  test('a cursor this list did not make is refused', async () => {
    const m = createMemorySource();
    await expect(m.source.list({ limit: 5, cursor: 'bm90IGEgY3Vyc29y' })).rejects.toBeInstanceOf(BadCursorError);
  });
});

describe('one delivery', () => {
  test('a stored event: the body as received, pretty-printed, its commits, attempts and Visual history', async () => {
    const m = createMemorySource();
    const s = seed(m);
    const d = await m.source.get(s.visual);
    expect(d).toMatchObject({ type: 'event', eventType: 'saucelabs', summary: { outcome: { state: 'dispatched', status: 204 } } });
    if (d?.type !== 'event') throw new Error('not an event');
    expect(d.body).toBe(sauceFixture('visual-unapproved.json').toString('utf8'));
    expect(JSON.parse(d.pretty!)).toEqual(JSON.parse(d.body));
    expect(d.commits[0]).toEqual({ kind: 'sha', value: '9fceb02d0ae598e95dc970b74767f19372d61af8', source: 'build_name' });
    expect(d.visual?.map((v) => v.outcome)).toEqual(['unchanged', 'error', 'decided']);
    expect(d.visual?.[2]?.eventId).toBe(s.visualRefreshed);
    const job = await m.source.get(s.retrying);
    expect(job?.type === 'event' && job.attempts.map((a) => a.status)).toEqual([502, null]);
    expect(job?.type === 'event' && job.visual).toBeNull();
  });

  test('a refused request: its metadata only', async () => {
    const m = createMemorySource();
    const s = seed(m);
    const d = await m.source.get(s.signature);
    expect(d).toMatchObject({ type: 'request', request: { status: 401, code: 'signature', signature: 'deadbeef…', source: '203.0.113.7' } });
    expect(JSON.stringify(d)).not.toContain('cafebabe');
    expect(await m.source.get('req-mem-zzzz')).toBeNull();
    expect(await m.source.get('no-such-event')).toBeNull();
  });
});

describe('actions', () => {
  test('requeue a dead event; then it is stored, and dispatched once the dispatcher ran', async () => {
    const m = createMemorySource();
    const s = seed(m);
    const marker = await m.source.marker();
    expect(await m.source.requeue(s.deadMobile)).toEqual({ ok: true, count: 1 });
    expect(await m.source.marker()).not.toBe(marker);
    expect((await m.source.get(s.deadMobile))?.summary.outcome).toEqual({ state: 'stored' });
    m.store.dispatchDue(m.clock.now);
    expect((await m.source.get(s.deadMobile))?.summary.outcome).toMatchObject({ state: 'dispatched', status: 204 });
  });

  test.each([
    ['requeue', 'a dispatched event', 'passed', 'not_dead'],
    ['requeue', 'a refused request', 'signature', 'not_found'],
    ['requeue', 'an unknown id', null, 'not_found'],
    ['resend', 'a dead event', 'hostile', 'not_delivered'],
    ['resend', 'a refused request', 'duplicate', 'not_found'],
  ] as const)('%s %s: refused with %s, nothing changes', async (action, _what, key, code) => {
    const m = createMemorySource();
    const s = seed(m);
    const before = await m.source.marker();
    const result = await m.source[action](key === null ? 'nope' : s[key]);
    expect(result).toMatchObject({ ok: false, code });
    expect(await m.source.marker()).toBe(before);
  });

  test('requeue every dead event of a route; send a dispatched one again', async () => {
    const m = createMemorySource();
    const s = seed(m);
    expect(await m.source.requeueRoute('mobile')).toEqual({ ok: true, count: 2 });
    expect(await m.source.requeueRoute('mobile')).toEqual({ ok: true, count: 0 });
    expect((await m.source.get(s.hostile))?.summary.outcome.state).toBe('dead');
    expect(await m.source.resend(s.passed)).toEqual({ ok: true, count: 1 });
    expect((await m.source.get(s.passed))?.summary.outcome).toEqual({ state: 'stored' });
  });
});
