import { eventId } from '../../../src/relay/outbox/event-id.js';

describe('eventId', () => {
  test('UUIDv7s, all distinct, sorting in the order made across many in one millisecond and past a refill of the random pool', () => {
    // 4 KB of random bytes serve 256 ids: 1,000 cross several refills, most within one millisecond.
    const ids = Array.from({ length: 1000 }, () => eventId());
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
  });

  test('carries the time it was made in its first 48 bits', () => {
    const before = Date.now();
    const id = eventId();
    const after = Date.now();
    const ms = Number.parseInt(id.replace(/-/g, '').slice(0, 12), 16);
    // The counter may have pushed it a millisecond or so ahead, never behind.
    expect(ms).toBeGreaterThanOrEqual(before);
    expect(ms).toBeLessThanOrEqual(after + 2);
  });
});
