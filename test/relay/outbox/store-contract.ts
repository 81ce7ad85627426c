/**
 * The store contract (src/relay/outbox/store.ts) as one test suite, run against both stores:
 * test/relay/outbox/sqlite-store.test.ts and postgres-store.test.ts call `describeStoreContract`.
 * "Two handles" on one store stand for two relay processes on one file or database.
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import type { EventStore, NewEvent, NewVisualWatch, VisualWatchStore } from '../../../src/relay/outbox/store.js';

export type ContractStore = EventStore & VisualWatchStore;

export interface ContractSubject {
  /** Empty the data: called before each test, with no handle open. */
  reset(): Promise<void>;
  /** A handle on the data (a process): each call opens another on the same data. */
  open(): Promise<ContractStore>;
}

export const DAY = 86_400_000;
export const T0 = Date.UTC(2026, 0, 1);

export function contractEvent(n: number, overrides: Partial<NewEvent> = {}): NewEvent {
  const body = JSON.stringify({ id: `job-${n}`, status: 'PASSED', n });
  return {
    route: 'default',
    repo: 'acme/shop',
    eventType: 'saucelabs',
    body,
    bodyHash: createHash('sha256').update(body).digest('hex'),
    receivedAt: T0 + n,
    ...overrides,
  };
}

export function contractWatch(buildId: string, overrides: Partial<NewVisualWatch> = {}): NewVisualWatch {
  return {
    route: 'default',
    buildId,
    repo: 'acme/shop',
    eventType: 'saucelabs',
    body: JSON.stringify({ build_id: buildId, status: 'UNAPPROVED' }),
    dataCenter: 'us-west-1',
    firstSeenAt: T0,
    nextCheckAt: T0 + 60_000,
    expiresAt: T0 + 3 * DAY,
    ...overrides,
  };
}

const nOf = (e: { body: string }) => (JSON.parse(e.body) as { n: number }).n;

export function describeStoreContract(name: string, subject: () => ContractSubject): void {
  describe(`${name}: the store contract`, () => {
    let store: ContractStore;
    const others: ContractStore[] = [];
    /** Another process on the same data, closed after the test. */
    const second = async () => {
      const s = await subject().open();
      others.push(s);
      return s;
    };

    beforeEach(async () => {
      await subject().reset();
      store = await subject().open();
    });

    afterEach(async () => {
      for (const s of others.splice(0)) await s.close();
      await store.close();
    });

    describe('insert and dedup', () => {
      it("stores an event with everything it was given, the relay's extra facts too", async () => {
        const plain = contractEvent(1);
        const extra = JSON.stringify({ visual: { diffs: [{ status: 'UNAPPROVED', name: 'cart' }] } });
        const a = await store.insert(plain, DAY);
        const b = await store.insert({ ...contractEvent(2), extra }, DAY);
        expect(a.kind).toBe('stored');
        const listed = await store.list('pending', 10);
        expect(listed).toEqual([
          { ...plain, id: a.id, state: 'pending', attempts: 0, nextAttemptAt: plain.receivedAt, lastError: null, extra: null },
          { ...contractEvent(2), extra, id: b.id, state: 'pending', attempts: 0, nextAttemptAt: T0 + 2, lastError: null },
        ]);
        expect(a.id.length).toBeLessThanOrEqual(36);
      });

      it('answers a duplicate (same route and body hash) within the window with the original id', async () => {
        const first = await store.insert(contractEvent(1), DAY);
        const again = await store.insert({ ...contractEvent(1), receivedAt: T0 + DAY - 2 }, DAY);
        expect(again).toEqual({ kind: 'duplicate', id: first.id });
        expect((await store.stats()).pending).toBe(1);
      });

      it('stores the same body again on another route, and after the window', async () => {
        const first = await store.insert(contractEvent(1), DAY);
        expect((await store.insert({ ...contractEvent(1), route: 'visual' }, DAY)).kind).toBe('stored');
        const later = await store.insert({ ...contractEvent(1), receivedAt: T0 + 1 + DAY }, DAY);
        expect(later.kind).toBe('stored');
        expect(later.id).not.toBe(first.id);
        // The window now counts from the new first receipt.
        expect(await store.insert({ ...contractEvent(1), receivedAt: T0 + 1 + DAY + 5 }, DAY)).toEqual({ kind: 'duplicate', id: later.id });
      });

      it('deduplicates events that carry their own time (occurredAt) as any other; another body at the same time is stored', async () => {
        const timed = (n: number) => contractEvent(n, { occurredAt: T0 - 60_000 + n });
        const first = await store.insert(timed(1), DAY);
        expect(await store.insert({ ...timed(1), receivedAt: T0 + 50 }, DAY)).toEqual({ kind: 'duplicate', id: first.id });
        expect((await store.insert(timed(2), DAY)).kind).toBe('stored');
        expect((await store.insert(contractEvent(3, { occurredAt: T0 - 60_000 + 1 }), DAY)).kind).toBe('stored');
        expect((await store.stats()).pending).toBe(3);
      });

      it('deduplicates identical bodies inside one batch; a window of 0 stores both', async () => {
        const [a, b] = await Promise.all([store.insert(contractEvent(7), DAY), store.insert(contractEvent(7), DAY)]);
        expect(a?.kind).toBe('stored');
        expect(b).toEqual({ kind: 'duplicate', id: a?.id });
        const [c, d] = await Promise.all([store.insert(contractEvent(8), 0), store.insert(contractEvent(8), 0)]);
        expect([c?.kind, d?.kind]).toEqual(['stored', 'stored']);
        expect(c?.id).not.toBe(d?.id);
      });

      it('two processes storing the same deliveries at once: each is stored once, the other answer is its duplicate', async () => {
        const other = await second();
        const events = Array.from({ length: 40 }, (_, i) => contractEvent(i));
        const [mine, theirs] = await Promise.all([
          Promise.all(events.map((e) => store.insert(e, DAY))),
          Promise.all([...events].reverse().map((e) => other.insert(e, DAY))),
        ]);
        theirs.reverse();
        for (let i = 0; i < events.length; i++) {
          expect(mine[i]!.id).toBe(theirs[i]!.id);
          expect([mine[i]!.kind, theirs[i]!.kind].sort()).toEqual(['duplicate', 'stored']);
        }
        expect(await store.stats()).toEqual({ pending: 40, delivered: 0, dead: 0 });
      });

      it('an insert resolves only once another process can read it (committed), many at once', async () => {
        const reader = await second();
        const results = await Promise.all(
          Array.from({ length: 200 }, async (_, i) => {
            const r = await store.insert(contractEvent(i), DAY);
            return { r, seen: (await reader.stats()).pending };
          }),
        );
        expect(new Set(results.map((x) => x.r.id)).size).toBe(200);
        // Each promise resolved after its event was visible to the other process: at least one event then.
        expect(results.every((x) => x.seen >= 1)).toBe(true);
        expect((await reader.list('pending', 1_000)).map(nOf).sort((a, b) => a - b)).toEqual(Array.from({ length: 200 }, (_, i) => i));
      });

      it('close() settles what was queued, then refuses new inserts and is not ready', async () => {
        const pending = store.insert(contractEvent(1), DAY);
        await store.close();
        await expect(pending).resolves.toMatchObject({ kind: 'stored' });
        await expect(store.insert(contractEvent(2), DAY)).rejects.toThrow(/closed/);
        expect(await store.readiness()).toMatchObject({ ready: false, code: 'closed' });
        store = await subject().open();
        expect(await store.readiness()).toEqual({ ready: true });
        expect((await store.list('pending', 10)).map(nOf)).toEqual([1]);
      });
    });

    describe('claims and leases', () => {
      it('hands each due event to one owner until its lease runs out; a dead owner’s events come back', async () => {
        for (let i = 0; i < 5; i++) await store.insert(contractEvent(i, { repo: `acme/r${i}` }), DAY);
        const now = T0 + 100;
        const a = await store.claim('a', now, 1_000, 3);
        expect(a.map(nOf)).toEqual([0, 1, 2]);
        const b = await store.claim('b', now, 1_000, 10);
        expect(b.map(nOf)).toEqual([3, 4]);
        expect(await store.claim('c', now + 999, 1_000, 10)).toEqual([]);
        const c = await store.claim('c', now + 1_000, 1_000, 10);
        expect(c.map(nOf)).toEqual([0, 1, 2, 3, 4]);
      });

      it('claims whole groups: events of a (repo, event_type) another owner holds stay with it, later arrivals too', async () => {
        const ids: string[] = [];
        for (let i = 0; i < 3; i++) ids.push((await store.insert(contractEvent(i), DAY)).id);
        await store.insert(contractEvent(50, { eventType: 'sauce-visual' }), DAY);
        await store.insert(contractEvent(60, { repo: 'acme/web' }), DAY);
        const now = T0 + 100;
        // 'a' takes two events of acme/shop + saucelabs (a limit cuts the group): it holds the group.
        expect((await store.claim('a', now, 10_000, 2)).map(nOf)).toEqual([0, 1]);
        for (let i = 3; i < 6; i++) ids.push((await store.insert(contractEvent(i), DAY)).id);
        // 'b' gets the other groups, nothing of the held one: neither its unclaimed event nor the new ones.
        expect((await store.claim('b', now + 10, 10_000, 100)).map(nOf)).toEqual([50, 60]);
        // The holder gets the rest of its group.
        expect((await store.claim('a', now + 20, 10_000, 100)).map(nOf)).toEqual([2, 3, 4, 5]);
        // Released in part: 'a' still holds the group, so the released event is still not for 'b'.
        expect(await store.release('a', [ids[5]!])).toBe(1);
        expect(await store.claim('b', now + 30, 10_000, 100)).toEqual([]);
        expect((await store.claim('a', now + 30, 10_000, 100)).map(nOf)).toEqual([5]);
        // Once 'a' marked or released all it held, the group is free.
        expect(await store.markDelivered('a', ids.slice(0, 4), now + 40)).toBe(4);
        expect(await store.markRetry('a', [ids[4]!], now + 40, 'GitHub 502')).toBe(1);
        await store.insert(contractEvent(6), DAY);
        expect(await store.release('a', [ids[5]!])).toBe(1);
        expect((await store.claim('b', now + 50, 10_000, 100)).map(nOf)).toEqual([4, 5, 6]);
      });

      it('a dead holder’s group goes to another owner when its lease runs out', async () => {
        for (let i = 0; i < 3; i++) await store.insert(contractEvent(i), DAY);
        expect(await store.claim('dead', T0 + 100, 1_000, 2)).toHaveLength(2);
        expect(await store.claim('b', T0 + 1_099, 1_000, 10)).toEqual([]);
        expect((await store.claim('b', T0 + 1_100, 1_000, 10)).map(nOf)).toEqual([0, 1, 2]);
      });

      it('does not hand out events before nextAttemptAt, or delivered and dead ones', async () => {
        const ids: string[] = [];
        for (let i = 0; i < 4; i++) ids.push((await store.insert(contractEvent(i), DAY)).id);
        const now = T0 + 100;
        await store.claim('a', now, 1_000, 10);
        await store.markDelivered('a', [ids[0]!], now);
        await store.markDead('a', [ids[1]!], '422 dispatch rejected');
        await store.markRetry('a', [ids[2]!], now + 5_000, 'GitHub 503');
        await store.release('a', [ids[3]!]);
        const again = await store.claim('b', now, 60_000, 10);
        expect(again.map((e) => e.id)).toEqual([ids[3]]);
        expect(again[0]?.attempts).toBe(0); // release counts no attempt
        expect(await store.release('b', [ids[3]!])).toBe(1);
        const later = await store.claim('b', now + 5_000, 1_000, 10);
        expect(later.map((e) => ({ id: e.id, attempts: e.attempts, lastError: e.lastError }))).toEqual([
          { id: ids[2], attempts: 1, lastError: 'GitHub 503' },
          { id: ids[3], attempts: 0, lastError: null },
        ]);
        expect(await store.stats()).toEqual({ pending: 2, delivered: 1, dead: 1 });
      });

      it('never turns a delivered event back into pending or dead', async () => {
        const { id } = await store.insert(contractEvent(1), DAY);
        expect(await store.claim('a', T0 + 10, 1_000, 10)).toHaveLength(1);
        expect(await store.markDelivered('a', [id], T0 + 10)).toBe(1);
        expect(await store.markRetry('a', [id], T0 + 20, 'late failure from a stale owner')).toBe(0);
        expect(await store.markDead('a', [id], 'late')).toBe(0);
        expect(await store.markDelivered('a', [id], T0 + 30)).toBe(0);
        expect(await store.stats()).toEqual({ pending: 0, delivered: 1, dead: 0 });
      });

      it('marks and releases change only events the owner still holds (two owners)', async () => {
        const ids: string[] = [];
        for (let i = 0; i < 4; i++) ids.push((await store.insert(contractEvent(i), DAY)).id);
        // 'slow' claims everything and stalls past its lease; 'fast' claims the lot and holds it now.
        expect(await store.claim('slow', T0 + 100, 1_000, 10)).toHaveLength(4);
        expect(await store.claim('fast', T0 + 1_100, 60_000, 10)).toHaveLength(4);
        expect(await store.markDelivered('slow', [ids[0]!], T0 + 1_200)).toBe(0);
        expect(await store.markRetry('slow', [ids[1]!], T0 + 9_000, 'GitHub 503')).toBe(0);
        expect(await store.markDead('slow', [ids[2]!], '422')).toBe(0);
        expect(await store.release('slow', [ids[3]!])).toBe(0);
        expect(await store.stats()).toEqual({ pending: 4, delivered: 0, dead: 0 });
        expect(await store.claim('third', T0 + 1_300, 1_000, 10)).toEqual([]);
        expect(await store.markDelivered('fast', [ids[0]!, ids[1]!], T0 + 1_400)).toBe(2);
        expect(await store.markRetry('fast', [ids[2]!], T0 + 2_000, 'GitHub 503')).toBe(1);
        expect(await store.release('fast', [ids[3]!])).toBe(1);
        expect((await store.claim('third', T0 + 1_500, 1_000, 10)).map((e) => e.id)).toEqual([ids[3]]);
        expect(await store.stats()).toEqual({ pending: 2, delivered: 2, dead: 0 });
      });

      it('an owner whose lease ran out but was not taken over still marks its events', async () => {
        const { id } = await store.insert(contractEvent(1), DAY);
        expect(await store.claim('a', T0 + 10, 1_000, 10)).toHaveLength(1);
        expect(await store.markDelivered('a', [id], T0 + 5_000)).toBe(1);
      });

      it('processes claiming at once never get the same event, nor parts of one group', async () => {
        const handles = [store, await second(), await second()];
        await Promise.all(Array.from({ length: 120 }, (_, i) => store.insert(contractEvent(i, { repo: `acme/r${i % 12}` }), DAY)));
        const got = new Map<string, string>();
        const groups = new Map<string, string>();
        await Promise.all(
          handles.map(async (h, k) => {
            // Each claims until it finds nothing: what another holds is that one's to finish.
            for (;;) {
              const claimed = await h.claim(`p${k}`, T0 + 1_000, 60_000, 7);
              if (claimed.length === 0) break;
              for (const e of claimed) {
                expect(got.has(e.id)).toBe(false);
                got.set(e.id, `p${k}`);
                const holder = groups.get(e.repo) ?? `p${k}`;
                expect(holder).toBe(`p${k}`);
                groups.set(e.repo, holder);
              }
            }
          }),
        );
        expect(got.size).toBe(120);
      });
    });

    describe('dead letters, requeue, prune, stats', () => {
      it('lists dead events with their reason and requeues one, due now, with a fresh age', async () => {
        const { id } = await store.insert(contractEvent(1), DAY);
        expect(await store.claim('a', T0 + 10, 1_000, 10)).toHaveLength(1);
        await store.markDead('a', [id], '404 repository not found');
        const [dead] = await store.list('dead', 10);
        expect(dead).toMatchObject({ id, state: 'dead', lastError: '404 repository not found' });
        expect(await store.requeue('no-such-id', T0 + 5)).toBe(false);
        expect(await store.requeue('00000000-0000-4000-8000-000000000000', T0 + 5)).toBe(false);
        const requeueAt = T0 + 4 * DAY;
        expect(await store.requeue(id, requeueAt)).toBe(true);
        expect(await store.requeue(id, requeueAt)).toBe(false); // no longer dead
        const [back] = await store.claim('b', requeueAt, 1_000, 10);
        expect(back).toMatchObject({ id, state: 'pending', attempts: 0, nextAttemptAt: requeueAt, requeuedAt: requeueAt, receivedAt: T0 + 1 });
      });

      it('prunes delivered events and dedup keys older than the cutoff, keeping pending and dead ones', async () => {
        const a = await store.insert(contractEvent(1), DAY);
        const b = await store.insert(contractEvent(2), DAY);
        await store.insert(contractEvent(3), DAY);
        expect(await store.claim('x', T0 + 10, 1_000, 10)).toHaveLength(3);
        await store.markDelivered('x', [a.id], T0 + 10);
        await store.markDead('x', [b.id], 'gone');
        expect(await store.prune(T0 + 5)).toBe(0);
        expect(await store.stats()).toEqual({ pending: 1, delivered: 1, dead: 1 });
        expect(await store.prune(T0 + 11)).toBe(1);
        expect(await store.stats()).toEqual({ pending: 1, delivered: 0, dead: 1 });
        expect(await store.list('delivered', 10)).toEqual([]);
        // Dedup keys went too: the same body is new again.
        expect((await store.insert({ ...contractEvent(1), receivedAt: T0 + 20 }, DAY)).kind).toBe('stored');
      });

      it('lists by state, oldest first, up to the limit', async () => {
        for (let i = 0; i < 5; i++) await store.insert(contractEvent(i), DAY);
        expect((await store.list('pending', 3)).map(nOf)).toEqual([0, 1, 2]);
        expect(await store.list('dead', 3)).toEqual([]);
      });
    });

    describe('Visual watches', () => {
      it('a newer webhook for a watched build takes its body; first sighting and expiry stay', async () => {
        await store.watchVisual(contractWatch('b1'));
        await store.watchVisual(
          contractWatch('b1', { body: '{"status":"QUEUED"}', firstSeenAt: T0 + 5000, nextCheckAt: T0 + 65_000, expiresAt: T0 + 9 * DAY }),
        );
        const [w] = await store.listVisualWatches(10);
        expect(w).toEqual({ ...contractWatch('b1'), body: '{"status":"QUEUED"}', extra: null, checks: 0, lastError: null });
      });

      it('the same build on another route is another watch', async () => {
        await store.watchVisual(contractWatch('b1'));
        await store.watchVisual(contractWatch('b1', { route: 'team-b' }));
        expect((await store.listVisualWatches(10)).map((w) => w.route).sort()).toEqual(['default', 'team-b']);
      });

      it('claims only due watches, and a claimed one is not claimable again until its lease runs out', async () => {
        await store.watchVisual(contractWatch('due-1', { nextCheckAt: T0 + 10 }));
        await store.watchVisual(contractWatch('due-2', { nextCheckAt: T0 + 20 }));
        await store.watchVisual(contractWatch('later', { nextCheckAt: T0 + 10_000 }));
        expect((await store.claimVisualWatches(T0 + 100, 60_000, 10)).map((w) => w.buildId)).toEqual(['due-1', 'due-2']);
        expect(await store.claimVisualWatches(T0 + 200, 60_000, 10)).toEqual([]);
        expect((await store.claimVisualWatches(T0 + 10_000, 60_000, 1)).map((w) => w.buildId)).toEqual(['later']);
        // A process that died mid-check: its lease runs out and another claims the watch.
        expect((await store.claimVisualWatches(T0 + 100 + 60_000, 60_000, 10)).map((w) => w.buildId).sort()).toEqual(['due-1', 'due-2']);
      });

      it('processes claiming at once re-read each build once', async () => {
        const handles = [store, await second(), await second()];
        for (let i = 0; i < 30; i++) await store.watchVisual(contractWatch(`b${i}`, { nextCheckAt: T0 + i }));
        const claimed = (await Promise.all(handles.map((h) => Promise.all([1, 2, 3].map(() => h.claimVisualWatches(T0 + 100, 60_000, 4)))))).flat(2);
        const ids = claimed.map((w) => w.buildId);
        expect(new Set(ids).size).toBe(ids.length);
        expect(ids.length).toBe(30);
      });

      it('reschedule counts the check, keeps or replaces the body, records or clears the error', async () => {
        await store.watchVisual(contractWatch('b1'));
        await store.rescheduleVisualWatch('default', 'b1', T0 + 120_000, { error: 'HTTP 503' });
        let [w] = await store.listVisualWatches(10);
        expect(w).toMatchObject({ nextCheckAt: T0 + 120_000, checks: 1, lastError: 'HTTP 503', body: contractWatch('b1').body });
        await store.rescheduleVisualWatch('default', 'b1', T0 + 180_000, { body: '{"status":"UNAPPROVED","n":2}' });
        [w] = await store.listVisualWatches(10);
        expect(w).toMatchObject({ nextCheckAt: T0 + 180_000, checks: 2, lastError: null, body: '{"status":"UNAPPROVED","n":2}' });
      });

      it('remembers the extra last sent: null from a webhook; set, kept and cleared by reschedule; a newer webhook clears it', async () => {
        await store.watchVisual(contractWatch('b1'));
        const extra = () => store.listVisualWatches(10).then((w) => w[0]!.extra);
        expect(await extra()).toBeNull();
        await store.rescheduleVisualWatch('default', 'b1', T0 + 1, { body: '{"status":"UNAPPROVED","n":2}', extra: '{"diffs":1}' });
        expect(await extra()).toBe('{"diffs":1}');
        await store.rescheduleVisualWatch('default', 'b1', T0 + 2, { error: 'HTTP 503' });
        expect(await extra()).toBe('{"diffs":1}');
        await store.rescheduleVisualWatch('default', 'b1', T0 + 3, { extra: null });
        expect(await extra()).toBeNull();
        await store.rescheduleVisualWatch('default', 'b1', T0 + 4, { extra: '{"stuck":1}' });
        await store.watchVisual(contractWatch('b1'));
        expect(await extra()).toBeNull();
        await store.rescheduleVisualWatch('default', 'b1', T0, { extra: '{"x":1}' });
        expect((await store.claimVisualWatches(T0 + 10, 60_000, 10))[0]!.extra).toBe('{"x":1}');
      });

      it('end removes only that watch, and survives a reopen', async () => {
        await store.watchVisual(contractWatch('b1'));
        await store.watchVisual(contractWatch('b2'));
        await store.endVisualWatch('default', 'b1');
        await store.endVisualWatch('default', 'no-such-build');
        await store.close();
        store = await subject().open();
        expect((await store.listVisualWatches(10)).map((w) => w.buildId)).toEqual(['b2']);
      });
    });
  });
}
