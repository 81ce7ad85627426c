/**
 * The delivery console's part of the store contract (`ConsoleStore`, src/relay/console/source.ts)
 * as one suite, run against both stores by sqlite-store.test.ts and postgres-store.test.ts: the
 * newest-first list and its keyset pages, the dispatch attempts the marks record, Visual re-reads,
 * the three actions, refused requests, the change marker, and the bounds on every console table.
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { compareNewestFirst } from '../../../src/relay/console/derive.js';
import type { ConsoleStore, EventRowQuery, RequestRecord, RequestRowQuery } from '../../../src/relay/console/source.js';
import { MAX_ATTEMPTS_KEPT, MAX_VISUAL_CHECKS_KEPT, type DispatchAttempt, type VisualCheck } from '../../../src/relay/outbox/store.js';
import { DAY, T0, contractEvent, contractWatch, type ContractStore, type ContractSubject } from './store-contract.js';

export type ConsoleContractStore = ContractStore & { readonly console: ConsoleStore };

export type ConsoleTable = 'attempts' | 'visual_checks' | 'requests';

export interface ConsoleContractSubject extends Omit<ContractSubject, 'open'> {
  open(): Promise<ConsoleContractStore>;
  /** Rows in one of the console's tables, read from outside the store. */
  rows(table: ConsoleTable): Promise<number>;
}

const query = (overrides: Partial<EventRowQuery> = {}): EventRowQuery => ({
  after: null,
  limit: 100,
  route: null,
  repo: null,
  states: null,
  attempted: null,
  ...overrides,
});

const requestQuery = (overrides: Partial<RequestRowQuery> = {}): RequestRowQuery => ({
  after: null,
  limit: 100,
  route: null,
  repo: null,
  codes: null,
  since: 0,
  ...overrides,
});

function attempt(overrides: Partial<DispatchAttempt> = {}): DispatchAttempt {
  return { at: T0 + 5_000, dispatchId: 'd-1', events: 1, status: 204, message: 'accepted', result: 'sent', code: null, ...overrides };
}

function refused(n: number, overrides: Partial<RequestRecord> = {}): RequestRecord {
  return {
    id: `req-t-${n.toString(36).padStart(4, '0')}`,
    receivedAt: T0 + n,
    route: 'web',
    repo: null,
    status: 401,
    code: 'signature',
    reason: 'saucelabs-sign matches no secret of the route',
    bytes: 100 + n,
    source: '203.0.113.7',
    signature: 'deadbeef…',
    issues: [],
    event: null,
    duplicateOf: null,
    ...overrides,
  };
}

function check(n: number, overrides: Partial<VisualCheck> = {}): VisualCheck {
  return { at: T0 + n, outcome: 'unchanged', status: 'UNAPPROVED', summary: null, error: null, eventId: null, ...overrides };
}

const KEEP = { now: T0 + 1_000_000, maxAgeMs: DAY, maxCount: 10_000 };

export function describeConsoleContract(name: string, subject: () => ConsoleContractSubject): void {
  describe(`${name}: the delivery console's store`, () => {
    let store: ConsoleContractStore;
    const others: ConsoleContractStore[] = [];

    beforeEach(async () => {
      await subject().reset();
      store = await subject().open();
    });

    afterEach(async () => {
      for (const s of others.splice(0)) await s.close();
      await store.close();
    });

    /** Store an event and carry it to a state, as the dispatcher would. */
    async function stored(n: number, overrides: Parameters<typeof contractEvent>[1] = {}): Promise<string> {
      const r = await store.insert(contractEvent(n, overrides), DAY);
      if (r.kind !== 'stored') throw new Error('not stored');
      return r.id;
    }
    async function mark(id: string, how: 'delivered' | 'dead' | 'retry', a?: DispatchAttempt, at = T0 + 10_000): Promise<number> {
      expect((await store.claim('me', at, 60_000, 1_000)).map((e) => e.id)).toContain(id);
      const others = (await store.list('pending', 1_000)).map((e) => e.id).filter((x) => x !== id);
      await store.release('me', others);
      if (how === 'delivered') return store.markDelivered('me', [id], at, a);
      if (how === 'dead') return store.markDead('me', [id], '404 repository not found', a);
      return store.markRetry('me', [id], at + 60_000, 'GitHub 502', a);
    }

    describe('the list', () => {
      it('newest first by (receivedAt, id), whole rows with their bodies; keyset pages see every row once, ties too', async () => {
        const extra = '{"diffs":1}';
        for (let i = 0; i < 12; i++) await stored(i, { receivedAt: T0 + 1000 + Math.floor(i / 3), extra: i === 4 ? extra : null });
        const all = await store.console.listEvents(query());
        expect(all).toHaveLength(12);
        const expected = [...all].sort(compareNewestFirst);
        expect(all.map((e) => e.id)).toEqual(expected.map((e) => e.id));
        expect(all.map((e) => e.receivedAt)).toEqual([3, 3, 3, 2, 2, 2, 1, 1, 1, 0, 0, 0].map((k) => T0 + 1000 + k));
        const four = all.find((e) => JSON.parse(e.body).n === 4)!;
        expect(four).toMatchObject({ route: 'default', repo: 'acme/shop', eventType: 'saucelabs', extra, state: 'pending', attempts: 0, lastAttempt: null });
        expect(four.body).toBe(contractEvent(4).body);
        for (const size of [1, 2, 5]) {
          const seen: string[] = [];
          let after: EventRowQuery['after'] = null;
          for (;;) {
            const page = await store.console.listEvents(query({ after, limit: size }));
            seen.push(...page.map((e) => e.id));
            if (page.length < size) break;
            after = { receivedAt: page.at(-1)!.receivedAt, id: page.at(-1)!.id };
          }
          expect(seen).toEqual(expected.map((e) => e.id));
        }
        // A position that is not an event's own (a refused request's id at the same time) cuts the same way.
        const tie = { receivedAt: T0 + 1002, id: 'req-zzz' };
        expect((await store.console.listEvents(query({ after: tie }))).map((e) => e.id)).toEqual(
          expected.filter((e) => compareNewestFirst(e, tie) > 0).map((e) => e.id),
        );
      });

      it('filters by route, repository (any case), state and whether an attempt was made', async () => {
        const web = await stored(1, { route: 'web' });
        const mobile = await stored(2, { route: 'mobile', repo: 'Acme/Mobile' });
        const done = await stored(3);
        const dead = await stored(4, { repo: 'acme/other' });
        const retrying = await stored(5, { repo: 'acme/third' });
        await mark(done, 'delivered', attempt());
        await mark(dead, 'dead', attempt({ status: 404, message: 'Not Found', result: 'fatal', code: 'not_found' }));
        await mark(retrying, 'retry', attempt({ status: 502, message: 'Bad Gateway', result: 'retry', code: 'server_error' }));
        const ids = async (q: Partial<EventRowQuery>) => (await store.console.listEvents(query(q))).map((e) => e.id);
        expect(await ids({ route: 'web' })).toEqual([web]);
        expect(await ids({ repo: 'ACME/mobile' })).toEqual([mobile]);
        expect(await ids({ states: ['delivered'] })).toEqual([done]);
        expect(await ids({ states: ['dead'] })).toEqual([dead]);
        expect(await ids({ states: ['pending'], attempted: false })).toEqual([mobile, web]);
        expect(await ids({ states: ['pending'], attempted: true })).toEqual([retrying]);
        expect(await ids({ states: ['delivered', 'dead'] })).toEqual([dead, done]);
        expect(await ids({ states: [] })).toEqual([]);
        expect(await ids({ route: 'default', states: ['pending'] })).toEqual([retrying]);
        // GitHub's refusal counts as the attempt it was.
        expect((await store.console.getEvent(dead))?.attempts).toBe(1);
      });
    });

    describe('dispatch attempts', () => {
      it('a mark records its attempt for each event it changed: the list shows the latest, the event all of them', async () => {
        const id = await stored(1);
        const retry = attempt({ at: T0 + 20_000, dispatchId: 'd-a', status: 502, message: 'Bad Gateway', result: 'retry', code: 'server_error' });
        const timeout = attempt({ at: T0 + 80_000, dispatchId: 'd-b', status: null, message: 'timeout', result: 'retry', code: 'timeout' });
        const sent = attempt({ at: T0 + 200_000, dispatchId: 'd-c', events: 3 });
        expect(await mark(id, 'retry', retry, T0 + 20_000)).toBe(1);
        expect(await mark(id, 'retry', timeout, T0 + 80_000)).toBe(1);
        expect(await mark(id, 'delivered', sent, T0 + 200_000)).toBe(1);
        const [row] = await store.console.listEvents(query());
        expect(row).toMatchObject({ id, state: 'delivered', attempts: 3, lastAttempt: sent });
        const detail = await store.console.getEvent(id);
        expect(detail?.attemptHistory).toEqual([retry, timeout, sent]);
        expect(detail?.lastAttempt).toEqual(sent);
        expect(await store.console.getEvent('00000000-0000-4000-8000-000000000000')).toBeNull();
        expect(await store.console.getEvent('not-an-id')).toBeNull();
      });

      it('a mark that changes nothing (lease lost) records nothing; a mark without an attempt records none', async () => {
        const a = await stored(1);
        const b = await stored(2, { repo: 'acme/other' });
        expect(await store.claim('slow', T0 + 100, 1_000, 10)).toHaveLength(2);
        expect(await store.claim('fast', T0 + 1_100, 60_000, 10)).toHaveLength(2);
        expect(await store.markDelivered('slow', [a], T0 + 1_200, attempt())).toBe(0);
        expect(await store.markDead('slow', [b], 'late', attempt({ result: 'fatal', status: 422, code: 'unprocessable' }))).toBe(0);
        expect(await store.markRetry('slow', [a], T0 + 9_000, 'late', attempt({ result: 'retry' }))).toBe(0);
        expect(await subject().rows('attempts')).toBe(0);
        expect(await store.markDelivered('fast', [a, b], T0 + 1_300)).toBe(2);
        expect(await subject().rows('attempts')).toBe(0);
        expect((await store.console.getEvent(a))?.attemptHistory).toEqual([]);
      });

      it('dead: GitHub refusing the dispatch counts as an attempt; given up without one (too old, unreadable) does not', async () => {
        const refused = await stored(1);
        const old = await stored(2, { repo: 'acme/other' });
        expect(await store.claim('me', T0 + 100, 60_000, 10)).toHaveLength(2);
        expect(await store.markDead('me', [refused], '422', attempt({ result: 'fatal', status: 422, code: 'unprocessable' }))).toBe(1);
        expect(await store.markDead('me', [old], 'undelivered 72 h after receipt')).toBe(1);
        expect((await store.console.getEvent(refused))?.attempts).toBe(1);
        expect((await store.console.getEvent(old))?.attempts).toBe(0);
      });

      it('one dispatch of several events: one row each, the same dispatch id and count', async () => {
        const ids = [await stored(1), await stored(2), await stored(3)];
        expect(await store.claim('me', T0 + 100, 60_000, 10)).toHaveLength(3);
        const sent = attempt({ dispatchId: 'd-group', events: 3 });
        expect(await store.markDelivered('me', ids, T0 + 200, sent)).toBe(3);
        for (const id of ids) expect((await store.console.getEvent(id))?.attemptHistory).toEqual([sent]);
        expect(await subject().rows('attempts')).toBe(3);
      });

      it(`keeps the latest ${MAX_ATTEMPTS_KEPT} attempts of an event`, async () => {
        const id = await stored(1);
        for (let i = 0; i < MAX_ATTEMPTS_KEPT + 5; i++) {
          const at = T0 + 1_000_000 * (i + 1);
          expect(await store.claim('me', at, 60_000, 10)).toHaveLength(1);
          await store.markRetry('me', [id], at + 1, 'GitHub 502', attempt({ at, dispatchId: `d-${i}`, result: 'retry', status: 502, code: 'server_error' }));
        }
        const history = (await store.console.getEvent(id))!.attemptHistory;
        expect(history).toHaveLength(MAX_ATTEMPTS_KEPT);
        expect(history[0]?.dispatchId).toBe('d-5');
        expect(history.at(-1)?.dispatchId).toBe(`d-${MAX_ATTEMPTS_KEPT + 4}`);
        expect(await subject().rows('attempts')).toBe(MAX_ATTEMPTS_KEPT);
      }, 60_000);

      it('prune forgets delivered events with their attempts; dead ones keep theirs', async () => {
        const done = await stored(1);
        const dead = await stored(2, { repo: 'acme/other' });
        await mark(done, 'delivered', attempt(), T0 + 10);
        await mark(dead, 'dead', attempt({ result: 'fatal', status: 404, code: 'not_found', message: 'Not Found' }), T0 + 10);
        expect(await subject().rows('attempts')).toBe(2);
        expect(await store.prune(T0 + 11)).toBe(1);
        expect(await store.console.getEvent(done)).toBeNull();
        expect((await store.console.getEvent(dead))?.attemptHistory).toHaveLength(1);
        expect(await subject().rows('attempts')).toBe(1);
      });
    });

    describe('the actions', () => {
      it('requeue every dead event of one route, due now, with a fresh age; other routes and states stay', async () => {
        const d1 = await stored(1, { route: 'mobile' });
        const d2 = await stored(2, { route: 'mobile', repo: 'acme/other' });
        const d3 = await stored(3, { route: 'web', repo: 'acme/third' });
        for (const id of [d1, d2, d3]) await mark(id, 'dead', attempt({ result: 'fatal', status: 404, code: 'not_found' }));
        const live = await stored(4, { route: 'mobile', repo: 'acme/fourth' });
        const now = T0 + 5 * DAY;
        expect(await store.console.requeueDead('mobile', now)).toBe(2);
        expect(await store.console.requeueDead('mobile', now)).toBe(0);
        const back = await store.claim('b', now, 1_000, 10);
        expect(back.map((e) => e.id).sort()).toEqual([d1, d2, live].sort());
        expect(back.find((e) => e.id === d1)).toMatchObject({ attempts: 0, nextAttemptAt: now, requeuedAt: now });
        expect((await store.list('dead', 10)).map((e) => e.id)).toEqual([d3]);
        // The history stays: the earlier attempt is still shown.
        expect((await store.console.getEvent(d1))?.attemptHistory).toHaveLength(1);
      });

      it('resend a delivered event: pending again, due now, counted as pending; only a delivered one', async () => {
        const done = await stored(1);
        const dead = await stored(2, { repo: 'acme/other' });
        await mark(done, 'delivered', attempt());
        await mark(dead, 'dead', attempt({ result: 'fatal' }));
        expect(await store.stats()).toEqual({ pending: 0, delivered: 1, dead: 1 });
        const now = T0 + 2 * DAY;
        expect(await store.console.resend(dead, now)).toBe(false);
        expect(await store.console.resend('00000000-0000-4000-8000-000000000000', now)).toBe(false);
        expect(await store.console.resend('nope', now)).toBe(false);
        expect(await store.console.resend(done, now)).toBe(true);
        expect(await store.console.resend(done, now)).toBe(false);
        expect(await store.stats()).toEqual({ pending: 1, delivered: 0, dead: 1 });
        const [again] = await store.claim('b', now, 1_000, 10);
        expect(again).toMatchObject({ id: done, attempts: 0, nextAttemptAt: now, requeuedAt: now });
        // Delivered again, and a later prune by the first delivery's time keeps it.
        await store.markDelivered('b', [done], now + 1, attempt({ at: now + 1, dispatchId: 'd-2' }));
        expect(await store.prune(now)).toBe(0);
        expect((await store.console.getEvent(done))?.attemptHistory.map((a) => a.dispatchId)).toEqual(['d-1', 'd-2']);
      });
    });

    describe('Visual re-reads', () => {
      it('recorded with the watch reschedule or end, oldest first, per route and build', async () => {
        await store.watchVisual(contractWatch('b1'));
        await store.watchVisual(contractWatch('b1', { route: 'team-b' }));
        const summary = { errored: 0, approved: 0, equal: 41, rejected: 0, unapproved: 3, queued: 0 };
        const first = check(1, { summary });
        const failed = check(2, { outcome: 'error', status: null, error: 'HTTP 503' });
        const decided = check(3, { outcome: 'decided', status: 'APPROVED', eventId: 'ev-9' });
        await store.rescheduleVisualWatch('default', 'b1', T0 + 60_000, { check: first });
        await store.rescheduleVisualWatch('default', 'b1', T0 + 120_000, { error: 'HTTP 503', check: failed });
        await store.endVisualWatch('default', 'b1', decided);
        await store.rescheduleVisualWatch('team-b', 'b1', T0 + 60_000, {});
        await store.endVisualWatch('team-b', 'b1');
        expect(await store.console.listVisualChecks('default', 'b1', 50)).toEqual([first, failed, decided]);
        expect(await store.console.listVisualChecks('default', 'b1', 2)).toEqual([failed, decided]);
        expect(await store.console.listVisualChecks('team-b', 'b1', 50)).toEqual([]);
        expect(await store.listVisualWatches(10)).toEqual([]);
      });

      it(`keeps the latest ${MAX_VISUAL_CHECKS_KEPT} re-reads of a build; prune forgets those older than its cutoff`, async () => {
        await store.watchVisual(contractWatch('b1'));
        for (let i = 0; i < MAX_VISUAL_CHECKS_KEPT + 3; i++) await store.rescheduleVisualWatch('default', 'b1', T0 + i, { check: check(i) });
        const kept = await store.console.listVisualChecks('default', 'b1', 1_000);
        expect(kept).toHaveLength(MAX_VISUAL_CHECKS_KEPT);
        expect(kept[0]?.at).toBe(T0 + 3);
        expect(await subject().rows('visual_checks')).toBe(MAX_VISUAL_CHECKS_KEPT);
        await store.prune(T0 + 100);
        expect((await store.console.listVisualChecks('default', 'b1', 1_000))[0]?.at).toBe(T0 + 100);
        expect(await subject().rows('visual_checks')).toBe(MAX_VISUAL_CHECKS_KEPT + 3 - 100);
      }, 60_000);
    });

    describe('refused requests', () => {
      it('recorded in one write, listed newest first with filters and keyset pages, read one by one', async () => {
        const dup = refused(5, { code: 'duplicate', status: 200, repo: 'Acme/Web', duplicateOf: 'ev-1', reason: 'same body' });
        const facts = { kind: 'vdc', sauceId: 'j1', name: '<b>x</b>', build: null, status: 'PASSED', passed: true, branch: null, commit: null, shortSha: null };
        const filtered = refused(6, { code: 'filtered', status: 202, route: 'mobile', event: facts as RequestRecord['event'] });
        const invalid = refused(7, { code: 'invalid_event', status: 422, issues: [{ field: 'status', message: 'Invalid option' }] });
        const records = [refused(1), refused(2, { route: null, status: 404, code: 'not_found' }), refused(3), refused(4), dup, filtered, invalid];
        await store.console.recordRequests(records, KEEP);
        const ids = async (q: Partial<RequestRowQuery>) => (await store.console.listRequests(requestQuery(q))).map((r) => r.id);
        expect(await store.console.listRequests(requestQuery())).toEqual([...records].reverse());
        expect(await ids({ route: 'mobile' })).toEqual([filtered.id]);
        expect(await ids({ repo: 'acme/WEB' })).toEqual([dup.id]);
        expect(await ids({ codes: ['duplicate', 'invalid_event'] })).toEqual([invalid.id, dup.id]);
        expect(await ids({ since: T0 + 4 })).toEqual([invalid.id, filtered.id, dup.id, refused(4).id]);
        expect(await ids({ after: { receivedAt: T0 + 3, id: refused(3).id }, limit: 2 })).toEqual([refused(2).id, refused(1).id]);
        // A position at the same time with an event's id (a uuid sorts before `req-`): the request at that time comes first, so it is older.
        expect(await ids({ after: { receivedAt: T0 + 3, id: '00000000-0000-4000-8000-000000000000' } })).toEqual([refused(2).id, refused(1).id]);
        expect(await store.console.getRequest(invalid.id)).toEqual(invalid);
        expect(await store.console.getRequest(filtered.id)).toEqual(filtered);
        expect(await store.console.getRequest('req-t-none')).toBeNull();
        // Another process on the same data sees them: every instance's console shows every instance's refusals.
        const other = await subject().open();
        others.push(other);
        expect(await other.console.getRequest(dup.id)).toEqual(dup);
      });

      it('pruned at each write to the latest maxCount and to maxAgeMs; a repeated id is written once', async () => {
        await store.console.recordRequests(
          Array.from({ length: 30 }, (_, i) => refused(i)),
          { ...KEEP, maxCount: 20 },
        );
        expect(await subject().rows('requests')).toBe(20);
        expect((await store.console.listRequests(requestQuery())).at(-1)?.id).toBe(refused(10).id);
        await store.console.recordRequests([refused(29), refused(30)], { now: T0 + 25 + DAY, maxAgeMs: DAY, maxCount: 20 });
        expect((await store.console.listRequests(requestQuery())).map((r) => r.receivedAt - T0)).toEqual([30, 29, 28, 27, 26, 25]);
      });
    });

    describe('the change marker', () => {
      it('moves on every change the list shows, and only then', async () => {
        const seen: string[] = [await store.console.changeMarker()];
        const moved = async (what: string) => {
          const m = await store.console.changeMarker();
          expect({ what, moved: !seen.includes(m) }).toEqual({ what, moved: true });
          seen.push(m);
        };
        const still = async (what: string) => expect({ what, marker: await store.console.changeMarker() }).toEqual({ what, marker: seen.at(-1) });

        const a = await stored(1);
        await moved('insert');
        const b = await stored(2, { repo: 'acme/other' });
        await moved('another insert');
        expect(await store.claim('me', T0 + 100, 60_000, 10)).toHaveLength(2);
        await still('a claim');
        await store.release('me', [b]);
        await still('a release');
        await store.markRetry('me', [a], T0 + 200, 'GitHub 502', attempt({ result: 'retry', status: 502 }));
        await moved('a retry, with its attempt');
        await store.claim('me', T0 + 300, 60_000, 10);
        await store.markDead('me', [a], '404', attempt({ result: 'fatal', status: 404 }));
        await moved('dead');
        await store.markDelivered('me', [b], T0 + 300, attempt());
        await moved('delivered');
        await store.requeue(a, T0 + 400);
        await moved('requeue');
        await store.console.resend(b, T0 + 400);
        await moved('resend');
        await store.console.recordRequests([refused(1)], KEEP);
        await moved('a refused request');
        await store.watchVisual(contractWatch('b1'));
        await store.rescheduleVisualWatch('default', 'b1', T0 + 1, { check: check(1) });
        await moved('a Visual re-read');
        await store.claim('me', T0 + 500, 60_000, 10);
        await store.markDelivered('me', [a, b], T0 + 500, attempt());
        await moved('both delivered');
        await store.prune(T0 + 501);
        await moved('prune');
        await still('nothing');
        // Another process sees the same marker.
        const other = await subject().open();
        others.push(other);
        expect(await other.console.changeMarker()).toBe(seen.at(-1));
      });
    });
  });
}
