/**
 * An event over GitHub's dispatch limit is accepted only if it can be delivered: long text is
 * shortened (the same entry builder in the dispatcher and in direct mode), and the one body that
 * cannot be delivered (the fields the Action needs alone over the limit) is refused at the door.
 */
import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { createHandler, fitsUnsized, reserialisedBytesBound, type DispatchClientLike, type RelayRequest } from '../../../src/relay/http/handler.js';
import { signBody } from '../../../src/relay/http/signature.js';
import { DISPATCH_MAX_PAYLOAD_BYTES, payloadBytes, utf8Bytes } from '../../../src/github/limits.js';
import { ENTRY_MAX_BYTES, STORED_ID_PLACEHOLDER, TRUNCATION_MARKER, envelopeEntry, envelopeSchema } from '../../../src/sauce/envelope.js';
import { MemoryStore, route, sauceFixture, silentLogger } from '../support/common.js';

const SECRET = 'oversized-secret';
const routes = [route({ name: 'web', path: '/webhook/web', secrets: [SECRET] })];
const DAY = 86_400_000;
/** The fixtures carry 2025 dates: a stale limit of ten years keeps the replay check out of these tests. */
const job = JSON.parse(sauceFixture('job-vdc-failed-boolean.json').toString('utf8')) as Record<string, unknown>;
const stack = `TimeoutError: card form never appeared\n${'    at pay (webpack:///src/checkout/pay.ts:41:17)\n'.repeat(1_600)}`;

function post(payload: Record<string, unknown>): RelayRequest {
  const body = Buffer.from(JSON.stringify(payload), 'utf8');
  return { method: 'POST', path: '/webhook/web', headers: { 'saucelabs-sign': signBody(SECRET, body) }, body };
}

describe('store mode', () => {
  const setup = () => {
    const store = new MemoryStore();
    const handler = createHandler({ routes, bodyLimitBytes: 1024 * 1024, dedupWindowMs: 60_000, staleAfterMs: 10 * 365 * DAY, logger: silentLogger, store });
    return { store, handler };
  };

  test('a 70 KB stack trace is stored (the dispatcher will shorten it)', async () => {
    expect(utf8Bytes(stack)).toBeGreaterThan(70_000);
    const { store, handler } = setup();
    const r = await handler.handle(post({ ...job, exception: stack }));
    expect([r.status, JSON.parse(r.body).status]).toEqual([202, 'stored']);
    expect(store.events).toHaveLength(1);
  });

  test('an event whose needed fields alone exceed a dispatch is refused with 413, and not stored', async () => {
    const { store, handler } = setup();
    const r = await handler.handle(post({ ...job, name: 'n'.repeat(70_000) }));
    expect(r.status).toBe(413);
    expect(JSON.parse(r.body)).toMatchObject({ error: 'event too large for repository_dispatch', reason: expect.stringContaining('fields the Action needs') });
    expect(store.events).toHaveLength(0);
  });
});

describe('direct mode (serverless)', () => {
  const setup = () => {
    const calls: Record<string, unknown>[] = [];
    const client: DispatchClientLike = {
      async dispatch(_repo, _eventType, payload) {
        calls.push(payload);
        return { kind: 'sent' };
      },
    };
    const handler = createHandler({
      routes,
      bodyLimitBytes: 1024 * 1024,
      dedupWindowMs: 60_000,
      staleAfterMs: 10 * 365 * DAY,
      logger: silentLogger,
      direct: { client },
    });
    return { calls, handler };
  };

  test('a 70 KB stack trace is dispatched shortened, not refused', async () => {
    const { calls, handler } = setup();
    const r = await handler.handle(post({ ...job, exception: stack }));
    expect([r.status, JSON.parse(r.body).status]).toEqual([202, 'dispatched']);
    expect(calls).toHaveLength(1);
    expect(payloadBytes(calls[0])).toBeLessThanOrEqual(DISPATCH_MAX_PAYLOAD_BYTES);
    const [entry] = envelopeSchema.parse(calls[0]).events;
    expect(entry!.truncated).toEqual([{ field: 'exception', bytes: utf8Bytes(stack) }]);
    const payload = entry!.payload as Record<string, unknown>;
    expect((payload.exception as string).endsWith(TRUNCATION_MARKER)).toBe(true);
    expect(payload).toMatchObject({ id: job.id, status: job.status, passed: job.passed, commit_id: job.commit_id });
  });

  test('the needed fields alone over the limit: 413, nothing sent', async () => {
    const { calls, handler } = setup();
    expect((await handler.handle(post({ ...job, name: 'n'.repeat(70_000) }))).status).toBe(413);
    expect(calls).toHaveLength(0);
  });
});

/**
 * The door sizes an event's dispatch entry (a JSON.stringify of the whole event) only when its body
 * could be too large; the bound it relies on must hold for every JSON text, the hostile ones too.
 */
describe('sizing at the door', () => {
  const bytes = (text: string): number => Buffer.byteLength(text, 'utf8');
  /** Numbers as a sender may write them, the ones that grow when re-serialised among them. */
  const numberText = fc.oneof(
    fc.constantFrom(
      '1e20',
      '-1e20',
      '1E20',
      '5e-7',
      '1.1e-6',
      '99999999999999999999',
      '1e400',
      '-0',
      '0e0',
      '1.5e+20',
      '9007199254740993',
      '1e-7',
      '-1.2345678901234567e-300',
    ),
    fc.double({ noNaN: true, noDefaultInfinity: true }).map(String),
    fc.tuple(fc.integer({ min: 1, max: 9 }), fc.integer({ min: -330, max: 330 })).map(([m, e]) => `${m}e${e}`),
  );
  /** Strings with escapes a sender may use (\u for plain letters, escaped pairs, \/) and raw non-ASCII. */
  const stringText = fc
    .array(fc.oneof(fc.constantFrom('\\u0041', '\\ud83d\\ude00', '\\ud800', '\\/', '\\n', '\\u0001', '\\"', 'é', '😀', '\u2028', 'x')), { maxLength: 8 })
    .map((parts) => `"${parts.join('')}"`);
  const ws = fc.constantFrom('', ' ', '\n  ');
  const value = fc.letrec<{ value: string; array: string; object: string }>((tie) => ({
    value: fc.oneof({ depthSize: 'small' }, numberText, stringText, fc.constantFrom('true', 'null'), tie('array'), tie('object')),
    array: fc.tuple(ws, fc.array(tie('value'), { maxLength: 6 })).map(([w, xs]) => `[${w}${xs.join(`,${w}`)}]`),
    object: fc.array(fc.tuple(stringText, tie('value')), { maxLength: 5 }).map((pairs) => `{${pairs.map(([k, v]) => `${k}:${v}`).join(',')}}`),
  })).value;

  test('re-serialising a JSON text never takes more than reserialisedBytesBound of its size', () => {
    fc.assert(
      fc.property(fc.oneof(value, fc.json()), (text) => {
        expect(bytes(JSON.stringify(JSON.parse(text)))).toBeLessThanOrEqual(reserialisedBytesBound(bytes(text)));
      }),
      { numRuns: 3000 },
    );
  });

  test('the worst growth is numbers written short that come back long, and the bound covers it', () => {
    const text = `[${Array.from({ length: 1000 }, () => '1e-7,5e-7,1e20').join(',')}]`;
    const grown = bytes(JSON.stringify(JSON.parse(text)));
    expect(grown).toBeGreaterThan(2 * bytes(text));
    expect(grown).toBeLessThanOrEqual(reserialisedBytesBound(bytes(text)));
  });

  test('an event the door does not size always fits one dispatch, whole', () => {
    const meta = { id: STORED_ID_PLACEHOLDER, received_at: new Date(8.64e15).toISOString(), route: 'web' };
    const metaBytes = bytes(JSON.stringify({ payload: 0, ...meta })) - 1;
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue(), { maxKeys: 40 }), (extra) => {
        const body = JSON.stringify({ ...job, ...extra });
        if (!fitsUnsized(bytes(body), metaBytes)) return;
        const entry = envelopeEntry(JSON.parse(body), meta);
        expect(entry.ok && entry.truncated.length === 0 && entry.bytes <= ENTRY_MAX_BYTES).toBe(true);
      }),
    );
    // Sauce's own events (about 1 to 3 KB) are far below the size that needs sizing.
    expect(fitsUnsized(5_000, metaBytes)).toBe(true);
    expect(fitsUnsized(Math.ceil(ENTRY_MAX_BYTES / 13), metaBytes)).toBe(false);
  });
});
