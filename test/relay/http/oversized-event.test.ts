/**
 * An event over GitHub's dispatch limit is accepted only if it can be delivered: long text is
 * shortened (the same entry builder in the dispatcher and in direct mode), and the one body that
 * cannot be delivered (the fields the Action needs alone over the limit) is refused at the door.
 */
import { describe, expect, test } from '@jest/globals';
import { createHandler, type DispatchClientLike, type RelayRequest } from '../../../src/relay/http/handler.js';
import { signBody } from '../../../src/relay/http/signature.js';
import { DISPATCH_MAX_PAYLOAD_BYTES, payloadBytes, utf8Bytes } from '../../../src/github/limits.js';
import { TRUNCATION_MARKER, envelopeSchema } from '../../../src/sauce/envelope.js';
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
