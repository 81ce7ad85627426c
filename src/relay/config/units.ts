/**
 * Durations and sizes as people write them in the environment and in the config file. One meaning
 * per letter: durations `ms s m h d` (`m` is always minutes); sizes `B`, `KB`/`MB` (1000) and
 * `KiB`/`MiB` (1024). A bare `k`/`m` size is refused rather than guessed. Case-insensitive.
 */

export const DURATION_UNITS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
export const SIZE_UNITS = { b: 1, kb: 1000, kib: 1024, mb: 1_000_000, mib: 1024 * 1024 } as const;

/** Why a value is not a duration or a size. */
export type UnitProblem =
  /** Not a number followed by a known unit. */
  | 'format'
  /** A size with a bare `k` or `m`: 1000 or 1024 is not for the relay to guess. */
  | 'ambiguous'
  /** Larger than a JavaScript integer holds exactly. */
  | 'too-large';

export type UnitResult = { readonly ok: true; readonly value: number } | { readonly ok: false; readonly problem: UnitProblem };

const NUMBER_UNIT = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i;
/** Size letters that mean 1000 to some and 1024 to others. */
const AMBIGUOUS_SIZE = new Set(['k', 'm']);

function read(
  value: string | number,
  units: Readonly<Record<string, number>>,
  bare: string,
  round: (n: number) => number,
  ambiguous: ReadonlySet<string>,
): UnitResult {
  let amount = value;
  let unit: number | undefined = 1;
  if (typeof value === 'string') {
    const m = NUMBER_UNIT.exec(value);
    if (!m || m[1] === undefined) return { ok: false, problem: 'format' };
    const name = (m[2] || bare).toLowerCase();
    if (ambiguous.has(name)) return { ok: false, problem: 'ambiguous' };
    amount = Number(m[1]);
    unit = units[name];
  }
  if (unit === undefined || typeof amount !== 'number' || !Number.isFinite(amount) || amount < 0) return { ok: false, problem: 'format' };
  const result = round(amount * unit);
  return Number.isSafeInteger(result) ? { ok: true, value: result } : { ok: false, problem: 'too-large' };
}

/** `500ms`, `2s`, `10m`, `3h`, `7d`, or a bare number of milliseconds; 0 is a duration (settings decide if they allow it). */
export function readDuration(value: string | number): UnitResult {
  return read(value, DURATION_UNITS, 'ms', Math.round, new Set());
}

/** `1MiB`, `512KiB`, `64KB`, `1MB`, `100B`, or a bare number of bytes. */
export function readSize(value: string | number): UnitResult {
  return read(value, SIZE_UNITS, 'b', Math.floor, AMBIGUOUS_SIZE);
}

/** Milliseconds, or null when `value` is not a duration. */
export function parseDuration(value: string | number): number | null {
  const r = readDuration(value);
  return r.ok ? r.value : null;
}

/** Bytes, or null when `value` is not a size. */
export function parseSize(value: string | number): number | null {
  const r = readSize(value);
  return r.ok ? r.value : null;
}

/** The largest unit that writes `ms` exactly: 86400000 → `1d`, 1500 → `1500ms`. */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [
    ['d', DURATION_UNITS.d],
    ['h', DURATION_UNITS.h],
    ['m', DURATION_UNITS.m],
    ['s', DURATION_UNITS.s],
  ] as const) {
    if (ms !== 0 && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/** `1MiB`, `64KiB`, `64KB`, else bytes: the unit that writes `bytes` exactly. */
export function formatSize(bytes: number): string {
  for (const [unit, size] of [
    ['MiB', SIZE_UNITS.mib],
    ['MB', SIZE_UNITS.mb],
    ['KiB', SIZE_UNITS.kib],
    ['KB', SIZE_UNITS.kb],
  ] as const) {
    if (bytes !== 0 && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return `${bytes}B`;
}

/** What to write instead of an ambiguous size such as `512k`: both readings, spelled out. */
export function ambiguousSizeFix(value: string): string {
  const m = NUMBER_UNIT.exec(value);
  const amount = Number(m?.[1] ?? 1);
  const [binary, decimal] = m?.[2]?.toLowerCase() === 'm' ? (['MiB', 'MB'] as const) : (['KiB', 'KB'] as const);
  const bytes = (unit: 'MiB' | 'MB' | 'KiB' | 'KB') => Math.floor(amount * SIZE_UNITS[unit.toLowerCase() as keyof typeof SIZE_UNITS]);
  return `write ${amount}${binary} (${bytes(binary)} bytes) or ${amount}${decimal} (${bytes(decimal)} bytes)`;
}
