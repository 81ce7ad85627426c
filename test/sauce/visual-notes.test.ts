/** The relay's notes beside a Visual event: their wire form, a lenient reader, and fitting them to a budget. */
import { utf8Bytes } from '../../src/github/limits.js';
import {
  DIFF_TEXT_MAX_CHARS,
  MAX_LISTED_DIFFS,
  NO_NOTES,
  SNAPSHOT_NAME_MAX_CHARS,
  fitNotes,
  notesText,
  notesToWire,
  parseVisualNotes,
  parseVisualNotesText,
  type VisualDiff,
  type VisualNotes,
} from '../../src/sauce/visual-notes.js';

const T = Date.parse('2026-07-20T12:00:00.000Z');
const diff = (n: number, over: Partial<VisualDiff> = {}): VisualDiff => ({
  id: `d${n}`,
  status: 'UNAPPROVED',
  snapshot: `Snapshot ${n}`,
  test: 'checkout.spec.ts',
  suite: 'Checkout',
  browser: 'CHROME 128.0',
  device: null,
  os: 'WINDOWS 11',
  viewport: '1280x720',
  invalid: null,
  ...over,
});
const notes: VisualNotes = {
  diffs: { readAt: T, totals: { UNAPPROVED: 3, REJECTED: 1 }, items: [diff(1), diff(2, { status: 'REJECTED', invalid: 'TRUNCATED' })] },
  stuck: { since: T - 7_200_000, afterMs: 7_200_000, at: T },
  watchEnded: { at: T + 1000, afterMs: 259_200_000 },
};

describe('wire form', () => {
  test('snake case, ISO times, null fields left out, keys in review order', () => {
    expect(notesToWire(notes)).toEqual({
      diffs: {
        read_at: '2026-07-20T12:00:00.000Z',
        totals: { UNAPPROVED: 3, REJECTED: 1 },
        items: [
          {
            id: 'd1',
            status: 'UNAPPROVED',
            snapshot: 'Snapshot 1',
            test: 'checkout.spec.ts',
            suite: 'Checkout',
            browser: 'CHROME 128.0',
            os: 'WINDOWS 11',
            viewport: '1280x720',
          },
          {
            id: 'd2',
            status: 'REJECTED',
            snapshot: 'Snapshot 2',
            test: 'checkout.spec.ts',
            suite: 'Checkout',
            browser: 'CHROME 128.0',
            os: 'WINDOWS 11',
            viewport: '1280x720',
            invalid: 'TRUNCATED',
          },
        ],
      },
      stuck: { since: '2026-07-20T10:00:00.000Z', after_ms: 7_200_000, at: '2026-07-20T12:00:00.000Z' },
      watch_ended: { at: '2026-07-20T12:00:01.000Z', after_ms: 259_200_000 },
    });
  });
  test('no notes → null (the event carries no `relay` field)', () => {
    expect(notesToWire(NO_NOTES)).toBeNull();
    expect(notesText(NO_NOTES)).toBeNull();
  });
  test('round trip through the text the store keeps, and the same notes give the same text', () => {
    const text = notesText(notes)!;
    expect(parseVisualNotesText(text)).toEqual(notes);
    expect(notesText(parseVisualNotesText(text))).toBe(text);
  });
});

describe('parseVisualNotes: each part on its own, never failing', () => {
  const wire = notesToWire(notes)!;
  test.each([
    ['not an object', 'nope', NO_NOTES],
    ['null', null, NO_NOTES],
    ['a bad stuck verdict leaves the rest', { ...wire, stuck: { since: 'yesterday', after_ms: 1, at: '2026-07-20T12:00:00Z' } }, { ...notes, stuck: null }],
    ['a bad list leaves the verdicts', { ...wire, diffs: { items: 'x' } }, { ...notes, diffs: null }],
    ['a bad watch end', { ...wire, watch_ended: { at: 1 } }, { ...notes, watchEnded: null }],
  ])('%s', (_name, value, expected) => expect(parseVisualNotes(value)).toEqual(expected));

  test('malformed diffs are dropped one by one; an EQUAL or unknown status is not listed', () => {
    const parsed = parseVisualNotes({
      diffs: {
        read_at: '2026-07-20T12:00:00Z',
        totals: { UNAPPROVED: 3 },
        items: [{ id: 'a', status: 'UNAPPROVED' }, { id: 'b', status: 'EQUAL' }, { status: 'UNAPPROVED' }, 7, { id: 'c', status: 'DONE' }],
      },
    });
    expect(parsed.diffs?.items.map((d) => d.id)).toEqual(['a']);
  });

  test('a hand-made payload cannot make the list or its texts unbounded', () => {
    const parsed = parseVisualNotes({
      diffs: {
        read_at: '2026-07-20T12:00:00Z',
        totals: { UNAPPROVED: 5000 },
        items: Array.from({ length: 5000 }, (_, i) => ({ id: `d${i}`, status: 'UNAPPROVED', snapshot: 'n'.repeat(10_000), test: 't'.repeat(10_000) })),
      },
    });
    expect(parsed.diffs?.items).toHaveLength(MAX_LISTED_DIFFS);
    expect(Array.from(parsed.diffs!.items[0]!.snapshot!)).toHaveLength(SNAPSHOT_NAME_MAX_CHARS);
    expect(Array.from(parsed.diffs!.items[0]!.test!)).toHaveLength(DIFF_TEXT_MAX_CHARS);
  });
});

describe('fitNotes: diffs cut from the end, verdicts never', () => {
  const many: VisualNotes = { ...notes, diffs: { ...notes.diffs!, items: Array.from({ length: 60 }, (_, i) => diff(i)) } };
  const under = (bytes: number) => (n: VisualNotes) => utf8Bytes(notesText(n) ?? '') <= bytes;

  test('fits already → the same notes', () => expect(fitNotes(notes, under(100_000))).toBe(notes));

  test('the longest prefix of the list that fits', () => {
    const budget = 4_000;
    const fitted = fitNotes(many, under(budget))!;
    const kept = fitted.diffs!.items.length;
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThan(60);
    expect(fitted.diffs!.items).toEqual(many.diffs!.items.slice(0, kept));
    expect(under(budget)(fitted)).toBe(true);
    expect(under(budget)({ ...many, diffs: { ...many.diffs!, items: many.diffs!.items.slice(0, kept + 1) } })).toBe(false);
    expect(fitted.stuck).toEqual(notes.stuck);
    expect(fitted.diffs!.totals).toEqual(notes.diffs!.totals);
  });

  test('not even an empty list fits → the verdicts alone', () => {
    const bare = { ...many, diffs: null };
    expect(fitNotes(many, under(utf8Bytes(notesText(bare)!)))).toEqual(bare);
  });

  test('nothing fits → null', () => expect(fitNotes(many, () => false)).toBeNull());
});
