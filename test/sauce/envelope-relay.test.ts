/** The relay's notes in an envelope entry: beside the verbatim payload, kept whole, counted in the size. */
import { utf8Bytes } from '../../src/github/limits.js';
import { ENTRY_MAX_BYTES, TRUNCATION_MARKER, envelopeEntry, relayedEventSchema } from '../../src/sauce/envelope.js';

const META = { id: '3f0c9a52-8d1e-4c7b-9a61-2b5d7e0f4c11', received_at: '2026-01-01T12:00:00.000Z', route: 'default' };
const visual = (extra: Record<string, unknown> = {}) => ({
  build_id: '0b0e2d4c-1111-4a2b-8c3d-000000000001',
  build_name: 'shop-web sha:9fceb02d0ae598e95dc970b74767f19372d61af8',
  status: 'QUEUED',
  summary: { errored: 0, approved: 0, equal: 1, rejected: 0, unapproved: 0, queued: 2 },
  ...extra,
});
const relay = { stuck: { since: '2026-01-01T10:00:00.000Z', after_ms: 7_200_000, at: '2026-01-01T12:00:00.000Z' } };

test('the notes go in `relay`, the payload stays as Sauce sent it, the size counts both', () => {
  const r = envelopeEntry(visual(), { ...META, relay });
  if (!r.ok) throw new Error(r.reason);
  expect(r.entry).toEqual({ payload: visual(), ...META, relay });
  expect(r.bytes).toBe(utf8Bytes(JSON.stringify(r.entry)));
  expect(r.truncated).toEqual([]);
});

test('without notes, no `relay` key at all', () => {
  const r = envelopeEntry(visual(), META);
  expect(r.ok && Object.keys(r.entry)).toEqual(['payload', 'id', 'received_at', 'route']);
});

test('over the limit: Sauce text is shortened, the notes are kept whole', () => {
  const r = envelopeEntry(visual({ vendor_note: 'x'.repeat(70_000) }), { ...META, relay });
  if (!r.ok) throw new Error(r.reason);
  expect(r.bytes).toBeLessThanOrEqual(ENTRY_MAX_BYTES);
  expect(r.entry.relay).toEqual(relay);
  expect(String((r.entry.payload as Record<string, unknown>).vendor_note).endsWith(TRUNCATION_MARKER)).toBe(true);
});

test('the envelope schema takes any `relay` value: a reader decides what it understands', () => {
  for (const value of [relay, 'text', 7, null, []]) {
    expect(relayedEventSchema.safeParse({ payload: visual(), relay: value }).success).toBe(true);
  }
});
