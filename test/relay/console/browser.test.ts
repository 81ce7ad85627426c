/**
 * The console in a real browser (Debian's chromium via playwright-core): sign in, see the
 * deliveries, filter them, open one, requeue a dead letter and watch it become dispatched; a job
 * named like HTML shows as text and runs nothing; without the token, with a wrong one, and from
 * another origin nothing is shown and nothing changes. Screenshots of the list, a delivery, dark
 * mode and a phone-sized window go to test-artifacts/console/.
 *
 * Phase 1: the data comes from the in-memory source (test/relay/console/memory-source.ts).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { createConsole } from '../../../src/relay/console/console.js';
import { type Browser, artifactsDir, browserAvailable, launchBrowser, skipLine, watchPage } from '../../support/browser.js';
import { createMemorySource } from './memory-source.js';
import { HOSTILE_BUILD, HOSTILE_NAME, seed, type Seeded } from './seed.js';
import { ADMIN_TOKEN, captureLogger } from './support.js';

if (!browserAvailable()) console.log(skipLine('console browser tests'));

function listen(server: http.Server): Promise<string> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)));
}

(browserAvailable() ? describe : describe.skip)('the console in chromium', () => {
  const memory = createMemorySource({ now: Date.now() });
  const seeded: Seeded = seed(memory);
  const log = captureLogger();
  const handler = createConsole({ source: memory.source, token: ADMIN_TOKEN, logger: log.logger, routes: ['web', 'mobile'], pollMs: 300 });
  const server = http.createServer((req, res) => {
    if (!handler(req, res)) {
      res.writeHead(404).end();
    }
  });
  /** Another origin (same host, another port): a page that tries to read and act with the console's cookie. */
  const attacker = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' }).end(`<!doctype html><title>elsewhere</title><iframe name="sink"></iframe>`);
  });
  let url: string;
  let attackerUrl: string;
  let browser: Browser;
  let shots: string;

  beforeAll(async () => {
    url = await listen(server);
    attackerUrl = await listen(attacker);
    browser = await launchBrowser();
    shots = artifactsDir('console');
    console.log(`console screenshots: ${shots}`);
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    server.closeAllConnections();
    attacker.closeAllConnections();
    await new Promise((r) => server.close(r));
    await new Promise((r) => attacker.close(r));
  });

  const rows = (page: Page) => page.locator('#deliveries tbody tr');
  const shot = (page: Page, name: string, fullPage = true) => page.screenshot({ path: join(shots, `${name}.png`), fullPage });

  /** Resolves with the value once `ok` holds, or with the last value after `ms` (the assertion after it then fails). */
  async function eventually<T>(read: () => Promise<T>, ok: (value: T) => boolean, ms = 20_000): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const value = await read();
      if (ok(value) || Date.now() > deadline) return value;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const count = (page: Page, n: number) =>
    eventually(
      () => rows(page).count(),
      (c) => c === n,
    );

  async function signIn(page: Page, token = ADMIN_TOKEN): Promise<void> {
    await browser.context.clearCookies();
    await page.goto(`${url}/console`);
    await page.fill('#token', token);
    await Promise.all([page.waitForLoadState('domcontentloaded'), page.click('button[type=submit]')]);
  }

  test('without the token or with a wrong one: the sign-in form and no data', async () => {
    const page = await browser.newPage();
    const watch = watchPage(page);
    await page.goto(`${url}/console`);
    await page.locator('#token').waitFor();
    expect(await page.locator('#deliveries').count()).toBe(0);
    const api = await page.evaluate(async () => (await fetch('/api/deliveries')).status);
    expect(api).toBe(401);
    await signIn(page, 'wrong-token-wrong-token-wrong-token-1234');
    await page.locator('[data-show="failed"]').waitFor({ state: 'visible' });
    expect(await page.locator('#deliveries').count()).toBe(0);
    expect(await page.content()).not.toContain('login should succeed');
    await shot(page, 'sign-in-refused');
    expect(watch.errors).toEqual([]);
    await page.close();
  });

  test('sign in, see the deliveries, filter them, open one, requeue a dead letter and watch it become dispatched', async () => {
    const page = await browser.newPage();
    const watch = watchPage(page);
    await signIn(page);
    const total = memory.store.events.size + memory.store.requests.length;
    expect(await count(page, total)).toBe(total);
    await page.locator('#live.on').waitFor();
    // Newest first: the duplicate came last.
    expect(await rows(page).first().getAttribute('data-id')).toBe(seeded.duplicate);
    await shot(page, 'list');
    // The README's picture (docs/console.png is a copy of it): the first screenful.
    await page.screenshot({ path: join(shots, 'readme.png'), clip: { x: 0, y: 0, width: 1280, height: 720 } });

    await page.selectOption('select[name=outcome]', 'dead');
    expect(await count(page, 3)).toBe(3);
    await page.fill('input[name=q]', 'checkout');
    expect(await count(page, 2)).toBe(2);
    await page.selectOption('select[name=route]', 'mobile');
    await page.locator('#requeue-route').waitFor({ state: 'visible' });
    expect(await page.locator('#requeue-route').textContent()).toBe('Requeue all dead events of route mobile');
    expect(page.url()).toContain('outcome=dead');

    await page.click(`#deliveries tr[data-id="${seeded.deadMobile}"] td.name a`);
    const detail = page.locator('#detail-view');
    await detail.locator('h1').waitFor();
    expect(await detail.locator('h1').textContent()).toBe('test_checkout_payment_declined');
    expect(
      await eventually(
        () => detail.locator('table.plain').first().textContent(),
        (t) => t?.includes('404') ?? false,
      ),
    ).toContain('404');
    expect(await detail.locator('table.plain').first().textContent()).toContain('Not Found');
    const body = await detail.locator('pre.body').textContent();
    expect(JSON.parse(body!)).toMatchObject({ name: 'test_checkout_payment_declined', data_type: 'rdc' });
    expect(body).toContain('\n  "status": "FAILED"');
    await shot(page, 'detail-dead');

    await detail.locator('button[data-action=requeue]').click();
    await page.locator('#confirm').waitFor({ state: 'visible' });
    expect(await page.locator('#confirm-title').textContent()).toBe('Requeue this event?');
    await page.click('#confirm-ok');
    await detail.locator('.detail-head .badge', { hasText: 'stored' }).waitFor();
    expect(memory.store.events.get(seeded.deadMobile)?.state).toBe('pending');
    expect(log.records()).toContainEqual(
      expect.objectContaining({ msg: 'console action', console: expect.objectContaining({ action: 'requeue', id: seeded.deadMobile, result: 'ok' }) }),
    );

    // The dispatcher sends it; the page notices by itself.
    memory.store.dispatchDue(Date.now());
    await detail.locator('.detail-head .badge', { hasText: 'dispatched' }).waitFor({ timeout: 20_000 });
    expect(await detail.locator('table.plain').first().textContent()).toContain('204');
    await shot(page, 'detail-dispatched');

    // Back to the list, filters kept.
    await detail.locator('a.back').click();
    expect(await count(page, 1)).toBe(1);
    expect(watch).toEqual({ errors: [], dialogs: [], cspViolations: [] });
    await page.close();
  }, 120_000);

  test('a job named like HTML shows as text; no script of a payload runs', async () => {
    const page = await browser.newPage();
    const watch = watchPage(page);
    await signIn(page);
    const name = page.locator(`#deliveries tr[data-id="${seeded.hostile}"] td.name a`);
    await name.waitFor();
    expect(await name.textContent()).toBe(HOSTILE_NAME);
    expect(await page.locator(`#deliveries tr[data-id="${seeded.hostile}"] td.name .sub`).textContent()).toBe(HOSTILE_BUILD);
    await name.click();
    const detail = page.locator('#detail-view');
    await detail.locator('h1', { hasText: HOSTILE_NAME }).waitFor();
    expect(await detail.locator('table.plain').first().textContent()).toContain('Invalid request. <img src=x onerror=alert(3)>');
    expect(await detail.locator('pre.body').textContent()).toContain(HOSTILE_BUILD.replace(/"/g, '\\"'));
    expect(await page.evaluate('typeof window.__pwned')).toBe('undefined');
    expect(await page.locator('img[src="x"], script:not([src]), b').count()).toBe(0);
    await shot(page, 'hostile-name');
    expect(watch).toEqual({ errors: [], dialogs: [], cspViolations: [] });
    await page.close();
  }, 60_000);

  test('dark mode and a phone-sized window', async () => {
    const page = await browser.newPage();
    const watch = watchPage(page);
    await signIn(page);
    await page.emulateMedia({ colorScheme: 'dark' });
    await rows(page).first().waitFor();
    const dark = await page.evaluate('getComputedStyle(document.body).backgroundColor');
    expect(dark).toBe('rgb(15, 18, 22)');
    await shot(page, 'list-dark');
    await page.click(`#deliveries tr[data-id="${seeded.visual}"] td.name a`);
    await page.locator('#detail-view h2', { hasText: 'Visual refresh' }).waitFor();
    await shot(page, 'detail-visual-dark');

    await page.emulateMedia({ colorScheme: 'light' });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${url}/console#/`);
    await rows(page).first().waitFor();
    expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
    // Each cell is labelled on a phone (the table's header is hidden).
    expect(await page.locator('#deliveries thead').isVisible()).toBe(false);
    await shot(page, 'list-phone', false);
    await page.click(`#deliveries tr[data-id="${seeded.retrying}"] td.name a`);
    await page.locator('#detail-view h1').waitFor();
    expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
    await shot(page, 'detail-phone');
    expect(watch).toEqual({ errors: [], dialogs: [], cspViolations: [] });
    await page.close();
  }, 90_000);

  test('from another origin, with the session cookie in the browser: nothing is read and nothing changes', async () => {
    const page = await browser.newPage();
    await signIn(page);
    await rows(page).first().waitFor();
    const before = await memory.source.marker();
    const target = `${url}/api/deliveries/${seeded.deadMobile2}/requeue`;
    await page.goto(attackerUrl);
    // In the attacker's page (a string: the tests are type-checked without the DOM library).
    const tries = await page.evaluate(`(async () => {
      const read = await fetch(${JSON.stringify(`${url}/api/deliveries`)}, { credentials: 'include' }).then((r) => 'read ' + r.status, () => 'read blocked');
      await fetch(${JSON.stringify(target)}, { method: 'POST', mode: 'no-cors', credentials: 'include', headers: { 'content-type': 'text/plain' }, body: '{}' }).catch(() => null);
      const form = document.createElement('form');
      form.method = 'POST';
      form.action = ${JSON.stringify(target)};
      form.target = 'sink';
      document.body.append(form);
      form.submit();
      await new Promise((r) => setTimeout(r, 500));
      return read;
    })()`);
    expect(tries).toBe('read blocked');
    const refused = () => Promise.resolve(log.records().filter((l) => l.msg === 'console request refused').length);
    expect(await eventually(refused, (n) => n >= 2)).toBeGreaterThanOrEqual(2);
    expect(memory.store.events.get(seeded.deadMobile2)?.state).toBe('dead');
    expect(await memory.source.marker()).toBe(before);
    await page.close();
  }, 60_000);
});
