import { describe, expect, test } from '@jest/globals';
import {
  ANNOTATION_MESSAGE_MAX_CHARS,
  ANNOTATION_TITLE_MAX_CHARS,
  ANNOTATIONS_PER_REQUEST,
  CHECK_OUTPUT_MAX_BYTES,
  CHECK_TITLE_MAX_CHARS,
  CONTEXT_MAX_CHARS,
  DISPATCH_EVENT_TYPE_MAX_CHARS,
  DISPATCH_MAX_PAYLOAD_BYTES,
  STATUS_DESCRIPTION_MAX_CHARS,
  annotationMessage,
  annotationTitle,
  checkTitle,
  chunk,
  contextName,
  fitSummary,
  payloadBytes,
  splitForDispatch,
  statusDescription,
  truncateBytes,
  truncateChars,
  utf8Bytes,
  validEventType,
  visibleLine,
  visibleText,
} from '../../src/github/limits.js';

const chars = (s: string): number => Array.from(s).length;

describe('character limits, at the edge and one past', () => {
  test.each([
    ['statusDescription', statusDescription, STATUS_DESCRIPTION_MAX_CHARS],
    ['checkTitle', checkTitle, CHECK_TITLE_MAX_CHARS],
    ['contextName', contextName, CONTEXT_MAX_CHARS],
    ['annotationTitle', annotationTitle, ANNOTATION_TITLE_MAX_CHARS],
    ['annotationMessage', annotationMessage, ANNOTATION_MESSAGE_MAX_CHARS],
  ] as const)('%s', (_name, fn, max) => {
    expect(max).toBeGreaterThan(0);
    const exact = 'a'.repeat(max);
    expect(fn(exact)).toBe(exact);
    const past = fn('a'.repeat(max + 1));
    expect(chars(past)).toBe(max);
    expect(past.endsWith('…')).toBe(true);
    // Code points, not UTF-16 units: an emoji is one character and is never split.
    const emoji = '😀'.repeat(max);
    expect(fn(emoji)).toBe(emoji);
    expect(chars(fn('😀'.repeat(max + 1)))).toBe(max);
    expect(fn('😀'.repeat(max + 1))).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/);
  });

  test('whitespace is collapsed to one line first', () => {
    expect(statusDescription('  a\n\n b\tc  ')).toBe('a b c');
  });

  test('status description is 140 characters', () => {
    expect(STATUS_DESCRIPTION_MAX_CHARS).toBe(140);
  });

  test('truncateChars degenerate sizes', () => {
    expect(truncateChars('abc', 0)).toBe('');
    expect(truncateChars('abc', 1)).toBe('…');
  });
});

describe('invisible and control characters never reach a name, context, title or description', () => {
  // Each row: what a payload may hold → what GitHub gets. A name must not be able to look like another.
  const rows: readonly (readonly [string, string, string])[] = [
    ['right-to-left override', 'shop\u202Eweb', 'shopweb'],
    ['every bidi embedding and override U+202A–U+202E', 'a\u202Ab\u202Bc\u202Cd\u202De\u202Ef', 'abcdef'],
    ['every bidi isolate U+2066–U+2069', 'a\u2066b\u2067c\u2068d\u2069e', 'abcde'],
    ['LRM, RLM and the Arabic letter mark', 'a\u200Eb\u200Fc\u061Cd', 'abcd'],
    ['zero-width space, non-joiner, joiner, word joiner, BOM', 's\u200Bh\u200Co\u200Dp\u2060x\uFEFFy', 'shopxy'],
    ['NUL and other C0 controls', 'a\u0000b\u0001c\u001Bd\u007Fe', 'abcde'],
    ['C1 controls (NEL becomes a space)', 'a\u0080b\u0085c\u009Fd', 'ab cd'],
    ['soft hyphen, Hangul filler, variation selector, Mongolian vowel separator', 'a\u00ADb\u3164c\uFE0Fd\u180Ee', 'abcde'],
    ['tag characters', 'a\u{E0041}\u{E007F}b', 'ab'],
    ['a lone surrogate', 'a\uD800b\uDC00c', 'abc'],
    ['line breaks of every kind become one space', 'a\nb\r\nc\rd\u2028e\u2029f\vg\fh\ti', 'a b c d e f g h i'],
    ['other whitespace (NBSP, ideographic space) collapses', 'a\u00A0\u00A0b\u3000c', 'a b c'],
    ['only invisible characters', '\u202E\u200B\u2066', ''],
    [
      'visible text is kept as it is',
      'Sauce Labs / shop-web #1234 (chrome 128, Windows 11) ✅ 日本語 😀',
      'Sauce Labs / shop-web #1234 (chrome 128, Windows 11) ✅ 日本語 😀',
    ],
  ];
  test.each(rows)('%s', (_what, input, want) => {
    expect(visibleLine(input)).toBe(want);
    for (const fn of [statusDescription, checkTitle, contextName, annotationTitle]) expect(fn(input)).toBe(want);
  });

  test.each(rows)('multi-line text keeps its lines but loses the same characters: %s', (_what, input) => {
    const out = visibleText(input);
    expect(out).not.toMatch(/[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u00AD\u061C\u180E\u200B-\u200F\u2028-\u202E\u2060-\u206F\u3164\uFEFF]|\uFE0F/u);
    expect(out).not.toMatch(/\p{Cs}|[\u{E0000}-\u{E007F}]/u);
    expect(annotationMessage(input)).toBe(out.trim());
  });

  test('multi-line text: every break becomes \\n, tabs stay', () => {
    expect(visibleText('a\r\nb\rc\u2028d\u0085e\tf\u202Eg')).toBe('a\nb\nc\nd\ne\tfg');
  });

  test('characters are removed before the length is counted', () => {
    const padded = `${'a'.repeat(STATUS_DESCRIPTION_MAX_CHARS)}${'\u200B'.repeat(50)}`;
    expect(statusDescription(padded)).toBe('a'.repeat(STATUS_DESCRIPTION_MAX_CHARS));
  });
});

describe('truncateBytes', () => {
  test.each([
    ['ascii', 'a'],
    ['two-byte', 'é'],
    ['three-byte', '€'],
    ['four-byte', '😀'],
  ])('%s: exact fits, one byte past is cut without splitting a character', (_n, unit) => {
    const max = 100;
    const size = utf8Bytes(unit);
    const fitting = unit.repeat(Math.floor(max / size));
    const padded = fitting + 'a'.repeat(max - utf8Bytes(fitting));
    expect(utf8Bytes(padded)).toBe(max);
    expect(truncateBytes(padded, max)).toBe(padded);
    const past = truncateBytes(`${padded}a`, max);
    expect(utf8Bytes(past)).toBeLessThanOrEqual(max);
    expect(past.endsWith('…')).toBe(true);
    // A split character (a lone surrogate, or half of a UTF-8 sequence) does not survive a UTF-8
    // round trip: it comes back as U+FFFD.
    expect(Buffer.from(past, 'utf8').toString('utf8')).toBe(past);
    expect(past).not.toContain('\uFFFD');
    // And the cut kept every whole character that fitted.
    expect(past.slice(0, -1)).toBe(padded.slice(0, past.length - 1));
  });

  test('a budget smaller than the ellipsis gives the empty string', () => {
    expect(truncateBytes('abcdef', 2)).toBe('');
  });
});

describe('fitSummary (65,535 bytes)', () => {
  const head = '# head\n| a |\n|---|\n';
  const tail = '\nfooter\n';
  const rowsFilling = (target: number): string[] => {
    // rows of 99 chars + newline = 100 bytes each; the last row pads to hit target exactly
    const fixed = utf8Bytes(head) + utf8Bytes(tail);
    const rows: string[] = [];
    let used = fixed;
    while (used + 100 <= target) {
      rows.push('r'.repeat(99));
      used += 100;
    }
    if (target - used > 1) {
      rows.push('r'.repeat(target - used - 1));
      used = target;
    }
    return rows;
  };

  test('exactly at the limit: unchanged', () => {
    const rows = rowsFilling(CHECK_OUTPUT_MAX_BYTES);
    const out = fitSummary({ head, rows, tail });
    expect(utf8Bytes(out)).toBe(CHECK_OUTPUT_MAX_BYTES);
    expect(out).not.toContain('more not shown');
  });

  test('one byte past: rows cut, "and N more", head and tail kept, within the limit', () => {
    const rows = rowsFilling(CHECK_OUTPUT_MAX_BYTES);
    rows[rows.length - 1] += 'x';
    const out = fitSummary({ head, rows, tail });
    expect(utf8Bytes(out)).toBeLessThanOrEqual(CHECK_OUTPUT_MAX_BYTES);
    const m = /…and (\d+) more not shown/.exec(out);
    expect(m).not.toBeNull();
    const kept = out.split('\n').filter((l) => l.startsWith('r')).length;
    expect(kept + Number(m![1])).toBe(rows.length);
    expect(out.startsWith(head)).toBe(true);
    expect(out.endsWith(tail)).toBe(true);
  });

  test('multi-byte rows are counted in bytes', () => {
    const rows = Array.from({ length: 10_000 }, (_, i) => `| 😀 row ${i} |`);
    const out = fitSummary({ head, rows, tail, more: (n) => `\nand ${n} more\n` });
    expect(utf8Bytes(out)).toBeLessThanOrEqual(CHECK_OUTPUT_MAX_BYTES);
    expect(out).toMatch(/and \d+ more/);
  });

  test('a custom maximum', () => {
    expect(fitSummary({ head: 'h\n', rows: ['aaaa', 'bbbb'], tail: 't' }, 13)).toBe('h\naaaa\nbbbb\nt');
    expect(utf8Bytes(fitSummary({ head: 'h\n', rows: ['aaaa', 'bbbb'], tail: 't' }, 12))).toBeLessThanOrEqual(12);
  });
});

describe('chunk (50 annotations per request)', () => {
  test.each([
    [0, []],
    [1, [1]],
    [50, [50]],
    [51, [50, 1]],
    [100, [50, 50]],
    [101, [50, 50, 1]],
  ])('%i items → sizes %p', (n, sizes) => {
    const items = Array.from({ length: n }, (_, i) => i);
    const groups = chunk(items);
    expect(groups.map((g) => g.length)).toEqual(sizes);
    expect(groups.flat()).toEqual(items);
  });
  test('size must be at least 1', () => {
    expect(ANNOTATIONS_PER_REQUEST).toBe(50);
    expect(() => chunk([1], 0)).toThrow(RangeError);
  });
});

describe('repository_dispatch', () => {
  test('event_type: 100 characters, not 101, not empty', () => {
    expect(validEventType('a'.repeat(DISPATCH_EVENT_TYPE_MAX_CHARS))).toBe(true);
    expect(validEventType('a'.repeat(DISPATCH_EVENT_TYPE_MAX_CHARS + 1))).toBe(false);
    expect(validEventType('')).toBe(false);
  });

  test('splitForDispatch packs at the byte edge and reports items too large alone', () => {
    const wrap = (batch: string[]) => ({ version: 1, events: batch });
    const empty = payloadBytes(wrap([]));
    const item = (bytes: number) => 'x'.repeat(bytes - 2); // JSON string quotes
    const exact = item(DISPATCH_MAX_PAYLOAD_BYTES - empty);
    expect(payloadBytes(wrap([exact]))).toBe(DISPATCH_MAX_PAYLOAD_BYTES);
    expect(splitForDispatch([exact], wrap)).toEqual({ ok: true, batches: [[exact]] });
    const past = `${exact}x`;
    const r = splitForDispatch([past, 'a', 'b'], wrap);
    expect(r).toEqual({ ok: false, tooLarge: [past], batches: [['a', 'b']] });
    const half = item(Math.floor((DISPATCH_MAX_PAYLOAD_BYTES - empty - 1) / 2)); // two plus a comma fit
    expect(splitForDispatch([half, half, half], wrap).batches.map((b) => b.length)).toEqual([2, 1]);
    expect(() => splitForDispatch([], () => Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`k${i}`, i])))).toThrow(RangeError);
  });

  test('splitForDispatch with a known item size packs exactly as when it measures each item', () => {
    const wrap = (batch: string[]) => ({ version: 1, events: batch });
    const items = Array.from({ length: 60 }, (_, i) => 'é'.repeat(500 + ((i * 97) % 900)));
    const measured = splitForDispatch(items, wrap, 10_000);
    const given = splitForDispatch(items, wrap, 10_000, (item) => utf8Bytes(JSON.stringify(item)));
    expect(given).toEqual(measured);
    for (const batch of given.batches) expect(payloadBytes(wrap(batch))).toBeLessThanOrEqual(10_000);
  });
});
