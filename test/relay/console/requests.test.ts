import { RequestLog, signaturePrefix } from '../../../src/relay/console/requests.js';

const base = { route: 'web', status: 401, code: 'signature' as const, reason: 'signature missing or wrong', bytes: 10 };

describe('the request log keeps metadata, bounded by count and by age', () => {
  test('never a whole signature: its first 8 characters at most', () => {
    const log = new RequestLog({ idPrefix: 't' });
    const sig = 'deadbeefcafebabe00112233445566778899aabbccddeeff0011223344556677';
    const r = log.record({ ...base, receivedAt: 1, signature: sig }, 1);
    expect(r.signature).toBe('deadbeef…');
    expect(JSON.stringify(log.list(1))).not.toContain('cafebabe');
    expect(signaturePrefix('short')).toBe('…');
    expect(signaturePrefix(undefined)).toBeNull();
  });

  test('by count: the oldest go first', () => {
    const log = new RequestLog({ idPrefix: 't', maxCount: 3 });
    for (let i = 1; i <= 5; i += 1) log.record({ ...base, receivedAt: i, reason: `r${i}` }, i);
    expect(log.list(5).map((r) => r.reason)).toEqual(['r5', 'r4', 'r3']);
  });

  test('by age: forgotten once older than maxAgeMs, and the marker moves', () => {
    const log = new RequestLog({ idPrefix: 't', maxAgeMs: 1000 });
    log.record({ ...base, receivedAt: 0 }, 0);
    log.record({ ...base, receivedAt: 600 }, 600);
    const before = log.marker(900);
    expect(log.list(900)).toHaveLength(2);
    expect(log.list(1100)).toHaveLength(1);
    expect(log.marker(1100)).not.toBe(before);
    expect(log.list(1700)).toHaveLength(0);
  });

  test('newest first by receipt, even when a slow request is recorded late', () => {
    const log = new RequestLog({ idPrefix: 't' });
    log.record({ ...base, receivedAt: 50, reason: 'fast' }, 60);
    log.record({ ...base, receivedAt: 10, reason: 'slow' }, 70);
    expect(log.list(70).map((r) => r.reason)).toEqual(['fast', 'slow']);
  });

  test('long text is cut, issues at most 20; ids are unique and start with req-', () => {
    const log = new RequestLog({ idPrefix: 'p1' });
    const a = log.record(
      { ...base, receivedAt: 1, reason: 'x'.repeat(2000), issues: Array.from({ length: 30 }, (_, i) => ({ field: `f${i}`, message: 'm' })) },
      1,
    );
    const b = log.record({ ...base, receivedAt: 1 }, 1);
    expect(Array.from(a.reason)).toHaveLength(500);
    expect(a.issues).toHaveLength(20);
    expect(a.id).toMatch(/^req-p1-/);
    expect(a.id).not.toBe(b.id);
    expect(log.get(a.id, 1)).toEqual(a);
    expect(log.get('req-p1-zz', 1)).toBeNull();
  });

  test('an id prefix that could break an id is refused', () => {
    expect(() => new RequestLog({ idPrefix: 'a/b' })).toThrow(/idPrefix/);
  });
});
