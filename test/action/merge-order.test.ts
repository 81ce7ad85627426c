/**
 * The merges of job and Visual records must not depend on the order events arrive in: runs see
 * events in any order, in any split between earlier runs (the state on GitHub) and this one. As
 * properties over random records (few distinct values, so ties are common) and random orders.
 */
import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { JOB_STATUSES, VISUAL_STATUSES } from '../../src/sauce/schema.js';
import { mergeJobs, mergeVisual, visualBuildsOldestFirst, type JobRecord, type VisualRecord } from '../../src/action/state.js';
import { NO_NOTES, type VisualDiff, type VisualNotes } from '../../src/sauce/visual-notes.js';

const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: null });

const jobRecord: fc.Arbitrary<JobRecord> = fc.record({
  id: fc.constantFrom('a', 'b', 'c'),
  family: fc.constantFrom('vdc' as const, 'rdc' as const),
  status: fc.constantFrom(...JOB_STATUSES),
  passed: maybe(fc.boolean()),
  name: maybe(fc.constantFrom('login', 'cart')),
  browser: maybe(fc.constantFrom('chrome 128', 'firefox 130')),
  os: maybe(fc.constantFrom('Windows 11', 'macOS 14')),
  device: maybe(fc.constantFrom('Pixel 8')),
  durationSec: maybe(fc.constantFrom(1, 2)),
  modifiedAt: maybe(fc.constantFrom(1, 2)),
  receivedAt: maybe(fc.constantFrom(10, 20)),
  checkRunId: maybe(fc.constantFrom(7, 8)),
  annotated: fc.boolean(),
  truncated: fc.constantFrom([], [{ field: 'exception', bytes: 70_000 }]),
});

const count = fc.constantFrom(0, 1, 2);
const DIFF: VisualDiff = {
  id: 'd1',
  status: 'UNAPPROVED',
  snapshot: 'Checkout',
  test: null,
  suite: null,
  browser: 'CHROME 128',
  device: null,
  os: null,
  viewport: null,
  invalid: null,
};
const visualRecord = (buildIds: readonly string[]): fc.Arbitrary<VisualRecord> =>
  fc.record({
    buildId: fc.constantFrom(...buildIds),
    buildName: maybe(fc.constantFrom('web', 'web 2')),
    buildUrl: maybe(fc.constantFrom('https://app.saucelabs.com/visual/builds/1')),
    project: maybe(fc.constantFrom('shop')),
    branch: maybe(fc.constantFrom('main', 'feature')),
    status: fc.constantFrom(...VISUAL_STATUSES),
    summary: fc.record({ errored: count, approved: count, equal: count, rejected: count, unapproved: count, queued: count }),
    receivedAt: maybe(fc.constantFrom(10, 20)),
    notes: fc.constantFrom<VisualNotes>(
      NO_NOTES,
      { ...NO_NOTES, stuck: { since: 1, afterMs: 7_200_000, at: 7_200_001 } },
      { ...NO_NOTES, diffs: { readAt: 5, totals: { UNAPPROVED: 1 }, items: [DIFF] } },
      { ...NO_NOTES, diffs: { readAt: 5, totals: { UNAPPROVED: 1 }, items: [DIFF] }, watchEnded: { at: 9, afterMs: 100 } },
    ),
  });

/** Records, a shuffled copy, and a point to split the shuffled copy at (earlier runs | this run). */
const shuffled = <T>(arb: fc.Arbitrary<T>) =>
  fc
    .array(arb, { minLength: 0, maxLength: 8 })
    .chain((records) =>
      fc.record({ records: fc.constant(records), other: fc.shuffledSubarray(records, { minLength: records.length }), cut: fc.nat({ max: records.length }) }),
    );

const RUNS = { numRuns: 500 };

const visualBase: VisualRecord = {
  buildId: 'b1',
  buildName: null,
  buildUrl: null,
  project: null,
  branch: null,
  status: 'APPROVED',
  summary: { errored: 0, approved: 1, equal: 0, rejected: 1, unapproved: 0, queued: 0 },
  receivedAt: null,
  notes: NO_NOTES,
};

describe('mergeJobs', () => {
  test('is commutative and associative: any order, any split gives the same jobs', () => {
    fc.assert(
      fc.property(shuffled(jobRecord), ({ records, other, cut }) => {
        const all = mergeJobs([], records).jobs;
        expect(mergeJobs([], other).jobs).toEqual(all);
        expect(mergeJobs(mergeJobs([], other.slice(0, cut)).jobs, other.slice(cut)).jobs).toEqual(all);
        // One at a time, as event after event arrives in its own run.
        expect(other.reduce<readonly JobRecord[]>((state, r) => mergeJobs(state, [r]).jobs, [])).toEqual(all);
      }),
      RUNS,
    );
  });

  test('is idempotent: merging what is already there changes nothing', () => {
    fc.assert(
      fc.property(fc.array(jobRecord, { maxLength: 8 }), (records) => {
        const all = mergeJobs([], records).jobs;
        expect(mergeJobs(all, records)).toEqual({ jobs: all, changed: [] });
      }),
      RUNS,
    );
  });
});

describe('mergeVisual', () => {
  test('is commutative and associative for one build: any order, any split gives the same record', () => {
    fc.assert(
      fc.property(shuffled(visualRecord(['b1'])), ({ records, other, cut }) => {
        const all = mergeVisual(null, records).build;
        expect(mergeVisual(null, other).build).toEqual(all);
        expect(mergeVisual(mergeVisual(null, other.slice(0, cut)).build, other.slice(cut)).build).toEqual(all);
      }),
      RUNS,
    );
  });

  test('is a total order over records of any builds too', () => {
    fc.assert(
      fc.property(shuffled(visualRecord(['b1', 'b2'])), ({ records, other, cut }) => {
        const all = mergeVisual(null, records).build;
        expect(mergeVisual(null, other).build).toEqual(all);
        expect(mergeVisual(mergeVisual(null, other.slice(0, cut)).build, other.slice(cut)).build).toEqual(all);
      }),
      RUNS,
    );
  });

  test('the builds of one context come out in the same order, whatever the arrival order', () => {
    const order = (records: readonly VisualRecord[]) =>
      visualBuildsOldestFirst(records, (r) => r).map((group) => [group[0]!.buildId, mergeVisual(null, group).build]);
    fc.assert(
      fc.property(shuffled(visualRecord(['b1', 'b2', 'b3'])), ({ records, other }) => {
        expect(order(other)).toEqual(order(records));
      }),
      RUNS,
    );
    const at = (buildId: string, receivedAt: number | null) => ({ ...visualBase, buildId, receivedAt });
    expect(order([at('b2', 30), at('b1', null), at('b3', 20), at('b1', 40)]).map(([id]) => id)).toEqual(['b3', 'b2', 'b1']);
    expect(order([at('b2', null), at('b1', null)]).map(([id]) => id)).toEqual(['b1', 'b2']);
  });

  test.each([
    ['APPROVED then REJECTED', ['APPROVED', 'REJECTED']],
    ['REJECTED then APPROVED', ['REJECTED', 'APPROVED']],
  ] as const)('without receive times, %s: the same answer (REJECTED, the safer)', (_order, statuses) => {
    expect(
      mergeVisual(
        null,
        statuses.map((status) => ({ ...visualBase, status })),
      ).build?.status,
    ).toBe('REJECTED');
  });

  test('without receive times a reviewed build wins over UNAPPROVED, and a final state over QUEUED, in either order', () => {
    for (const [a, b, want] of [
      ['UNAPPROVED', 'APPROVED', 'APPROVED'],
      ['QUEUED', 'EQUAL', 'EQUAL'],
      ['RUNNING', 'QUEUED', 'RUNNING'],
    ] as const) {
      expect(
        mergeVisual(null, [
          { ...visualBase, status: a },
          { ...visualBase, status: b },
        ]).build?.status,
      ).toBe(want);
      expect(
        mergeVisual(null, [
          { ...visualBase, status: b },
          { ...visualBase, status: a },
        ]).build?.status,
      ).toBe(want);
    }
  });
});
