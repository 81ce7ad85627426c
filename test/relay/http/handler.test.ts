import fc from 'fast-check';
import { createHandler, jsonNesting, nestedDeeperThan, openBracketsAtMost, type DispatchOutcome, type RelayRequest } from '../../../src/relay/http/handler.js';
import { createMetrics } from '../../../src/relay/metrics.js';
import { signBody } from '../../../src/relay/http/signature.js';
import { MemoryStore, route, sauceFixture, sauceFixtureNames, silentLogger } from '../support/common.js';

const SECRET = 's3cr3t-token';
const TOKEN = 'T'.repeat(40);
const body = sauceFixture('job-vdc-passed.json');
const DAY = 86_400_000;
/** The handler's clock: an hour after the fixtures' job events (their times are fixed). */
const NOW = Date.parse('2025-09-02T15:00:00Z');

const routes = [
  route({ name: 'web', path: '/webhook/web', secrets: ['older', SECRET] }),
  route({ name: 'fails', path: '/webhook/fails', filters: { ...route().filters, failedOnly: true } }),
  route({ name: 'open', path: `/webhook/open/${TOKEN}`, secrets: [], allowUnsigned: true, urlToken: TOKEN }),
];

function setup(limit = 1024 * 1024) {
  const store = new MemoryStore();
  const metrics = createMetrics({ defaultMetrics: false });
  const stored: string[] = [];
  const handler = createHandler({
    routes,
    bodyLimitBytes: limit,
    dedupWindowMs: 60_000,
    staleAfterMs: DAY,
    now: () => NOW,
    logger: silentLogger,
    metrics,
    store,
    onStored: (id) => stored.push(id),
  });
  return { store, metrics, stored, handler };
}

function post(path: string, payload: Buffer | string, sig: string | null = signBody(SECRET, payload), extra: Partial<RelayRequest> = {}): RelayRequest {
  return {
    method: 'POST',
    path,
    headers: sig === null ? {} : { 'saucelabs-sign': sig },
    body: Buffer.isBuffer(payload) ? payload : Buffer.from(payload, 'utf8'),
    ...extra,
  };
}

async function counter(metrics: ReturnType<typeof createMetrics>, name: string): Promise<Record<string, number>> {
  const m = await metrics.registry.getSingleMetric(name)!.get();
  return Object.fromEntries(m.values.map((v) => [Object.values(v.labels).join(',') || 'total', v.value]));
}

describe('the request path, in order', () => {
  test('1. wrong path → 404, wrong method → 405 with Allow', async () => {
    const { handler } = setup();
    for (const path of ['/', '/webhook', '/webhook/nope', '/webhook/web/extra', '/webhookweb', `/webhook/open`, `/webhook/open/${'x'.repeat(40)}`]) {
      expect((await handler.handle(post(path, body))).status).toBe(404);
    }
    const r = await handler.handle({ ...post('/webhook/web', body), method: 'GET' });
    expect(r.status).toBe(405);
    expect(r.headers.allow).toBe('POST');
    expect((await handler.handle(post('/webhook/web/?x=1', body))).status).toBe(202);
  });

  test('2. over the cap → 413, whether the caller flagged it or not', async () => {
    const { handler, store } = setup(100);
    expect((await handler.handle(post('/webhook/web', body, null, { bodyTooLarge: true, body: Buffer.alloc(0) }))).status).toBe(413);
    expect((await handler.handle(post('/webhook/web', body))).status).toBe(413);
    expect(store.events).toHaveLength(0);
  });

  test('3. missing or wrong signature → 401 that leaks nothing', async () => {
    const { handler, metrics } = setup();
    const answers = [
      await handler.handle(post('/webhook/web', body, null)),
      await handler.handle(post('/webhook/web', body, signBody('wrong', body))),
      await handler.handle(post('/webhook/web', body, 'garbage')),
      await handler.handle(post('/webhook/web', Buffer.from('not json'), signBody('wrong', 'not json'))),
    ];
    for (const r of answers) {
      expect(r.status).toBe(401);
      expect(JSON.parse(r.body)).toEqual({ error: 'unauthorized' });
    }
    expect(new Set(answers.map((a) => a.body)).size).toBe(1);
    expect((await counter(metrics, 'sauce_relay_rejected_total')).signature).toBe(4);
  });

  test('3. any of the route secrets; prefix and upper-case hex accepted', async () => {
    const { handler } = setup();
    const other = Buffer.from(body.toString('utf8').replace('PASSED', 'FAILED'));
    expect((await handler.handle(post('/webhook/web', body, signBody('older', body)))).status).toBe(202);
    expect((await handler.handle(post('/webhook/web', other, `sha256=${signBody(SECRET, other).toUpperCase()}`))).status).toBe(202);
  });

  test('3. unsigned only on the opted-in route with its URL token', async () => {
    const { handler } = setup();
    expect((await handler.handle(post(`/webhook/open/${TOKEN}`, body, null))).status).toBe(202);
    expect((await handler.handle(post('/webhook/web', body, null))).status).toBe(401);
  });

  test('4. not JSON → 400; not UTF-8 → 400; not a Sauce event → 422 with the fields', async () => {
    const { handler } = setup();
    for (const bad of ['', '{', '{"id":', 'null x', '\uFEFF{}']) {
      expect((await handler.handle(post('/webhook/web', bad))).status).toBe(400);
    }
    const latin1 = Buffer.from([0x7b, 0x22, 0xe9, 0x22, 0x3a, 0x31, 0x7d]);
    expect((await handler.handle(post('/webhook/web', latin1))).status).toBe(400);
    const r = await handler.handle(post('/webhook/web', JSON.stringify({ id: 'x', data_type: 'vdc', status: 'DANCING' })));
    expect(r.status).toBe(422);
    const parsed = JSON.parse(r.body) as { issues: { field: string }[] };
    expect(parsed.issues.map((i) => i.field)).toContain('status');
    for (const notEvent of ['[]', '"x"', '42', '{}', '{"hello":"world"}']) {
      const answer = await handler.handle(post('/webhook/web', notEvent));
      expect(answer.status).toBe(422);
      expect(JSON.parse(answer.body).issues.length).toBeGreaterThan(0);
    }
  });

  test('5. filtered → 202 with the reason, nothing stored', async () => {
    const { handler, store, stored } = setup();
    const r = await handler.handle(post('/webhook/fails', body));
    expect(r.status).toBe(202);
    expect(JSON.parse(r.body)).toEqual({ status: 'filtered', reason: expect.stringMatching(/failed_only/) });
    expect(store.events).toHaveLength(0);
    expect(stored).toHaveLength(0);
  });

  test('5. the filtered metric counts the code the routing decided, not a reading of the reason text', async () => {
    const store = new MemoryStore();
    const metrics = createMetrics({ defaultMetrics: false });
    const tagged = route({ name: 'tagged', path: '/webhook/tagged', repo: null, repoFromTags: true, allow: ['acme'], secrets: [SECRET] });
    const handler = createHandler({
      routes: [...routes, tagged],
      bodyLimitBytes: 1 << 20,
      dedupWindowMs: 60_000,
      staleAfterMs: DAY,
      now: () => NOW,
      logger: silentLogger,
      metrics,
      store,
    });
    const withTag = (tag: string) => JSON.stringify({ ...JSON.parse(body.toString('utf8')), tags: [tag] });
    const answers = [
      await handler.handle(post('/webhook/fails', body)),
      await handler.handle(post('/webhook/tagged', withTag('ci:repo:evil/x'))),
      await handler.handle(post('/webhook/tagged', withTag('ci:repo:acme'))),
      await handler.handle(post('/webhook/tagged', body)),
    ];
    for (const a of answers) expect([a.status, JSON.parse(a.body).status]).toEqual([202, 'filtered']);
    expect(await counter(metrics, 'sauce_relay_filtered_total')).toEqual({
      'fails,filtered': 1,
      'tagged,not_allowed': 1,
      'tagged,bad_tag': 1,
      'tagged,no_route': 1,
    });
    expect(store.events).toHaveLength(0);
  });

  test("5. a captured body replayed after the dedup window: refused as stale by the job's own time, not stored again", async () => {
    let clock = NOW;
    const store = new MemoryStore();
    const metrics = createMetrics({ defaultMetrics: false });
    const handler = createHandler({
      routes,
      bodyLimitBytes: 1 << 20,
      dedupWindowMs: 2 * DAY,
      staleAfterMs: DAY,
      now: () => clock,
      logger: silentLogger,
      metrics,
      store,
    });
    expect(JSON.parse((await handler.handle(post('/webhook/web', body))).body).status).toBe('stored');
    // Within the dedup window (and fresh): a duplicate.
    clock = NOW + 3_600_000;
    expect((await handler.handle(post('/webhook/web', body))).status).toBe(200);
    // Past it: the job's modification_time is days old.
    clock = NOW + 3 * DAY;
    const replay = await handler.handle(post('/webhook/web', body));
    expect(replay.status).toBe(202);
    expect(JSON.parse(replay.body)).toEqual({
      status: 'filtered',
      reason: expect.stringMatching(/^stale: the job's modification_time 2025-09-02T14:05:17\.000Z/),
    });
    expect(store.events).toHaveLength(1);
    expect(await counter(metrics, 'sauce_relay_filtered_total')).toEqual({ 'web,stale': 1 });
    // A Visual body has no time of its own: still accepted (see the README).
    expect(JSON.parse((await handler.handle(post('/webhook/web', sauceFixture('visual-approved.json')))).body).status).toBe('stored');
  });

  test('6 and 7. stored → 202 with id; same body again → 200 duplicate; other route → stored', async () => {
    const { handler, store, stored, metrics } = setup();
    const first = await handler.handle(post('/webhook/web', body));
    expect(first.status).toBe(202);
    const { id } = JSON.parse(first.body) as { id: string };
    expect(JSON.parse(first.body)).toEqual({ status: 'stored', id });
    expect(stored).toEqual([id]);
    const again = await handler.handle(post('/webhook/web', body, signBody('older', body)));
    expect(again.status).toBe(200);
    expect(JSON.parse(again.body)).toEqual({ status: 'duplicate', id });
    expect(stored).toHaveLength(1);
    expect((await handler.handle(post(`/webhook/open/${TOKEN}`, body, null))).status).toBe(202);
    // The raw body is stored byte for byte.
    expect(store.events[0]).toMatchObject({ route: 'web', repo: 'acme/web', eventType: 'saucelabs', body: body.toString('utf8') });
    expect(await counter(metrics, 'sauce_relay_duplicates_total')).toEqual({ web: 1 });
  });

  test("7. the store is given the event's own time (a job's modification_time; none for a Visual build), for its dedup key", async () => {
    const { handler, store } = setup();
    expect((await handler.handle(post('/webhook/web', body))).status).toBe(202);
    const visual = sauceFixture('visual-unapproved.json');
    expect((await handler.handle(post('/webhook/web', visual))).status).toBe(202);
    expect(store.events.map((e) => e.occurredAt)).toEqual([Date.parse('2025-09-02T14:05:17Z'), null]);
  });

  test('7. store down → 503 with Retry-After, and never 2xx', async () => {
    const { handler, store, stored } = setup();
    store.down = true;
    const r = await handler.handle(post('/webhook/web', body));
    expect(r.status).toBe(503);
    expect(Number(r.headers['retry-after'])).toBeGreaterThan(0);
    expect(stored).toHaveLength(0);
  });

  test('every fixture is stored', async () => {
    const { handler } = setup();
    for (const name of sauceFixtureNames()) {
      const r = await handler.handle(post('/webhook/web', sauceFixture(name)));
      expect([name, r.status]).toEqual([name, 202]);
    }
  });
});

describe('direct mode (serverless)', () => {
  function direct(outcome: DispatchOutcome | Error) {
    const calls: { repo: string; eventType: string; payload: Record<string, unknown> }[] = [];
    const handler = createHandler({
      routes,
      bodyLimitBytes: 1024 * 1024,
      dedupWindowMs: 1000,
      staleAfterMs: DAY,
      now: () => NOW,
      logger: silentLogger,
      direct: {
        client: {
          async dispatch(repo, eventType, payload) {
            calls.push({ repo, eventType, payload });
            if (outcome instanceof Error) throw outcome;
            return outcome;
          },
        },
      },
    });
    return { handler, calls };
  }

  test('sent → 202 with a stable id; the envelope carries the event verbatim', async () => {
    const { handler, calls } = direct({ kind: 'sent' });
    const r = await handler.handle(post('/webhook/web', body));
    expect(r.status).toBe(202);
    const { id } = JSON.parse(r.body) as { id: string };
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ repo: 'acme/web', eventType: 'saucelabs' });
    expect(calls[0]!.payload).toEqual({ version: 1, events: [{ payload: JSON.parse(body.toString()), id, received_at: expect.any(String), route: 'web' }] });
    expect(JSON.parse((await handler.handle(post('/webhook/web', body))).body).id).toBe(id);
  });

  test('GitHub retryable → 503 with its Retry-After; fatal or thrown → 502 / 503', async () => {
    const retry = await direct({ kind: 'retry', code: 'rate_limit', reason: '429', retryAfterMs: 30_500 }).handler.handle(post('/webhook/web', body));
    expect(retry.status).toBe(503);
    expect(retry.headers['retry-after']).toBe('31');
    expect((await direct({ kind: 'fatal', code: 'not_found', reason: '404' }).handler.handle(post('/webhook/web', body))).status).toBe(502);
    expect((await direct(new Error('ECONNRESET')).handler.handle(post('/webhook/web', body))).status).toBe(503);
  });

  test('the earlier steps still apply', async () => {
    const { handler, calls } = direct({ kind: 'sent' });
    expect((await handler.handle(post('/webhook/web', body, 'bad'))).status).toBe(401);
    expect((await handler.handle(post('/webhook/fails', body))).status).toBe(202);
    expect(calls).toHaveLength(0);
  });
});

describe('deep JSON', () => {
  test('nestedDeeperThan skips strings and escapes', async () => {
    expect(nestedDeeperThan(Buffer.from('[[[]]]'), 3)).toBe(false);
    expect(nestedDeeperThan(Buffer.from('[[[[]]]]'), 3)).toBe(true);
    expect(nestedDeeperThan(Buffer.from('{"a":"[[[[[[\\\\\\"[[[["}'), 3)).toBe(false);
  });

  test.each([
    ['{}', 1, true],
    ['[]', 0, false],
    ['{"a":[1,{"b":2}]}', 3, true],
    ['{"a":[1,{"b":2}]}', 2, false],
    // Brackets inside strings count too: the shortcut may only send a body to the full scan.
    ['{"a":"[[[["}', 4, false],
    ['', 0, true],
  ])('openBracketsAtMost(%j, %d) = %s', async (text, limit, expected) => {
    expect(openBracketsAtMost(Buffer.from(text), limit)).toBe(expected);
  });

  test('a body with at most N opening brackets never nests deeper than N (so skipping the scan is safe)', async () => {
    fc.assert(
      fc.property(fc.json(), fc.integer({ min: 0, max: 40 }), (text, limit) => {
        const bytes = Buffer.from(text);
        if (openBracketsAtMost(bytes, limit)) expect(jsonNesting(bytes).maxDepth).toBeLessThanOrEqual(limit);
      }),
      { numRuns: 2000 },
    );
  });

  test('a valid event carrying a deeply nested extra field → 422, not stored', async () => {
    const { handler, store } = setup();
    const event = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
    const deep = JSON.stringify({ ...event, extra: 'X' }).replace('"X"', `${'{"a":'.repeat(20_000)}1${'}'.repeat(20_000)}`);
    const r = await handler.handle(post('/webhook/web', deep));
    expect(r.status).toBe(422);
    expect(r.body).toMatch(/nested deeper than 32/);
    expect(store.events).toHaveLength(0);
  });
});
