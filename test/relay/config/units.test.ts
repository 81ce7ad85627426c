import { ambiguousSizeFix, formatDuration, formatSize, parseDuration, parseSize, readDuration, readSize } from '../../../src/relay/config/units.js';

describe('durations: ms s m h d, m is always minutes', () => {
  test.each([
    ['500ms', 500],
    ['2s', 2000],
    ['10m', 600_000],
    ['10M', 600_000],
    ['3h', 10_800_000],
    ['7d', 604_800_000],
    ['1.5s', 1500],
    [' 2 s ', 2000],
    ['0', 0],
    ['1500', 1500],
    [250, 250],
    [0, 0],
  ] as const)('%j → %d ms', (v, ms) => {
    expect(readDuration(v)).toEqual({ ok: true, value: ms });
    expect(parseDuration(v)).toBe(ms);
  });
  test.each([
    ['', 'format'],
    ['abc', 'format'],
    ['-1s', 'format'],
    ['2 weeks', 'format'],
    ['1y', 'format'],
    ['5mb', 'format'],
    [-5, 'format'],
    [Number.NaN, 'format'],
    ['99999999999999d', 'too-large'],
  ] as const)('%j is refused: %s', (v, problem) => {
    expect(readDuration(v)).toEqual({ ok: false, problem });
    expect(parseDuration(v)).toBeNull();
  });
});

describe('sizes: B, KB/MB = 1000, KiB/MiB = 1024, any case; bare k/m refused', () => {
  test.each([
    ['1MiB', 1_048_576],
    ['1mib', 1_048_576],
    ['512KiB', 524_288],
    ['64KB', 64_000],
    ['64kb', 64_000],
    ['1MB', 1_000_000],
    ['1mb', 1_000_000],
    ['100B', 100],
    ['1.5KiB', 1536],
    ['65536', 65_536],
    ['0', 0],
    [4096, 4096],
  ] as const)('%j → %d bytes', (v, bytes) => {
    expect(readSize(v)).toEqual({ ok: true, value: bytes });
    expect(parseSize(v)).toBe(bytes);
  });
  test.each([
    ['1m', 'ambiguous'],
    ['1M', 'ambiguous'],
    ['512k', 'ambiguous'],
    ['512K', 'ambiguous'],
    ['', 'format'],
    ['1 parsec', 'format'],
    ['1GB', 'format'],
    ['-1', 'format'],
    ['1ms', 'format'],
  ] as const)('%j is refused: %s', (v, problem) => {
    expect(readSize(v)).toEqual({ ok: false, problem });
    expect(parseSize(v)).toBeNull();
  });
  test.each([
    ['1m', 'write 1MiB (1048576 bytes) or 1MB (1000000 bytes)'],
    ['512K', 'write 512KiB (524288 bytes) or 512KB (512000 bytes)'],
  ])('the fix for %j spells out both readings', (v, fix) => expect(ambiguousSizeFix(v)).toBe(fix));
});

describe('formatting for messages: the largest unit that is exact', () => {
  test.each([
    [86_400_000, '1d'],
    [3_600_000, '1h'],
    [90_000, '90s'],
    [1500, '1500ms'],
    [0, '0ms'],
  ])('duration %d → %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
    expect(parseDuration(text)).toBe(ms);
  });
  test.each([
    [1_048_576, '1MiB'],
    [1_000_000, '1MB'],
    [65_536, '64KiB'],
    [64_000, '64KB'],
    [1000_1, '10001B'],
  ])('size %d → %s', (bytes, text) => {
    expect(formatSize(bytes)).toBe(text);
    expect(parseSize(text)).toBe(bytes);
  });
});
