import type { RequestRecord, RequestRetention } from '../../../src/relay/console/source.js';
import { RequestRecorder, signaturePrefix, sourceAddress, toRequestRecord } from '../../../src/relay/console/requests.js';
import type { Timers } from '../../../src/relay/timers.js';
import type { RefusedRequest } from '../../../src/relay/http/handler.js';
import { parseSauceEvent } from '../../../src/sauce/event.js';
import { sauceFixture } from '../support/common.js';
import { captureLogger } from './support.js';

const base: RefusedRequest = {
  receivedAt: 1,
  route: 'web',
  repo: null,
  status: 401,
  code: 'signature',
  reason: 'saucelabs-sign matches no secret of the route',
  bytes: 10,
  peer: '203.0.113.7',
  forwardedFor: null,
  signature: null,
  issues: [],
  event: null,
  duplicateOf: null,
};

describe('the record of a refused request: metadata only', () => {
  test('never a whole signature: its first 8 characters at most', () => {
    const sig = 'deadbeefcafebabe00112233445566778899aabbccddeeff0011223344556677';
    const r = toRequestRecord({ ...base, signature: sig }, 'req-t-1');
    expect(r.signature).toBe('deadbeef…');
    expect(JSON.stringify(r)).not.toContain('cafebabe');
    expect(signaturePrefix('short')).toBe('…');
    expect(signaturePrefix(undefined)).toBeNull();
  });

  test('long text is cut, issues at most 20; an event becomes its display fields', () => {
    const parsed = parseSauceEvent(JSON.parse(sauceFixture('job-vdc-passed.json').toString('utf8')));
    if (!parsed.ok) throw new Error('fixture');
    const r = toRequestRecord(
      {
        ...base,
        reason: 'x'.repeat(2000),
        route: 'r'.repeat(300),
        issues: Array.from({ length: 30 }, (_, i) => ({ field: `f${i}`, message: 'm' })),
        event: parsed.event,
      },
      'req-t-2',
    );
    expect(Array.from(r.reason)).toHaveLength(500);
    expect(Array.from(r.route!)).toHaveLength(100);
    expect(r.issues).toHaveLength(20);
    expect(r.event).toMatchObject({ kind: 'vdc', sauceId: parsed.event.kind === 'job' ? parsed.event.id : '' });
    // The event's fields only: no body text beyond them.
    expect(Object.keys(r.event!).sort()).toEqual(['branch', 'build', 'commit', 'kind', 'name', 'passed', 'sauceId', 'shortSha', 'status']);
  });

  test.each([
    ['a direct peer', '203.0.113.7', null, '203.0.113.7'],
    ['a direct peer sending its own X-Forwarded-For (not trusted)', '203.0.113.7', '10.0.0.1', '203.0.113.7'],
    ['a proxy on this host: the address it appended', '127.0.0.1', '198.51.100.1, 203.0.113.9', '203.0.113.9'],
    ['a proxy on this host over IPv6', '::1', '2001:db8::7', '2001:db8::7'],
    ['a proxy on this host, mapped IPv4', '::ffff:127.0.0.1', '203.0.113.9', '203.0.113.9'],
    ['a proxy on this host with a header that is not an address', '127.0.0.1', 'evil<script>', '127.0.0.1'],
    ['no peer', null, '203.0.113.9', null],
  ])('source address: %s', (_what, peer, forwardedFor, expected) => {
    expect(sourceAddress(peer, forwardedFor)).toBe(expected);
  });
});

/** Timers the test fires by hand. */
function manualTimers() {
  const pending = new Map<number, { callback: () => void; ms: number }>();
  let n = 0;
  const timers: Timers = {
    setTimeout(callback, ms) {
      n += 1;
      pending.set(n, { callback, ms });
      return n;
    },
    clearTimeout(handle) {
      pending.delete(handle as number);
    },
  };
  return {
    timers,
    pending,
    /** Fire every pending timer once. */
    fire() {
      const due = [...pending.entries()];
      pending.clear();
      for (const [, t] of due) t.callback();
    },
  };
}

function sink(fail = false) {
  const writes: { records: RequestRecord[]; retention: RequestRetention }[] = [];
  return {
    writes,
    store: {
      async recordRequests(records: readonly RequestRecord[], retention: RequestRetention) {
        if (fail) throw new Error('database is locked');
        writes.push({ records: [...records], retention });
      },
    },
  };
}

describe('the recorder: off the request path, bounded, at most one write a second', () => {
  test('records are buffered and written together by one timer, with the retention', async () => {
    const t = manualTimers();
    const s = sink();
    const log = captureLogger();
    const recorder = new RequestRecorder({
      store: s.store,
      logger: log.logger,
      timers: t.timers,
      idPrefix: 'p1',
      now: () => 5000,
      maxAgeMs: 60_000,
      maxCount: 7,
    });
    recorder.record(base);
    recorder.record({ ...base, code: 'not_json' });
    expect(s.writes).toHaveLength(0);
    expect([...t.pending.values()].map((p) => p.ms)).toEqual([1000]);
    t.fire();
    await recorder.flush();
    expect(s.writes).toHaveLength(1);
    expect(s.writes[0]!.records.map((r) => r.code)).toEqual(['signature', 'not_json']);
    expect(s.writes[0]!.records.map((r) => r.id)).toEqual(['req-p1-1', 'req-p1-2']);
    expect(s.writes[0]!.retention).toEqual({ now: 5000, maxAgeMs: 60_000, maxCount: 7 });
    // Nothing buffered: no timer, no write.
    expect(t.pending.size).toBe(0);
    await recorder.flush();
    expect(s.writes).toHaveLength(1);
  });

  test('a flood: at most maxPerFlush records per write, the rest counted as dropped and logged once per write', async () => {
    const t = manualTimers();
    const s = sink();
    const log = captureLogger();
    const dropped: number[] = [];
    const recorder = new RequestRecorder({ store: s.store, logger: log.logger, timers: t.timers, maxPerFlush: 100, onDropped: (n) => dropped.push(n) });
    for (let i = 0; i < 10_000; i += 1) recorder.record(base);
    expect(recorder.buffered).toBe(100);
    expect(recorder.dropped).toBe(9_900);
    expect(dropped.reduce((a, b) => a + b, 0)).toBe(9_900);
    expect(t.pending.size).toBe(1);
    t.fire();
    await recorder.flush();
    expect(s.writes.map((w) => w.records.length)).toEqual([100]);
    expect(log.records().filter((l) => l.msg === 'refused requests over the recording rate were not recorded')).toEqual([
      expect.objectContaining({ dropped: 9_900, maxPerSecond: 100 }),
    ]);
    // The next second takes 100 again.
    for (let i = 0; i < 150; i += 1) recorder.record(base);
    expect(recorder.buffered).toBe(100);
  });

  test('what arrives during a write waits for the next timer: never two writes at once', async () => {
    const t = manualTimers();
    let release!: () => void;
    const writes: number[] = [];
    const store = {
      recordRequests: (records: readonly RequestRecord[]) => {
        writes.push(records.length);
        return new Promise<void>((r) => {
          release = r;
        });
      },
    };
    const recorder = new RequestRecorder({ store, logger: captureLogger().logger, timers: t.timers });
    recorder.record(base);
    t.fire();
    const first = recorder.flush();
    recorder.record(base);
    recorder.record(base);
    expect(t.pending.size).toBe(0);
    expect(writes).toEqual([1]);
    release();
    await first;
    expect(t.pending.size).toBe(1);
    t.fire();
    await Promise.resolve();
    expect(writes).toEqual([1, 2]);
    release();
  });

  test('a failed write drops its records (counted, logged) and never throws into the request path', async () => {
    const t = manualTimers();
    const log = captureLogger();
    const recorder = new RequestRecorder({ store: sink(true).store, logger: log.logger, timers: t.timers });
    recorder.record(base);
    recorder.record(base);
    t.fire();
    await recorder.flush();
    expect(recorder.dropped).toBe(2);
    expect(log.records()).toContainEqual(expect.objectContaining({ msg: 'could not record refused requests', records: 2 }));
  });

  test('stop writes what is buffered, then records nothing more', async () => {
    const t = manualTimers();
    const s = sink();
    const recorder = new RequestRecorder({ store: s.store, logger: captureLogger().logger, timers: t.timers });
    recorder.record(base);
    await recorder.stop();
    expect(s.writes.map((w) => w.records.length)).toEqual([1]);
    recorder.record(base);
    expect(recorder.buffered).toBe(0);
    expect(recorder.dropped).toBe(1);
  });

  test('an id prefix that could break an id is refused', () => {
    expect(() => new RequestRecorder({ store: sink().store, logger: captureLogger().logger, idPrefix: 'a/b' })).toThrow(/idPrefix/);
  });
});
