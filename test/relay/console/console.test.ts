/**
 * The console's HTTP core: sign-in, sessions, the API, and every way a request without the token,
 * with a wrong one, or from another origin is refused (nothing shown, nothing changed).
 */
import { readFileSync } from 'node:fs';
import { CONTENT_SECURITY_POLICY, createConsoleCore, isConsolePath } from '../../../src/relay/console/console.js';
import { ADMIN_TOKEN, ORIGIN, consoleHarness, captureLogger } from './support.js';
import { HOSTILE_NAME } from './seed.js';
import { createMemorySource } from './memory-source.js';

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const JSON_TYPE = { 'content-type': 'application/json' };

test.each([
  ['/console', true],
  ['/console/', true],
  ['/console/assets/app.js', true],
  ['/api', true],
  ['/api/deliveries?x=1', true],
  ['/consoles', false],
  ['/apis', false],
  ['/webhook', false],
  ['/', false],
])('isConsolePath(%j) = %s', (path, expected) => {
  expect(isConsolePath(path)).toBe(expected);
});

describe('without RELAY_ADMIN_TOKEN there is no console', () => {
  const core = createConsoleCore({ source: createMemorySource().source, token: null, logger: captureLogger().logger });
  test.each(['/console', '/console/assets/app.js', '/api/deliveries', '/api/session'])('GET %s → 404', async (url) => {
    expect((await core.handle({ method: 'GET', url, headers: {}, body: Buffer.alloc(0) })).status).toBe(404);
  });
  test('a short token is refused outright', () => {
    expect(() => createConsoleCore({ source: createMemorySource().source, token: 'short', logger: captureLogger().logger })).toThrow(/32/);
  });
});

describe('sign-in', () => {
  test('GET /console without a session: the sign-in form and nothing else', async () => {
    const h = consoleHarness();
    const r = await h.call('GET', '/console');
    expect(r.status).toBe(200);
    expect(h.text(r)).toContain('<form method="post" action="/console/login">');
    expect(h.text(r)).not.toContain('/console/assets/app.js');
    expect(h.text(r)).not.toMatch(/login should succeed|acme/);
  });

  test('the right token: a session cookie (HttpOnly, SameSite=Strict), then the page; logged without the token', async () => {
    const h = consoleHarness();
    const r = await h.call('POST', '/console/login', { headers: { origin: ORIGIN, ...FORM }, body: `token=${ADMIN_TOKEN}` });
    expect(r.status).toBe(303);
    expect(r.headers.location).toBe('/console');
    expect(r.headers['set-cookie']).toMatch(/^sauce_relay_console=[^;]+; Max-Age=28800; Path=\/; HttpOnly; SameSite=Strict$/);
    const cookie = r.headers['set-cookie']!.split(';')[0]!;
    const page = await h.call('GET', '/console', { headers: { cookie } });
    expect(h.text(page)).toContain('<script type="module" src="/console/assets/app.js"></script>');
    expect(h.log.records()).toContainEqual(expect.objectContaining({ msg: 'console sign-in', console: expect.objectContaining({ action: 'sign-in' }) }));
    expect(h.log.lines.join('')).not.toContain(ADMIN_TOKEN);
  });

  test('Secure behind an HTTPS proxy', async () => {
    const h = consoleHarness();
    const r = await h.call('POST', '/console/login', { headers: { origin: ORIGIN, 'x-forwarded-proto': 'https', ...FORM }, body: `token=${ADMIN_TOKEN}` });
    expect(r.headers['set-cookie']).toMatch(/; Secure/);
  });

  test.each([
    ['a wrong token', { origin: ORIGIN, ...FORM }, 'token=wrong-token-wrong-token-wrong-token-1234', 401],
    ['the token with one character more', { origin: ORIGIN, ...FORM }, `token=${ADMIN_TOKEN}x`, 401],
    ['no token', { origin: ORIGIN, ...FORM }, '', 401],
    ['the token as JSON', { origin: ORIGIN, ...JSON_TYPE }, JSON.stringify({ token: ADMIN_TOKEN }), 401],
    ['the right token from another origin', { origin: 'https://evil.example', ...FORM }, `token=${ADMIN_TOKEN}`, 403],
    ['the right token without an Origin', { ...FORM }, `token=${ADMIN_TOKEN}`, 403],
  ])('%s: refused, no cookie', async (_name, headers, body, status) => {
    const h = consoleHarness();
    const r = await h.call('POST', '/console/login', { headers, body });
    expect(r.status).toBe(status);
    expect(r.headers['set-cookie']).toBeUndefined();
    if (status === 401) expect(h.text(r)).toContain('That is not the admin token.');
    expect(h.log.records()).toContainEqual(expect.objectContaining({ msg: 'console sign-in refused' }));
  });

  test('a session expires; signing out ends it at once', async () => {
    const h = consoleHarness({ sessionTtlMs: 60_000 });
    const { cookie, csrf } = await h.signIn();
    expect((await h.call('GET', '/api/deliveries', { headers: { cookie } })).status).toBe(200);
    h.memory.clock.now += 60_000;
    expect((await h.call('GET', '/api/deliveries', { headers: { cookie } })).status).toBe(401);

    const second = await h.signIn();
    const out = await h.call('POST', '/console/logout', {
      headers: { cookie: second.cookie, origin: ORIGIN, 'x-csrf-token': second.csrf, ...JSON_TYPE },
      body: '{}',
    });
    expect(out.status).toBe(200);
    expect(out.headers['set-cookie']).toMatch(/^sauce_relay_console=; Max-Age=0/);
    expect((await h.call('GET', '/api/deliveries', { headers: { cookie: second.cookie } })).status).toBe(401);
    expect(csrf).not.toBe(second.csrf);
  });
});

describe('the API shows nothing without the token', () => {
  test.each([
    ['no credentials', {}],
    ['a wrong bearer token', { authorization: 'Bearer wrong-token-wrong-token-wrong-token-1234' }],
    ['the token without Bearer', { authorization: ADMIN_TOKEN }],
    ['a forged cookie', { cookie: 'sauce_relay_console=lz0r1c00.AAAAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }],
    ['a wrong bearer token beside a good cookie', { authorization: 'Bearer nope', cookie: 'set below' }],
  ])('%s: 401 on every endpoint', async (_name, headers) => {
    const h = consoleHarness();
    const auth = { ...headers } as Record<string, string>;
    if (auth.cookie === 'set below') auth.cookie = (await h.signIn()).cookie;
    for (const url of ['/api/session', '/api/deliveries', `/api/deliveries/${h.seeded.passed}`, '/api/changes']) {
      const r = await h.call('GET', url, { headers: auth });
      expect({ url, status: r.status }).toEqual({ url, status: 401 });
      expect(h.json(r)).toEqual({ error: 'unauthorized' });
    }
  });

  test('the bearer token reads the same API', async () => {
    const h = consoleHarness();
    const r = await h.call('GET', '/api/deliveries?limit=3', { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(r.status).toBe(200);
    expect(h.json(r).items).toHaveLength(3);
    expect(h.json(await h.call('GET', '/api/session', { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }))).toMatchObject({ actor: 'bearer', csrf: null });
  });
});

describe('the API', () => {
  test('a page of the list with filters; the next page by cursor; a bad filter says which', async () => {
    const h = consoleHarness();
    const { cookie } = await h.signIn();
    const first = h.json(await h.call('GET', '/api/deliveries?outcome=dead&limit=2', { headers: { cookie } }));
    expect(first.items.map((i: { id: string }) => i.id)).toEqual([h.seeded.hostile, h.seeded.deadMobile2]);
    const second = h.json(await h.call('GET', `/api/deliveries?outcome=dead&limit=2&cursor=${first.next}`, { headers: { cookie } }));
    expect(second).toMatchObject({ items: [{ id: h.seeded.deadMobile }], next: null });
    const empty = await h.call('GET', '/api/deliveries?outcome=&route=&q=', { headers: { cookie } });
    expect(empty.status).toBe(200);
    for (const [query, field] of [
      ['outcome=lost', 'outcome'],
      ['limit=0', 'limit'],
      ['kind=job', 'kind'],
      ['cursor=xyz', 'cursor'],
      ['sort=name', '(query)'],
    ]) {
      const r = await h.call('GET', `/api/deliveries?${query}`, { headers: { cookie } });
      expect({ query, status: r.status }).toEqual({ query, status: 400 });
      expect(h.json(r).issues[0].field).toBe(field);
    }
  });

  test('one delivery; an unknown id is 404', async () => {
    const h = consoleHarness();
    const { cookie } = await h.signIn();
    const d = h.json(await h.call('GET', `/api/deliveries/${h.seeded.hostile}`, { headers: { cookie } }));
    expect(d).toMatchObject({ type: 'event', summary: { event: { name: HOSTILE_NAME } } });
    expect((await h.call('GET', '/api/deliveries/nope', { headers: { cookie } })).status).toBe(404);
    expect((await h.call('GET', '/api/nothing', { headers: { cookie } })).status).toBe(404);
  });

  test('payload text reaches the browser only as JSON, never sniffed as HTML', async () => {
    const h = consoleHarness();
    const { cookie } = await h.signIn();
    const r = await h.call('GET', `/api/deliveries/${h.seeded.hostile}`, { headers: { cookie } });
    expect(r.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(r.headers['x-content-type-options']).toBe('nosniff');
  });

  test('the change marker moves when something changes', async () => {
    const h = consoleHarness();
    const { cookie } = await h.signIn();
    const before = h.json(await h.call('GET', '/api/changes', { headers: { cookie } })).marker;
    h.memory.store.dispatchDue(h.memory.clock.now);
    expect(h.json(await h.call('GET', '/api/changes', { headers: { cookie } })).marker).not.toBe(before);
  });

  test('every answer carries the strict CSP and the other security headers', async () => {
    const h = consoleHarness();
    const { cookie } = await h.signIn();
    for (const [method, url] of [
      ['GET', '/console'],
      ['GET', '/console/assets/app.css'],
      ['GET', '/api/deliveries'],
      ['GET', '/api/nope'],
      ['POST', '/api/deliveries/x/requeue'],
    ]) {
      const r = await h.call(method!, url!, { headers: { cookie } });
      expect(r.headers).toMatchObject({
        'content-security-policy': CONTENT_SECURITY_POLICY,
        'x-content-type-options': 'nosniff',
        'x-frame-options': 'DENY',
        'referrer-policy': 'same-origin',
      });
    }
    expect(CONTENT_SECURITY_POLICY).toBe(
      "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    );
  });

  test('assets: cached by ETag; unknown ones 404', async () => {
    const h = consoleHarness();
    const js = await h.call('GET', '/console/assets/app.js');
    expect(js).toMatchObject({ status: 200, headers: { 'content-type': 'text/javascript; charset=utf-8' } });
    expect((await h.call('GET', '/console/assets/app.js', { headers: { 'if-none-match': js.headers.etag! } })).status).toBe(304);
    expect((await h.call('GET', '/console/assets/../console.ts')).status).toBe(404);
    expect((await h.call('GET', '/console/assets/index.html')).status).toBe(404);
  });
});

describe('actions: only from the console page (same origin, CSRF token, JSON), each logged with who and what', () => {
  test('requeue a dead event', async () => {
    const h = consoleHarness();
    const { cookie, csrf } = await h.signIn();
    const r = await h.call('POST', `/api/deliveries/${h.seeded.deadMobile}/requeue`, {
      headers: { cookie, origin: ORIGIN, 'x-csrf-token': csrf, ...JSON_TYPE },
      body: '{}',
    });
    expect(r.status).toBe(200);
    expect(h.json(r)).toEqual({ ok: true, count: 1 });
    expect(h.memory.store.events.get(h.seeded.deadMobile)?.state).toBe('pending');
    const logged = h.log.records().find((l) => l.msg === 'console action');
    expect(logged).toMatchObject({
      console: { actor: expect.stringMatching(/^session:.{8}$/), action: 'requeue', id: h.seeded.deadMobile, result: 'ok', count: 1 },
    });
  });

  test('requeue all dead events of a route, send a delivered one again; with the bearer token too', async () => {
    const h = consoleHarness();
    const { cookie, csrf } = await h.signIn();
    const page = { cookie, origin: ORIGIN, 'x-csrf-token': csrf, ...JSON_TYPE };
    expect(h.json(await h.call('POST', '/api/routes/mobile/requeue', { headers: page, body: '{}' }))).toEqual({ ok: true, count: 2 });
    expect((await h.call('POST', '/api/routes/unknown/requeue', { headers: page, body: '{}' })).status).toBe(404);
    const resent = await h.call('POST', `/api/deliveries/${h.seeded.passed}/resend`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(h.json(resent)).toEqual({ ok: true, count: 1 });
    const wrong = await h.call('POST', `/api/deliveries/${h.seeded.hostile}/resend`, { headers: page, body: '{}' });
    expect(wrong.status).toBe(409);
    expect(h.json(wrong)).toMatchObject({ ok: false, code: 'not_delivered' });
    expect(
      h.log
        .records()
        .filter((l) => l.msg === 'console action')
        .map((l) => (l.console as { action: string; actor: string }).action),
    ).toEqual(['requeue-route', 'resend', 'resend']);
    expect(h.log.records().find((l) => (l.console as { action?: string })?.action === 'resend')).toMatchObject({ console: { actor: 'bearer' } });
  });

  test.each([
    ['no CSRF token', () => ({ origin: ORIGIN, ...JSON_TYPE }), 'csrf_token'],
    ['a wrong CSRF token', () => ({ origin: ORIGIN, 'x-csrf-token': 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', ...JSON_TYPE }), 'csrf_token'],
    ['another origin', (c: { csrf: string }) => ({ origin: 'https://evil.example', 'x-csrf-token': c.csrf, ...JSON_TYPE }), 'other_origin'],
    ['no Origin', (c: { csrf: string }) => ({ 'x-csrf-token': c.csrf, ...JSON_TYPE }), 'no_origin'],
    [
      'a cross-site fetch',
      (c: { csrf: string }) => ({ origin: ORIGIN, 'sec-fetch-site': 'cross-site', 'x-csrf-token': c.csrf, ...JSON_TYPE }),
      'cross_site_fetch',
    ],
    ['a form post (text/plain)', (c: { csrf: string }) => ({ origin: ORIGIN, 'x-csrf-token': c.csrf, 'content-type': 'text/plain' }), 'content_type'],
  ])('refused with the session cookie but %s: 403, nothing changes', async (_name, extra, code) => {
    const h = consoleHarness();
    const c = await h.signIn();
    const before = await h.memory.source.marker();
    for (const url of [
      `/api/deliveries/${h.seeded.deadMobile}/requeue`,
      `/api/deliveries/${h.seeded.passed}/resend`,
      '/api/routes/mobile/requeue',
      '/console/logout',
    ]) {
      const r = await h.call('POST', url, { headers: { cookie: c.cookie, ...extra(c) }, body: '{}' });
      expect({ url, status: r.status, code: h.json(r).code }).toEqual({ url, status: 403, code });
    }
    expect(await h.memory.source.marker()).toBe(before);
    expect(h.memory.store.events.get(h.seeded.deadMobile)?.state).toBe('dead');
    expect((await h.call('GET', '/api/deliveries', { headers: { cookie: c.cookie } })).status).toBe(200);
    expect(h.log.records().filter((l) => l.msg === 'console request refused')).toHaveLength(4);
  });

  test('GET on an action and POST on a read are 405', async () => {
    const h = consoleHarness();
    const { cookie } = await h.signIn();
    expect((await h.call('GET', `/api/deliveries/${h.seeded.deadMobile}/requeue`, { headers: { cookie } })).status).toBe(405);
    expect((await h.call('POST', '/api/deliveries', { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).status).toBe(405);
  });
});

test('the page builds its DOM from text only: no HTML parsing API in its script', () => {
  const script = readFileSync(new URL('../../../src/relay/console/assets/app.js', import.meta.url), 'utf8').replace(/^\/\/.*$/gm, '');
  expect(script).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|DOMParser|createContextualFragment|\beval\(|new Function/);
  expect(script).toContain('textContent');
});
