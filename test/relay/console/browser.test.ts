/**
 * The console in a real browser (Debian's chromium via playwright-core) against a real relay
 * process (`node lib/relay/cli.js serve`, as users run it) with the admin token, GitHub's API
 * double and Sauce's: the Sauce fixtures are fed to it signed, with refused requests beside them;
 * GitHub refuses the dispatches of one repository at first, so its events are dead letters.
 *
 * Sign in, see the deliveries, filter them, open one (body, commit, attempts with GitHub's status
 * code), requeue a dead letter once GitHub accepts again and watch it become dispatched; a job
 * named like HTML shows as text and runs nothing; a Visual build shows its refresh history;
 * without the token, with a wrong one, and from another origin nothing is shown and nothing
 * changes. Screenshots of the list, a delivery, dark mode and a phone-sized window go to
 * test-artifacts/console/ (readme.png is the README's docs/console.png).
 */
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { signBody } from '../../../src/relay/http/signature.js';
import { type Browser, artifactsDir, browserAvailable, launchBrowser, skipLine, watchPage } from '../../support/browser.js';
import { startGitHubDouble, type GitHubDouble } from '../../support/github-double.js';
import { buildWithDiffs, startSauceApiDouble, type SauceApiDouble } from '../../support/sauce-api-double.js';
import { sauceFixture, sauceFixtureNames, waitFor } from '../support/common.js';
import { ensureBuilt, postSigned, request, startRelayProcess, tempDir, type RelayProcess } from '../support/process.js';
import { HOSTILE_BUILD, HOSTILE_NAME } from './seed.js';
import { ADMIN_TOKEN } from './support.js';

if (!browserAvailable()) console.log(skipLine('console browser tests'));

const WEB_SECRET = 'console-browser-web-secret-01';
const MOBILE_SECRET = 'console-browser-mobile-secret-02';
const DISPATCH = 'POST /repos/{owner}/{repo}/dispatches';
const SAUCE = { username: 'ci-reader', accessKey: 'sauce-access-key-console-test' };
const VISUAL_BUILD = 'fd54fb6f-83b7-4c0b-af8d-da2b191c0a3b';
/** In a job's name: GitHub answers its dispatches 502, so it stays "retrying". */
const FLAKY = 'flaky: checkout retries';
const HOSTILE_MESSAGE = 'Invalid request. <img src=x onerror=alert(3)>';

function listen(server: http.Server): Promise<string> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)));
}

function patched(name: string, changes: Record<string, unknown>): Buffer {
  return Buffer.from(JSON.stringify({ ...(JSON.parse(sauceFixture(name).toString('utf8')) as object), ...changes }));
}

interface Item {
  id: string;
  type: 'event' | 'request';
  receivedAt: number;
  route: string | null;
  event: { name: string | null; status: string; kind: string } | null;
  outcome: { state: string; code?: string; status?: number };
}

(browserAvailable() ? describe : describe.skip)('the console in chromium, against a relay process', () => {
  let github: GitHubDouble;
  let sauce: SauceApiDouble;
  let relay: RelayProcess;
  let browser: Browser;
  let shots: string;
  let attackerUrl: string;
  /** While true, GitHub answers acme/mobile's dispatches 404 Not Found. */
  let mobileRefused = true;
  const ids = { deadMobile: '', deadMobile2: '', hostile: '', flaky: '', visual: '' };
  /** Another origin (same host, another port): a page that tries to read and act with the console's cookie. */
  const attacker = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' }).end(`<!doctype html><title>elsewhere</title><iframe name="sink"></iframe>`);
  });

  const url = () => relay.url;
  const send = async (route: 'web' | 'mobile', body: Buffer, sig: string | null = signBody(route === 'web' ? WEB_SECRET : MOBILE_SECRET, body)) =>
    postSigned(`${url()}/webhook/${route}`, body, sig);
  const storedId = async (route: 'web' | 'mobile', body: Buffer): Promise<string> => {
    const answer = await send(route, body);
    expect(answer.status).toBe(202);
    return (JSON.parse(answer.body) as { id: string }).id;
  };
  // biome-ignore lint/suspicious/noExplicitAny: the tests read the JSON API's answers field by field
  const api = async (path: string): Promise<any> =>
    JSON.parse((await request(`${url()}${path}`, { method: 'GET', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).body);
  const list = async (query = ''): Promise<Item[]> => (await api(`/api/deliveries?limit=200${query}`)).items;
  const stateOf = async (id: string): Promise<string> => (await api(`/api/deliveries/${id}`)).summary.outcome.state;

  beforeAll(async () => {
    ensureBuilt();
    github = await startGitHubDouble();
    github.setInterceptor((q) => {
      if (q.route !== DISPATCH) return undefined;
      const text = JSON.stringify(q.body);
      if (text.includes('flaky')) return { status: 502, body: { message: 'Bad Gateway' } };
      if (text.includes('__pwned')) return { status: 422, body: { message: HOSTILE_MESSAGE } };
      if (mobileRefused && q.path.includes('/acme/mobile/')) return { status: 404, body: { message: 'Not Found' } };
      return undefined;
    });
    sauce = await startSauceApiDouble(SAUCE);
    // A reviewer approved the build in Sauce: the relay's first re-read finds it changed.
    sauce.setBuild(VISUAL_BUILD, buildWithDiffs('APPROVED', { APPROVED: 3, EQUAL: 41 }, 7));
    const dataDir = tempDir();
    const config = join(dataDir, 'relay.yaml');
    writeFileSync(
      config,
      [
        'group_window: 300ms',
        'routes:',
        '  - name: web',
        '    secrets: ["${WEB_SECRET}"]',
        '    repo: acme/web',
        '  - name: mobile',
        '    secrets: ["${MOBILE_SECRET}"]',
        '    repo: acme/mobile',
        '    filters:',
        '      failed_only: true',
        '',
      ].join('\n'),
    );
    relay = await startRelayProcess({
      dataDir,
      env: {
        RELAY_CONFIG: config,
        WEB_SECRET,
        MOBILE_SECRET,
        RELAY_ADMIN_TOKEN: ADMIN_TOKEN,
        GITHUB_TOKEN: 'ghs_console_browser_test',
        GITHUB_API_URL: github.url,
        SAUCE_USERNAME: SAUCE.username,
        SAUCE_ACCESS_KEY: SAUCE.accessKey,
        SAUCE_API_URL: sauce.url,
        RELAY_VISUAL_REFRESH_INTERVAL: '1s',
      },
    });

    // Every fixture, signed, on the web route (the recorded bodies' times are old: the test relay's stale limit is ten years).
    for (const name of sauceFixtureNames()) {
      const id = await storedId('web', sauceFixture(name));
      if (name === 'visual-unapproved.json') ids.visual = id;
    }
    // The same body again: a duplicate.
    expect((await send('web', sauceFixture('job-vdc-passed.json'))).status).toBe(200);
    // A passing job on the failures-only route: filtered.
    expect((await send('mobile', sauceFixture('job-vdc-passed.json'))).status).toBe(202);
    // Two failures for acme/mobile, which GitHub refuses (404): dead letters.
    ids.deadMobile = await storedId('mobile', sauceFixture('job-rdc-failed-tags.json'));
    ids.deadMobile2 = await storedId(
      'mobile',
      patched('job-rdc-failed-tags.json', { id: 'a0c1e2f3a4b5c6d7e8f9a0b1c2d3e4f5', name: 'test_checkout_payment_retry' }),
    );
    await waitFor(async () => (await stateOf(ids.deadMobile2)) === 'dead', 20_000, 'the mobile events dead-lettered');
    // A job named like HTML, refused by GitHub with a message like HTML.
    ids.hostile = await storedId(
      'mobile',
      patched('job-vdc-failed-boolean.json', { id: 'ffeeddccbbaa99887766554433221100', name: HOSTILE_NAME, build: HOSTILE_BUILD }),
    );
    await waitFor(async () => (await stateOf(ids.hostile)) === 'dead', 20_000, 'the hostile event dead-lettered');
    // Refused requests: a wrong signature, not JSON, not a Sauce event, no such route.
    expect((await send('web', sauceFixture('job-vdc-errored.json'), signBody('not-the-secret', sauceFixture('job-vdc-errored.json')))).status).toBe(401);
    expect((await send('web', Buffer.from('{"id": "half a body'))).status).toBe(400);
    expect((await send('mobile', Buffer.from('{"id":"x","data_type":"vdc"}'))).status).toBe(422);
    expect((await postSigned(`${url()}/webhook/typo`, sauceFixture('job-vdc-passed.json'), null)).status).toBe(404);
    // The Visual build's refreshed event, then every web event dispatched.
    await waitFor(
      async () => ((await api(`/api/deliveries/${ids.visual}`)).visual as { eventId: string | null }[]).some((v) => v.eventId !== null),
      30_000,
      'the Visual build re-read and its new event stored',
    );
    await waitFor(async () => (await list('&route=web&outcome=stored')).length === 0, 30_000, 'the web events dispatched');
    // Last, a job whose dispatches GitHub keeps failing: retrying.
    ids.flaky = await storedId('web', patched('job-vdc-failed-boolean.json', { id: '0123456789abcdef0123456789abcdef', name: FLAKY }));
    await waitFor(async () => (await stateOf(ids.flaky)) === 'retrying', 20_000, 'the flaky event retrying');
    // Refused requests are written once a second: wait for them.
    await waitFor(async () => (await list('&outcome=refused')).length === 4, 10_000, 'the refused requests recorded');

    attackerUrl = await listen(attacker);
    browser = await launchBrowser();
    shots = artifactsDir('console');
    console.log(`console screenshots: ${shots}`);
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await relay?.kill('SIGKILL');
    await github?.close();
    await sauce?.close();
    attacker.closeAllConnections();
    await new Promise((r) => attacker.close(r));
  });

  afterEach(() => {
    expect(github.violations).toEqual([]);
    expect(sauce.violations).toEqual([]);
  });

  const rows = (page: Page) => page.locator('#deliveries tbody tr');
  const shot = (page: Page, name: string, fullPage = true) => page.screenshot({ path: join(shots, `${name}.png`), fullPage });
  const logged = (msg: string) => relay.logs().filter((l) => l.msg === msg) as unknown as { console: Record<string, unknown> }[];

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
    await page.goto(`${url()}/console`);
    await page.fill('#token', token);
    await Promise.all([page.waitForLoadState('domcontentloaded'), page.click('button[type=submit]')]);
  }

  test('without the token or with a wrong one: the sign-in form and no data', async () => {
    const page = await browser.newPage();
    const watch = watchPage(page);
    await page.goto(`${url()}/console`);
    await page.locator('#token').waitFor();
    expect(await page.locator('#deliveries').count()).toBe(0);
    const read = await page.evaluate(async () => (await fetch('/api/deliveries')).status);
    expect(read).toBe(401);
    const act = await page.evaluate(
      async (id) => (await fetch(`/api/deliveries/${id}/requeue`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status,
      ids.deadMobile2,
    );
    expect(act).toBe(401);
    await signIn(page, 'wrong-token-wrong-token-wrong-token-1234');
    await page.locator('[data-show="failed"]').waitFor({ state: 'visible' });
    expect(await page.locator('#deliveries').count()).toBe(0);
    await shot(page, 'sign-in-refused');
    expect(watch.errors).toEqual([]);
    expect(await stateOf(ids.deadMobile2)).toBe('dead');
    await page.close();
  });

  test('sign in, see the deliveries, filter them, open one, requeue a dead letter and watch it become dispatched', async () => {
    const page = await browser.newPage();
    const watch = watchPage(page);
    await signIn(page);
    const everything = await list();
    expect(everything.length).toBeLessThanOrEqual(50);
    expect(await count(page, everything.length)).toBe(everything.length);
    await page.locator('#live.on').waitFor();
    // Newest first: the flaky job came last; every kind of outcome is there.
    expect(await rows(page).first().getAttribute('data-id')).toBe(ids.flaky);
    const outcomes = await rows(page).evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-outcome')));
    expect(outcomes).toEqual(expect.arrayContaining(['retrying', 'dispatched', 'dead', 'duplicate', 'filtered', 'refused']));
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

    await page.click(`#deliveries tr[data-id="${ids.deadMobile}"] td.name a`);
    const detail = page.locator('#detail-view');
    await detail.locator('h1').waitFor();
    expect(await detail.locator('h1').textContent()).toBe('test_checkout_payment_declined');
    // GitHub's answer to the dispatch, as it came.
    const attempts = detail.locator('section', { hasText: 'Dispatch attempts' }).locator('tbody tr');
    expect(await attempts.count()).toBe(1);
    expect(await attempts.first().locator('td').allTextContents()).toEqual([
      expect.any(String),
      expect.stringMatching(/^d-[0-9a-f]{12}$/),
      // The two events of acme/mobile, in one dispatch or two.
      expect.stringMatching(/^[12]$/),
      '404',
      'Not Found',
      'fatal not_found',
    ]);
    // The commit it maps to: the short SHA of saucectl's ci:ssha tag.
    expect(await detail.locator('ol.commits li').first().textContent()).toBe('9fceb02 (short-sha, from tag ci:ssha)');
    const body = await detail.locator('pre.body').textContent();
    expect(JSON.parse(body!)).toEqual(JSON.parse(sauceFixture('job-rdc-failed-tags.json').toString('utf8')));
    expect(body).toContain('\n  "status": "FAILED"');
    await shot(page, 'detail-dead');

    // GitHub accepts acme/mobile again; requeue, confirmed, and the relay sends it at once.
    mobileRefused = false;
    await detail.locator('button[data-action=requeue]').click();
    await page.locator('#confirm').waitFor({ state: 'visible' });
    expect(await page.locator('#confirm-title').textContent()).toBe('Requeue this event?');
    await page.click('#confirm-ok');
    await detail.locator('.detail-head .badge', { hasText: 'dispatched' }).waitFor({ timeout: 30_000 });
    expect(await attempts.count()).toBe(2);
    expect(await attempts.nth(1).locator('td').nth(3).textContent()).toBe('204');
    expect(await attempts.nth(1).locator('td').nth(4).textContent()).toBe('accepted');
    expect(await stateOf(ids.deadMobile)).toBe('dispatched');
    expect(logged('console action')).toContainEqual(
      expect.objectContaining({
        console: expect.objectContaining({ action: 'requeue', id: ids.deadMobile, result: 'ok', actor: expect.stringMatching(/^session:/) }),
      }),
    );
    await shot(page, 'detail-dispatched');

    // Back to the list, filters kept: the other dead letter of the route.
    await detail.locator('a.back').click();
    expect(await count(page, 1)).toBe(1);
    expect(await rows(page).first().getAttribute('data-id')).toBe(ids.deadMobile2);
    expect(watch).toEqual({ errors: [], dialogs: [], cspViolations: [] });
    await page.close();
  }, 120_000);

  test('a job named like HTML shows as text; no script of a payload runs', async () => {
    const page = await browser.newPage();
    const watch = watchPage(page);
    await signIn(page);
    const name = page.locator(`#deliveries tr[data-id="${ids.hostile}"] td.name a`);
    await name.waitFor();
    expect(await name.textContent()).toBe(HOSTILE_NAME);
    expect(await page.locator(`#deliveries tr[data-id="${ids.hostile}"] td.name .sub`).textContent()).toBe(HOSTILE_BUILD);
    await name.click();
    const detail = page.locator('#detail-view');
    await detail.locator('h1', { hasText: HOSTILE_NAME }).waitFor();
    expect(await detail.locator('section', { hasText: 'Dispatch attempts' }).locator('tbody').textContent()).toContain(HOSTILE_MESSAGE);
    expect(await detail.locator('pre.body').textContent()).toContain(HOSTILE_BUILD.replace(/"/g, '\\"'));
    expect(await page.evaluate('typeof window.__pwned')).toBe('undefined');
    expect(await page.locator('img[src="x"], script:not([src]), b').count()).toBe(0);
    await shot(page, 'hostile-name');
    expect(watch).toEqual({ errors: [], dialogs: [], cspViolations: [] });
    await page.close();
  }, 60_000);

  test('dark mode, a Visual build’s refresh history, a refused request, and a phone-sized window', async () => {
    const page = await browser.newPage();
    const watch = watchPage(page);
    await signIn(page);
    await page.emulateMedia({ colorScheme: 'dark' });
    await rows(page).first().waitFor();
    const dark = await page.evaluate('getComputedStyle(document.body).backgroundColor');
    expect(dark).toBe('rgb(15, 18, 22)');
    await shot(page, 'list-dark');
    await page.click(`#deliveries tr[data-id="${ids.visual}"] td.name a`);
    const history = page.locator('#detail-view section', { hasText: 'Visual refresh' });
    await history.waitFor();
    expect(await history.locator('tbody').textContent()).toContain('APPROVED');
    await shot(page, 'detail-visual-dark');

    const refused = (await list('&outcome=refused')).find((i) => i.outcome.code === 'signature')!;
    await page.goto(`${url()}/console#/d/${encodeURIComponent(refused.id)}`);
    await page.locator('#detail-view h1', { hasText: 'refused request' }).waitFor();
    const facts = await page.locator('#detail-view dl.facts').textContent();
    expect(facts).toContain('401 signature');
    expect(facts).toMatch(/Signature[0-9a-f]{8}…/);
    await shot(page, 'detail-refused-dark');

    await page.emulateMedia({ colorScheme: 'light' });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${url()}/console#/`);
    await rows(page).first().waitFor();
    expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
    // Each cell is labelled on a phone (the table's header is hidden).
    expect(await page.locator('#deliveries thead').isVisible()).toBe(false);
    await shot(page, 'list-phone', false);
    await page.click(`#deliveries tr[data-id="${ids.flaky}"] td.name a`);
    await page.locator('#detail-view h1').waitFor();
    expect(await page.locator('#detail-view .detail-head .badge').textContent()).toBe('retrying');
    expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
    await shot(page, 'detail-phone');
    expect(watch).toEqual({ errors: [], dialogs: [], cspViolations: [] });
    await page.close();
  }, 90_000);

  test('from another origin, with the session cookie in the browser: nothing is read and nothing changes', async () => {
    const page = await browser.newPage();
    await signIn(page);
    await rows(page).first().waitFor();
    const refusedBefore = logged('console request refused').length;
    const target = `${url()}/api/deliveries/${ids.deadMobile2}/requeue`;
    await page.goto(attackerUrl);
    // In the attacker's page (a string: the tests are type-checked without the DOM library).
    const tries = await page.evaluate(`(async () => {
      const read = await fetch(${JSON.stringify(`${url()}/api/deliveries`)}, { credentials: 'include' }).then((r) => 'read ' + r.status, () => 'read blocked');
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
    const refused = () => Promise.resolve(logged('console request refused').length - refusedBefore);
    expect(await eventually(refused, (n) => n >= 2)).toBeGreaterThanOrEqual(2);
    expect(await stateOf(ids.deadMobile2)).toBe('dead');
    expect(logged('console action').filter((l) => l.console.id === ids.deadMobile2)).toEqual([]);
    await page.close();
  }, 60_000);
});
