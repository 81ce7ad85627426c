/** The decisions of one Visual refresh (pure, table-driven). */
import { afterStatusRead, bodyStatus, lastWord, nextCheckAt, stuckVerdict } from '../../../src/relay/visual/refresh-plan.js';
import { notesText, type VisualDiffList } from '../../../src/sauce/visual-notes.js';
import type { VisualStatus } from '../../../src/sauce/schema.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const T0 = 1_780_000_000_000;
const counts = (unapproved: number, rejected = 0) => ({ errored: 0, approved: 0, equal: 5, rejected, unapproved, queued: 0 });
const body = (status: VisualStatus, unapproved = 2) => JSON.stringify({ build_id: 'b1', status, summary: counts(unapproved) });
const LIST: VisualDiffList = {
  readAt: T0,
  totals: { UNAPPROVED: 2 },
  items: [{ id: 'd1', status: 'UNAPPROVED', snapshot: 'Cart', test: null, suite: null, browser: null, device: null, os: null, viewport: null, invalid: null }],
};
const withList = notesText({ diffs: LIST, stuck: null, watchEnded: null });
const stuckText = notesText({ diffs: null, stuck: { since: T0, afterMs: 2 * HOUR, at: T0 + 2 * HOUR }, watchEnded: null });

describe('bodyStatus', () => {
  test.each([
    [body('QUEUED'), 'QUEUED'],
    ['{"status":"DONE"}', null],
    ['not json', null],
    ['{}', null],
  ])('%s → %s', (b, expected) => expect(bodyStatus(b)).toBe(expected));
});

describe('afterStatusRead: the event now, and whether to read the diffs', () => {
  test.each([
    [
      'read failed: the last body and list stay',
      { body: body('UNAPPROVED'), extra: withList },
      null,
      { bodyChanged: false, status: 'UNAPPROVED', diffs: LIST },
    ],
    [
      'unchanged, list already sent: no read',
      { body: body('UNAPPROVED'), extra: withList },
      { status: 'UNAPPROVED', summary: counts(2) },
      { bodyChanged: false, status: 'UNAPPROVED', diffs: LIST },
    ],
    [
      'unchanged, no list yet (the first read after a webhook): read',
      { body: body('UNAPPROVED'), extra: null },
      { status: 'UNAPPROVED', summary: counts(2) },
      { bodyChanged: false, diffs: 'read' },
    ],
    [
      'changed counts: read again',
      { body: body('UNAPPROVED'), extra: withList },
      { status: 'UNAPPROVED', summary: counts(1) },
      { bodyChanged: true, diffs: 'read' },
    ],
    [
      'now REJECTED: read again',
      { body: body('UNAPPROVED'), extra: withList },
      { status: 'REJECTED', summary: counts(0, 2) },
      { bodyChanged: true, status: 'REJECTED', diffs: 'read' },
    ],
    [
      'now APPROVED: no list',
      { body: body('UNAPPROVED'), extra: withList },
      { status: 'APPROVED', summary: counts(0) },
      { bodyChanged: true, status: 'APPROVED', diffs: null },
    ],
    [
      'still QUEUED: no list',
      { body: body('QUEUED'), extra: null },
      { status: 'QUEUED', summary: counts(2) },
      { bodyChanged: false, status: 'QUEUED', diffs: null },
    ],
  ] as const)('%s', (_name, watch, build, expected) => {
    expect(afterStatusRead(watch, build)).toMatchObject(expected);
  });
  test('the body takes status and summary from the API', () => {
    const after = afterStatusRead({ body: body('QUEUED'), extra: null }, { status: 'UNAPPROVED', summary: counts(3) });
    expect(JSON.parse(after.body)).toEqual({ build_id: 'b1', status: 'UNAPPROVED', summary: counts(3) });
  });
});

describe('stuckVerdict', () => {
  const watch = { firstSeenAt: T0, extra: null };
  const given = { firstSeenAt: T0, extra: stuckText };
  const verdictAt = (at: number) => ({ since: T0, afterMs: 2 * HOUR, at });
  test.each([
    ['QUEUED before the timeout', 'QUEUED', watch, 2 * HOUR, T0 + 2 * HOUR - 1, true, null],
    ['QUEUED at the timeout', 'QUEUED', watch, 2 * HOUR, T0 + 2 * HOUR, true, verdictAt(T0 + 2 * HOUR)],
    ['RUNNING long after', 'RUNNING', watch, 2 * HOUR, T0 + 9 * HOUR, true, verdictAt(T0 + 9 * HOUR)],
    ['past the timeout, the read failed: not said (it may have finished)', 'QUEUED', watch, 2 * HOUR, T0 + 9 * HOUR, false, null],
    ['given once, the same verdict after (sent once)', 'RUNNING', given, 2 * HOUR, T0 + 5 * HOUR, true, verdictAt(T0 + 2 * HOUR)],
    ['given, then a failed read: kept', 'QUEUED', given, 2 * HOUR, T0 + 5 * HOUR, false, verdictAt(T0 + 2 * HOUR)],
    ['a real result ends it', 'UNAPPROVED', given, 2 * HOUR, T0 + 5 * HOUR, true, null],
    ['turned off', 'QUEUED', watch, null, T0 + 99 * HOUR, true, null],
    ['unknown status', null, watch, 2 * HOUR, T0 + 9 * HOUR, true, null],
  ] as const)('%s', (_name, status, w, after, now, seen, expected) => {
    expect(stuckVerdict(status, w, after, now, seen)).toEqual(expected);
  });
});

describe('lastWord: when the refresh period ends', () => {
  test.each([
    [
      'UNAPPROVED with its list: the list and the end',
      { body: body('UNAPPROVED'), extra: withList },
      { diffs: LIST, stuck: null, watchEnded: { at: T0 + 9, afterMs: 72 * HOUR } },
    ],
    [
      'QUEUED and stuck: the verdict and the end',
      { body: body('QUEUED'), extra: stuckText },
      { diffs: null, stuck: { since: T0, afterMs: 2 * HOUR, at: T0 + 2 * HOUR }, watchEnded: { at: T0 + 9, afterMs: 72 * HOUR } },
    ],
    ['REJECTED (a one-read watch): nothing to say', { body: body('REJECTED'), extra: withList }, null],
    ['unreadable body: nothing', { body: 'x', extra: null }, null],
  ] as const)('%s', (_name, watch, expected) => expect(lastWord(watch, 72 * HOUR, T0 + 9)).toEqual(expected));
});

describe('nextCheckAt', () => {
  const watch = { firstSeenAt: T0, expiresAt: T0 + 72 * HOUR };
  const opts = { intervalMs: MIN, stuckAfterMs: 2 * HOUR, stuck: false, unfinished: true };
  test.each([
    ['first hour: every interval', opts, T0 + 10 * MIN, T0 + 11 * MIN],
    ['after an hour, 5x, but not past the stuck deadline', opts, T0 + 118 * MIN, T0 + 2 * HOUR],
    ['already stuck: by age only', { ...opts, stuck: true }, T0 + 118 * MIN, T0 + 123 * MIN],
    ['finished: by age only', { ...opts, unfinished: false }, T0 + 118 * MIN, T0 + 123 * MIN],
    ['stuck turned off', { ...opts, stuckAfterMs: null }, T0 + 118 * MIN, T0 + 123 * MIN],
    ['never past the expiry (the last word is on time)', { ...opts, unfinished: false }, T0 + 72 * HOUR - MIN, T0 + 72 * HOUR],
  ] as const)('%s', (_name, o, now, expected) => expect(nextCheckAt(watch, o, now)).toBe(expected));
});
