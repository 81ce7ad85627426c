import { describe, expect, it } from '@jest/globals';
import { DISPATCH_MAX_PAYLOAD_BYTES, payloadBytes, utf8Bytes } from '../../src/github/limits.js';
import {
  ENTRY_MAX_BYTES,
  MAX_TRUNCATED_RECORDS,
  TRUNCATION_MARKER,
  cutToLiteralBytes,
  envelopeEntry,
  makeEnvelope,
  type EntryResult,
} from '../../src/sauce/envelope.js';

const META = { id: '3f0c9a52-8d1e-4c7b-9a61-2b5d7e0f4c11', received_at: '2026-01-01T12:00:00.000Z', route: 'default' };

/** A Sauce job event (the fields of test/fixtures/sauce/job-vdc-failed-boolean.json). */
function job(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: '5f2a7c9e1b3d4f6a8c0e2b4d6f8a0c2e',
    status: 'FAILED',
    passed: false,
    data_type: 'vdc',
    creation_time: '2026-01-01T11:58:00Z',
    modification_time: '2026-01-01T11:59:30Z',
    name: 'checkout › pays with a saved card',
    browser_name: 'chrome',
    os_name: 'Windows 11',
    commit_id: '9fceb02d0ae598e95dc970b74767f19372d61af8',
    branch_name: 'feature/login',
    build: 'shop-web #1234',
    tags: ['e2e', 'ci:repo:acme/shop', 'ci:ref:feature/login', 'ci:ssha:9fceb02'],
    error: '',
    exception: '',
    ...extra,
  };
}

function ok(result: EntryResult) {
  if (!result.ok) throw new Error(`expected an entry, got ${result.code}: ${result.reason}`);
  // Whatever was cut: the size reported is the size sent, and it fits one dispatch alone.
  expect(result.bytes).toBe(utf8Bytes(JSON.stringify(result.entry)));
  expect(payloadBytes(makeEnvelope([result.entry]))).toBeLessThanOrEqual(DISPATCH_MAX_PAYLOAD_BYTES);
  return result;
}

const payloadOf = (r: { entry: { payload: unknown } }) => r.entry.payload as Record<string, unknown>;

/** Everything but `keys` is as it was. */
function sameExcept(after: Record<string, unknown>, before: Record<string, unknown>, keys: string[]): void {
  const strip = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([k]) => !keys.includes(k)));
  expect(strip(after)).toEqual(strip(before));
}

/** A job whose entry takes exactly `bytes` (padding the exception with ASCII). */
function jobOfEntrySize(bytes: number): Record<string, unknown> {
  const base = utf8Bytes(JSON.stringify({ payload: job(), ...META }));
  return job({ exception: 'x'.repeat(bytes - base) });
}

describe('envelopeEntry: the envelope leaves one entry ENTRY_MAX_BYTES', () => {
  it('is GitHub limit minus {"version":1,"events":[]}', () => {
    expect(ENTRY_MAX_BYTES).toBe(DISPATCH_MAX_PAYLOAD_BYTES - utf8Bytes('{"version":1,"events":[]}'));
  });

  it('exactly at the limit: the event as it is, no truncated list, a 65,535-byte payload', () => {
    const event = jobOfEntrySize(ENTRY_MAX_BYTES);
    const r = ok(envelopeEntry(event, META));
    expect(r.bytes).toBe(ENTRY_MAX_BYTES);
    expect(r.truncated).toEqual([]);
    expect(r.entry).toEqual({ payload: event, ...META });
    expect(r.entry).not.toHaveProperty('truncated');
    expect(payloadBytes(makeEnvelope([r.entry]))).toBe(DISPATCH_MAX_PAYLOAD_BYTES);
  });

  it('one byte over: the exception is cut just enough, with the marker and its original size', () => {
    const event = jobOfEntrySize(ENTRY_MAX_BYTES + 1);
    const r = ok(envelopeEntry(event, META));
    const exception = payloadOf(r).exception as string;
    expect(exception.endsWith(TRUNCATION_MARKER)).toBe(true);
    expect(r.truncated).toEqual([{ field: 'exception', bytes: utf8Bytes(event.exception as string) }]);
    expect(r.entry.truncated).toEqual(r.truncated);
    // As little as needed: within one character of the limit.
    expect(r.bytes).toBeGreaterThan(ENTRY_MAX_BYTES - 2);
    sameExcept(payloadOf(r), event, ['exception']);
  });

  it('a 70 KB stack trace: cut, every field the Action needs kept whole', () => {
    const trace = Array.from({ length: 1_000 }, (_, i) => `    at frame${i} (webpack:///src/checkout/pay.ts:${i}:17)`).join('\n');
    expect(utf8Bytes(trace)).toBeGreaterThan(50_000);
    const event = job({ exception: `TimeoutError: card form never appeared\n${trace}${trace}`, error: 'Test failed: element not found' });
    const r = ok(envelopeEntry(event, META));
    expect(r.truncated.map((t) => t.field)).toEqual(['exception']);
    expect((payloadOf(r).exception as string).startsWith('TimeoutError: card form never appeared\n    at frame0')).toBe(true);
    sameExcept(payloadOf(r), event, ['exception']);
    expect(r.entry).toMatchObject(META);
  });

  it('exception first, then error, then the longest other strings; short ones untouched', () => {
    const event = job({
      exception: 'e'.repeat(20_000),
      error: 'r'.repeat(20_000),
      custom: { log: 'l'.repeat(60_000), note: 'n'.repeat(10_000), short: 'keep me' },
      browser_version: 'v'.repeat(2_000),
    });
    const r = ok(envelopeEntry(event, META));
    expect(r.truncated).toEqual([
      { field: 'exception', bytes: 20_000 },
      { field: 'error', bytes: 20_000 },
      { field: 'custom.log', bytes: 60_000 },
    ]);
    const p = payloadOf(r);
    expect(p.exception).toBe(TRUNCATION_MARKER);
    expect(p.error).toBe(TRUNCATION_MARKER);
    // The last one cut only as much as still needed.
    const log = (p.custom as Record<string, string>).log!;
    expect(log.length).toBeGreaterThan(50_000);
    expect(log).toBe(`${'l'.repeat(log.length - TRUNCATION_MARKER.length)}${TRUNCATION_MARKER}`);
    expect((p.custom as Record<string, string>).note).toBe('n'.repeat(10_000));
    expect((p.custom as Record<string, string>).short).toBe('keep me');
    expect(p.browser_version).toBe('v'.repeat(2_000));
  });

  it('never cuts the fields the Action needs, nor ci: tags; other tags may be cut', () => {
    const long = 'n'.repeat(20_000);
    const event = job({
      name: long,
      build: `b${long}`,
      tags: ['ci:repo:acme/shop', `note:${'t'.repeat(40_000)}`, 'ci:ref:main'],
      exception: 'x'.repeat(10_000),
    });
    const r = ok(envelopeEntry(event, META));
    const p = payloadOf(r);
    expect(p.name).toBe(long);
    expect(p.build).toBe(`b${long}`);
    expect((p.tags as string[])[0]).toBe('ci:repo:acme/shop');
    expect((p.tags as string[])[2]).toBe('ci:ref:main');
    expect((p.tags as string[])[1]!.endsWith(TRUNCATION_MARKER)).toBe(true);
    expect(r.truncated.map((t) => t.field)).toEqual(['exception', 'tags[1]']);
  });

  it.each([
    ['two-byte', 'é'],
    ['three-byte', '€'],
    ['four-byte (surrogate pair)', '😀'],
    ['needs escaping', '"\\\n'],
  ])('multi-byte text (%s): cut on a character boundary, within the limit', (_name, unit) => {
    const event = job({ exception: unit.repeat(Math.ceil(80_000 / utf8Bytes(unit))) });
    const r = ok(envelopeEntry(event, META));
    const exception = payloadOf(r).exception as string;
    // A split character would not survive a UTF-8 round trip (a lone surrogate becomes U+FFFD).
    expect(Buffer.from(exception, 'utf8').toString('utf8')).toBe(exception);
    const kept = exception.slice(0, -TRUNCATION_MARKER.length);
    expect((event.exception as string).startsWith(kept)).toBe(true);
    expect(r.bytes).toBeGreaterThan(ENTRY_MAX_BYTES - utf8Bytes(JSON.stringify(unit)));
  });

  it('many long fields: every one cut, the list folded after 20 records', () => {
    const many = Object.fromEntries(Array.from({ length: 3_000 }, (_, i) => [`field_${i}`, `${i}:${'z'.repeat(60)}`]));
    const event = job(many);
    const r = ok(envelopeEntry(event, META));
    expect(r.truncated).toHaveLength(MAX_TRUNCATED_RECORDS);
    expect(r.truncated[MAX_TRUNCATED_RECORDS - 1]!.field).toMatch(/^\(\d+ more\)$/);
    const p = payloadOf(r);
    for (const key of ['id', 'status', 'passed', 'commit_id', 'branch_name', 'build', 'name', 'tags', 'creation_time', 'modification_time'])
      expect(p[key]).toEqual(event[key]);
  });

  it('many small fields: cutting strings is not enough, so unknown fields are left out, largest first', () => {
    const many = Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`n${i}`, i]));
    const event = job({ ...many, big: Array.from({ length: 1_000 }, (_, i) => i) });
    const r = ok(envelopeEntry(event, META));
    const p = payloadOf(r);
    expect(p).not.toHaveProperty('big');
    expect(r.truncated[0]).toEqual({ field: 'big', bytes: utf8Bytes(JSON.stringify(event.big)) });
    for (const key of Object.keys(job())) expect(p[key]).toEqual(event[key]);
  });

  it('a Visual build event keeps its id, status and summary', () => {
    const event = {
      build_id: 'b-1',
      build_name: 'shop',
      status: 'UNAPPROVED',
      summary: { unapproved: 3, equal: 10 },
      branch: 'main',
      notes: 'q'.repeat(70_000),
    };
    const r = ok(envelopeEntry(event, META));
    expect(payloadOf(r)).toMatchObject({ build_id: 'b-1', status: 'UNAPPROVED', summary: { unapproved: 3, equal: 10 }, branch: 'main' });
    expect(r.truncated.map((t) => t.field)).toEqual(['notes']);
  });

  it('the one case left: the fields the Action needs alone are over the limit', () => {
    const r = envelopeEntry(job({ name: 'n'.repeat(70_000) }), META);
    expect(r).toMatchObject({ ok: false, code: 'too_large' });
  });

  it('refuses what is not a JSON object, and never changes its input', () => {
    expect(envelopeEntry([1, 2], META)).toMatchObject({ ok: false, code: 'not_object' });
    expect(envelopeEntry('text', META)).toMatchObject({ ok: false, code: 'not_object' });
    const event = job({ exception: 'x'.repeat(70_000) });
    const before = JSON.stringify(event);
    ok(envelopeEntry(event, META));
    expect(JSON.stringify(event)).toBe(before);
  });

  it('fits every size around the limit (a sweep of exception sizes)', () => {
    for (let extra = -3; extra <= 40; extra++) {
      const event = jobOfEntrySize(ENTRY_MAX_BYTES + extra);
      const r = ok(envelopeEntry(event, META));
      expect(r.truncated.length).toBe(extra > 0 ? 1 : 0);
    }
  });
});

describe('cutToLiteralBytes', () => {
  const lit = (s: string) => utf8Bytes(JSON.stringify(s));
  it.each([
    ['ascii', 'abcdefghij'.repeat(10), 60],
    ['escapes', '"\\\t'.repeat(30), 61],
    ['emoji', '😀'.repeat(30), 50],
  ])('%s: the longest prefix that fits, then the marker', (_n, text, max) => {
    const cut = cutToLiteralBytes(text, max);
    expect(lit(cut)).toBeLessThanOrEqual(max);
    expect(cut.endsWith(TRUNCATION_MARKER)).toBe(true);
    const kept = cut.slice(0, -TRUNCATION_MARKER.length);
    expect(text.startsWith(kept)).toBe(true);
    // One more character would not fit.
    const next = Array.from(text.slice(kept.length))[0]!;
    expect(lit(kept + next + TRUNCATION_MARKER)).toBeGreaterThan(max);
  });
  it('the marker alone when nothing fits', () => {
    expect(cutToLiteralBytes('abc', 3)).toBe(TRUNCATION_MARKER);
  });
});
