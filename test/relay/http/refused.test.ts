/**
 * The handler's hook for the delivery console: every request answered without storing an event is
 * reported once to `onRefused` (with what the console records), a stored one never, and a path that
 * may hold a URL token is shown cut.
 */
import { createHandler, shownPath, type RefusedRequest, type RelayRequest } from '../../../src/relay/http/handler.js';
import { signBody } from '../../../src/relay/http/signature.js';
import { MemoryStore, route, sauceFixture, silentLogger } from '../support/common.js';

const SECRET = 's3cr3t-token';
const TOKEN = 'T'.repeat(40);
const DAY = 86_400_000;
const NOW = Date.parse('2025-09-02T15:00:00Z');
const passed = sauceFixture('job-vdc-passed.json');
const failed = sauceFixture('job-vdc-failed-boolean.json');

const routes = [
  route({ name: 'web', path: '/webhook/web', secrets: [SECRET] }),
  route({ name: 'fails', path: '/webhook/fails', secrets: [SECRET], filters: { ...route().filters, failedOnly: true } }),
  route({ name: 'open', path: `/webhook/open/${TOKEN}`, secrets: [], allowUnsigned: true, urlToken: TOKEN }),
];

interface Setup {
  limit?: number;
  down?: boolean;
  staleAfterMs?: number;
}

function setup(options: Setup = {}) {
  const store = new MemoryStore();
  store.down = options.down ?? false;
  const refused: RefusedRequest[] = [];
  const handler = createHandler({
    routes,
    bodyLimitBytes: options.limit ?? 1024 * 1024,
    dedupWindowMs: 60_000,
    staleAfterMs: options.staleAfterMs ?? DAY,
    now: () => NOW,
    logger: silentLogger,
    store,
    onRefused: (r) => refused.push(r),
  });
  return { handler, refused, store };
}

function post(path: string, payload: Buffer | string, sig: string | null = signBody(SECRET, payload), extra: Partial<RelayRequest> = {}): RelayRequest {
  const headers: Record<string, string> = { 'x-forwarded-for': '198.51.100.4' };
  if (sig !== null) headers['saucelabs-sign'] = sig;
  return { method: 'POST', path, headers, body: Buffer.isBuffer(payload) ? payload : Buffer.from(payload, 'utf8'), remoteAddress: '127.0.0.1', ...extra };
}

const deep = `${'['.repeat(40)}${']'.repeat(40)}`;

describe('each refusal is reported once, with what the console records', () => {
  test.each<[string, () => RelayRequest, Partial<RefusedRequest>, Setup?]>([
    ['no route', () => post('/webhook/nope', passed), { route: null, status: 404, code: 'not_found', reason: 'no route at /webhook/nope', bytes: 0 }],
    [
      'a wrong URL token, cut',
      () => post(`/webhook/open/${'x'.repeat(40)}`, passed),
      { route: null, status: 404, code: 'not_found', reason: 'no route at /webhook/open/xxxx…', bytes: 0 },
    ],
    ['a GET', () => ({ ...post('/webhook/web', ''), method: 'GET' }), { route: 'web', status: 405, code: 'method', reason: 'GET is not allowed: POST only' }],
    [
      'over the cap, as counted by the server',
      () => post('/webhook/web', Buffer.alloc(0), null, { bodyTooLarge: true, receivedBytes: 4096 }),
      { route: 'web', status: 413, code: 'too_large', bytes: 4096, reason: 'body over the size limit (1000 bytes)' },
      { limit: 1000 },
    ],
    ['no signature', () => post('/webhook/web', passed, null), { status: 401, code: 'signature', reason: 'no saucelabs-sign header', signature: null }],
    [
      'a wrong signature',
      () => post('/webhook/web', passed, signBody('wrong', passed)),
      { status: 401, code: 'signature', reason: 'saucelabs-sign matches no secret of the route', signature: signBody('wrong', passed) },
    ],
    ['not UTF-8', () => post('/webhook/web', Buffer.from([0xff, 0xfe])), { status: 400, code: 'not_json', reason: 'body is not UTF-8 JSON', bytes: 2 }],
    ['not JSON', () => post('/webhook/web', 'not json'), { status: 400, code: 'not_json', reason: 'body is not valid JSON' }],
    [
      'nested too deep',
      () => post('/webhook/web', deep),
      { status: 422, code: 'invalid_event', issues: [{ field: '(root)', message: 'JSON nested deeper than 32 levels' }] },
    ],
    [
      'not a Sauce event: which fields',
      () => post('/webhook/web', '{"id":"x","data_type":"vdc"}'),
      { status: 422, code: 'invalid_event', reason: 'not a Sauce Labs event', issues: expect.arrayContaining([expect.objectContaining({ field: 'status' })]) },
    ],
    [
      'filtered, with the reason and the event',
      () => post('/webhook/fails', passed),
      { route: 'fails', status: 202, code: 'filtered', reason: expect.stringMatching(/failed_only/), event: expect.objectContaining({ kind: 'job' }) },
    ],
    [
      'stale: older than the limit by its own time',
      () => post('/webhook/web', passed),
      { status: 202, code: 'stale', event: expect.objectContaining({ kind: 'job' }) },
      { staleAfterMs: 1_000 },
    ],
    [
      'the store is down',
      () => post('/webhook/web', failed),
      { status: 503, code: 'store_unavailable', reason: 'store unavailable: disk full', repo: 'acme/web', event: expect.objectContaining({ kind: 'job' }) },
      { down: true },
    ],
  ])('%s', async (_what, request, expected, options = {}) => {
    const { handler, refused, store } = setup(options);
    const req = request();
    const answer = await handler.handle(req);
    expect(answer.status).toBe(expected.status);
    expect(refused).toHaveLength(1);
    expect(refused[0]).toEqual(
      expect.objectContaining({
        receivedAt: NOW,
        route: 'web',
        repo: null,
        peer: '127.0.0.1',
        forwardedFor: '198.51.100.4',
        bytes: Buffer.from(req.body).byteLength,
        duplicateOf: null,
        ...expected,
      }),
    );
    expect(store.events).toHaveLength(0);
  });

  test('a duplicate: its stored event and repository; a stored event is never reported', async () => {
    const { handler, refused } = setup();
    const first = await handler.handle(post('/webhook/web', failed));
    expect(first.status).toBe(202);
    expect(refused).toEqual([]);
    const again = await handler.handle(post('/webhook/web', failed));
    expect(again.status).toBe(200);
    const { id } = JSON.parse(first.body) as { id: string };
    expect(refused).toEqual([
      expect.objectContaining({ code: 'duplicate', status: 200, repo: 'acme/web', duplicateOf: id, event: expect.objectContaining({ kind: 'job' }) }),
    ]);
  });

  test('preflight reports a refusal only when told who sent it (the server passes it once)', () => {
    const { handler, refused } = setup();
    expect(handler.preflight('POST', '/webhook/nope').ok).toBe(false);
    expect(refused).toEqual([]);
    expect(handler.preflight('POST', '/webhook/nope', { headers: {}, remoteAddress: '203.0.113.1' }).ok).toBe(false);
    expect(refused).toEqual([expect.objectContaining({ code: 'not_found', peer: '203.0.113.1', forwardedFor: null, signature: null })]);
    expect(handler.preflight('POST', '/webhook/web', { headers: {} }).ok).toBe(true);
    expect(refused).toHaveLength(1);
  });
});

test.each([
  ['/webhook/web', '/webhook/web'],
  [`/webhook/open/${TOKEN}`, '/webhook/open/TTTT…'],
  ['/webhook/a-route-name-of-16', '/webhook/a-ro…'],
  ['/webhook/web?token=secret', '/webhook/web'],
  [`/${'a/'.repeat(150)}`, `/${'a/'.repeat(99)}…`],
])('shownPath(%s) = %s', (path, shown) => {
  expect(shownPath(path)).toBe(shown);
});
