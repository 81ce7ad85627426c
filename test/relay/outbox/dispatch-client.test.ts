import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:net';
import { Writable } from 'node:stream';
import { createDispatchClient as createClient, outcomeFromError, type DispatchClientOptions } from '../../../src/relay/outbox/dispatch-client.js';
import { createLogger } from '../../../src/relay/logger.js';
import { startGitHubDouble, type GitHubDouble } from '../../support/github-double.js';

const DISPATCH = 'POST /repos/{owner}/{repo}/dispatches';
const TOKEN = 'ghp_supersecrettoken1234567890';
const payload = { version: 1, events: [{ payload: { id: 'job-1', status: 'PASSED' }, id: 'e1', received_at: '2026-01-01T00:00:00.000Z', route: 'default' }] };

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      cb();
    },
  });
  return { logger: createLogger({ level: 'debug', destination }), lines, text: () => lines.join('\n') };
}

let gh: GitHubDouble;

/** No pacing unless a test asks for it: most tests send several dispatches in a row. */
const createDispatchClient = (o: DispatchClientOptions) => createClient({ writeSpacingMs: 0, ...o });

beforeAll(async () => {
  gh = await startGitHubDouble();
});
afterAll(async () => {
  await gh.close();
});
afterEach(() => {
  expect(gh.violations).toEqual([]);
  gh.reset();
});

describe('token auth', () => {
  it('sends repository_dispatch with the payload and the token', async () => {
    const log = capture();
    const client = createDispatchClient({ token: TOKEN, apiUrl: gh.url, logger: log.logger });
    expect(client.dryRun).toBe(false);
    expect(await client.dispatch('acme/shop', 'saucelabs', payload)).toEqual({ kind: 'sent', status: 204 });
    expect(gh.dispatches('acme/shop')).toEqual([{ event_type: 'saucelabs', client_payload: payload }]);
    const [req] = gh.requests;
    expect(req?.headers.authorization).toBe(`token ${TOKEN}`);
    expect(log.text()).not.toContain(TOKEN);
  });

  it('maps GitHub answers to outcomes', async () => {
    const client = createDispatchClient({ token: TOKEN, apiUrl: gh.url, logger: capture().logger });
    const reset = String(Math.floor(Date.now() / 1000) + 30);
    gh.failNext(DISPATCH, [
      { status: 503, body: { message: 'Service Unavailable' } },
      { status: 429, headers: { 'retry-after': '2' }, body: { message: 'Too many requests' } },
      { status: 403, headers: { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': reset }, body: { message: 'API rate limit exceeded' } },
      { status: 403, headers: { 'x-ratelimit-remaining': '4000' }, body: { message: 'You have exceeded a secondary rate limit' } },
      { status: 401, body: { message: 'Bad credentials' } },
      { status: 404, body: { message: 'Not Found' } },
      { status: 422, body: { message: 'Validation Failed' } },
    ]);
    const outcomes = [];
    for (let i = 0; i < 7; i++) outcomes.push(await client.dispatch('acme/shop', 'saucelabs', payload));
    expect(outcomes[0]).toEqual({
      kind: 'retry',
      code: 'server_error',
      reason: 'GitHub 503: Service Unavailable',
      status: 503,
      message: 'Service Unavailable',
    });
    expect(outcomes[1]).toMatchObject({ kind: 'retry', code: 'rate_limit', retryAfterMs: 2_000 });
    // Primary and secondary limits: detected by the throttling plugin, which says which it was.
    expect(outcomes[2]).toMatchObject({ kind: 'retry', code: 'rate_limit', reason: expect.stringContaining('rate limited (403, primary)') });
    expect((outcomes[2] as { retryAfterMs: number }).retryAfterMs).toBeGreaterThan(20_000);
    expect(outcomes[3]).toMatchObject({ kind: 'retry', code: 'rate_limit', retryAfterMs: 60_000, reason: expect.stringContaining('(403, secondary)') });
    expect(outcomes.slice(4).map((o) => o.kind === 'fatal' && o.code)).toEqual(['bad_credentials', 'not_found', 'unprocessable']);
    expect(outcomes[4]).toMatchObject({ reason: expect.stringContaining('Bad credentials') });
    // GitHub's own answer, as it came, for the delivery console: every status and message.
    expect(outcomes.map((o) => [o.status, o.message])).toEqual([
      [503, 'Service Unavailable'],
      [429, 'Too many requests'],
      [403, 'API rate limit exceeded'],
      [403, 'You have exceeded a secondary rate limit'],
      [401, 'Bad credentials'],
      [404, 'Not Found'],
      [422, 'Validation Failed'],
    ]);
    expect(gh.dispatches('acme/shop')).toEqual([]);
    // Never retried inside the request: one request per dispatch.
    expect(gh.countRequests((r) => r.route === DISPATCH)).toBe(7);
  });

  it('a secondary rate limit answered as a 403 without any rate-limit header is a rate limit, not a refusal', async () => {
    const client = createDispatchClient({ token: TOKEN, apiUrl: gh.url, logger: capture().logger });
    gh.failNext(DISPATCH, [{ status: 403, body: { message: 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.' } }]);
    expect(await client.dispatch('acme/shop', 'saucelabs', payload)).toMatchObject({
      kind: 'retry',
      code: 'rate_limit',
      retryAfterMs: 60_000,
      reason: expect.stringContaining('(403, secondary)'),
    });
    gh.failNext(DISPATCH, [{ status: 429, headers: { 'retry-after': '7' }, body: { message: 'You have exceeded a secondary rate limit.' } }]);
    expect(await client.dispatch('acme/shop', 'saucelabs', payload)).toMatchObject({ code: 'rate_limit', retryAfterMs: 7_000 });
    expect(gh.countRequests((r) => r.route === DISPATCH)).toBe(2);
  });

  it('paces dispatches: at least writeSpacingMs between two content-creating requests', async () => {
    const client = createClient({ token: TOKEN, apiUrl: gh.url, logger: capture().logger, writeSpacingMs: 200 });
    const started = Date.now();
    const outcomes = await Promise.all([1, 2, 3].map(() => client.dispatch('acme/shop', 'saucelabs', payload)));
    // Three requests, two gaps: none can have started before 0, 200 and 400 ms.
    expect(Date.now() - started).toBeGreaterThanOrEqual(400);
    expect(outcomes).toEqual([1, 2, 3].map(() => ({ kind: 'sent', status: 204 })));
  });

  it('times out a slow answer and retries later', async () => {
    const client = createDispatchClient({ token: TOKEN, apiUrl: gh.url, logger: capture().logger, timeoutMs: 100 });
    gh.failNext(DISPATCH, [{ status: 204, delayMs: 1_000 }]);
    expect(await client.dispatch('acme/shop', 'saucelabs', payload)).toEqual({ kind: 'retry', code: 'timeout', reason: 'timeout' });
  });

  it('treats a refused connection as a network error to retry', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const client = createDispatchClient({ token: TOKEN, apiUrl: `http://127.0.0.1:${port}`, logger: capture().logger });
    expect(await client.dispatch('acme/shop', 'saucelabs', payload)).toMatchObject({
      kind: 'retry',
      code: 'network',
      reason: expect.stringMatching(/^network error/),
    });
  });

  it('refuses a malformed repository without a request', async () => {
    const client = createDispatchClient({ token: TOKEN, apiUrl: gh.url, logger: capture().logger });
    expect(await client.dispatch('not a repo', 'saucelabs', payload)).toMatchObject({ kind: 'fatal', code: 'invalid_target' });
    expect(gh.requests).toHaveLength(0);
  });
});

describe('GitHub App auth', () => {
  const { privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });

  it('looks up the installation with a JWT, gets an installation token, caches both', async () => {
    const log = capture();
    const client = createDispatchClient({ appId: '12345', privateKey, apiUrl: gh.url, logger: log.logger });
    expect(await client.dispatch('acme/shop', 'saucelabs', payload)).toEqual({ kind: 'sent', status: 204 });
    expect(await client.dispatch('acme/shop', 'saucelabs', payload)).toEqual({ kind: 'sent', status: 204 });
    expect(await client.dispatch('ACME/Shop', 'saucelabs', payload)).toEqual({ kind: 'sent', status: 204 });
    const routes = gh.requests.map((r) => r.route);
    expect(routes).toEqual(['GET /repos/{owner}/{repo}/installation', 'POST /app/installations/{installation_id}/access_tokens', DISPATCH, DISPATCH, DISPATCH]);
    expect(gh.requests[0]?.headers.authorization).toMatch(/^bearer [\w-]+\.[\w-]+\.[\w-]+$/);
    expect(gh.requests[2]?.headers.authorization).toBe('token ghs_test');
    expect(gh.dispatches('acme/shop')).toHaveLength(3);
    expect(log.text()).not.toContain('ghs_test');
    expect(log.text()).not.toContain('PRIVATE KEY');
  });

  it('dead-letters when the App is not installed on the repository', async () => {
    const client = createDispatchClient({ appId: '12345', privateKey, apiUrl: gh.url, logger: capture().logger });
    gh.failNext('GET /repos/{owner}/{repo}/installation', [{ status: 404, body: { message: 'Not Found' } }]);
    expect(await client.dispatch('acme/other', 'saucelabs', payload)).toMatchObject({
      kind: 'fatal',
      code: 'not_found',
      reason: expect.stringContaining('GitHub App auth for acme/other'),
      status: 404,
    });
    // Not cached: once installed, the next attempt works.
    expect(await client.dispatch('acme/other', 'saucelabs', payload)).toEqual({ kind: 'sent', status: 204 });
  });
});

describe('dry-run', () => {
  it('without credentials logs the dispatch it would make and sends nothing', async () => {
    const log = capture();
    const client = createDispatchClient({ apiUrl: gh.url, logger: log.logger });
    expect(client.dryRun).toBe(true);
    expect(await client.dispatch('acme/shop', 'saucelabs', payload)).toEqual({ kind: 'sent' });
    expect(gh.requests).toHaveLength(0);
    const line = log.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'dry-run: would send repository_dispatch');
    expect(line).toMatchObject({ repo: 'acme/shop', eventType: 'saucelabs', events: 1, dryRun: true });
  });
});

describe('outcomeFromError', () => {
  it('reads status and headers from an Octokit error, anything else is transient', () => {
    const now = Date.now();
    expect(outcomeFromError({ status: 502, message: 'x', response: { headers: {}, data: { message: 'Bad gateway' } } }, now)).toEqual({
      kind: 'retry',
      code: 'server_error',
      reason: 'GitHub 502: Bad gateway',
      status: 502,
      message: 'Bad gateway',
    });
    const aborted = Object.assign(new Error('The operation was aborted due to timeout'), { name: 'TimeoutError' });
    expect(outcomeFromError(aborted, now)).toEqual({ kind: 'retry', code: 'timeout', reason: 'timeout' });
    expect(outcomeFromError(new Error('socket hang up'), now)).toEqual({ kind: 'retry', code: 'network', reason: 'network error: socket hang up' });
  });
});
