import { createFetchHandler, readCapped } from '../../../src/relay/http/adapters/fetch.js';
import { createLambdaHandler } from '../../../src/relay/http/adapters/lambda.js';
import type { DispatchOutcome } from '../../../src/relay/http/handler.js';
import { signBody } from '../../../src/relay/http/signature.js';
import { envelopeSchema } from '../../../src/sauce/envelope.js';
import { startGitHubDouble } from '../../support/github-double.js';
import { quickConfig, sauceFixture, silentLogger } from '../support/common.js';
import { datedNow } from '../support/process.js';

const SECRET = 'adapter-secret';
/** Dated now: the adapters run with the default stale limit (24 h). */
const body = datedNow(sauceFixture('job-vdc-failed-boolean.json'));
const config = quickConfig({ SAUCE_WEBHOOK_SECRET: SECRET, GITHUB_REPOSITORY: 'acme/web', GITHUB_TOKEN: 't', RELAY_BODY_LIMIT: '64KiB' });

function fakeClient(outcome: DispatchOutcome) {
  const calls: unknown[] = [];
  return {
    calls,
    client: {
      dispatch: async (...args: unknown[]) => {
        calls.push(args);
        return outcome;
      },
    },
  };
}

function fetchRequest(payload: Buffer | ReadableStream<Uint8Array> | null, sig: string | null, path = '/webhook', method = 'POST'): Request {
  const headers = new Headers({ 'content-type': 'application/json' });
  if (sig !== null) headers.set('SauceLabs-Sign', sig);
  return new Request(`https://relay.example${path}`, {
    method,
    headers,
    body: payload,
    ...(payload instanceof ReadableStream ? { duplex: 'half' } : {}),
  } as RequestInit);
}

describe('fetch handler (Workers, Vercel, Deno, Bun)', () => {
  test('the request path, dispatching inside the request', async () => {
    const { client, calls } = fakeClient({ kind: 'sent' });
    const handle = createFetchHandler({ config, client, logger: silentLogger });
    const ok = await handle(fetchRequest(body, signBody(SECRET, body)));
    expect(ok.status).toBe(202);
    expect(await ok.json()).toEqual({ status: 'dispatched', id: expect.stringMatching(/^d-/) });
    expect(calls).toHaveLength(1);
    expect((await handle(fetchRequest(body, 'nope'))).status).toBe(401);
    expect((await handle(fetchRequest(body, signBody(SECRET, body), '/other'))).status).toBe(404);
    expect((await handle(fetchRequest(null, null, '/webhook', 'GET'))).status).toBe(405);
    expect((await handle(fetchRequest(null, null, '/healthz', 'GET'))).status).toBe(200);
    const notJson = Buffer.from('{nope');
    expect((await handle(fetchRequest(notJson, signBody(SECRET, notJson)))).status).toBe(400);
  });

  test('a job event older than the stale limit: 202 filtered, not dispatched', async () => {
    const { client, calls } = fakeClient({ kind: 'sent' });
    const handle = createFetchHandler({ config, client, logger: silentLogger });
    const old = sauceFixture('job-vdc-failed-boolean.json'); // modified 2025-09-02
    const r = await handle(fetchRequest(old, signBody(SECRET, old)));
    expect(r.status).toBe(202);
    expect(await r.json()).toEqual({ status: 'filtered', reason: expect.stringMatching(/^stale: /) });
    expect(calls).toHaveLength(0);
  });

  test('413 on bytes read from the stream, whatever the headers say', async () => {
    const { client, calls } = fakeClient({ kind: 'sent' });
    const handle = createFetchHandler({ config, client, logger: silentLogger });
    let pulled = 0;
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled += 1;
        controller.enqueue(new Uint8Array(16 * 1024));
      },
    });
    const r = await handle(fetchRequest(endless, '0'.repeat(64)));
    expect(r.status).toBe(413);
    expect(pulled).toBeLessThan(10);
    expect(calls).toHaveLength(0);
    expect((await readCapped(null, 10)).tooLarge).toBe(false);
  });

  test('GitHub failing → 503 with Retry-After, or 502', async () => {
    const retry = createFetchHandler({
      config,
      client: fakeClient({ kind: 'retry', code: 'server_error', reason: '5xx', retryAfterMs: 2000 }).client,
      logger: silentLogger,
    });
    const r = await retry(fetchRequest(body, signBody(SECRET, body)));
    expect([r.status, r.headers.get('retry-after')]).toEqual([503, '2']);
    const fatal = createFetchHandler({ config, client: fakeClient({ kind: 'fatal', code: 'not_found', reason: '404' }).client, logger: silentLogger });
    expect((await fatal(fetchRequest(body, signBody(SECRET, body)))).status).toBe(502);
  });

  test('config from the runtime env (Workers pass it with each request); no secret → 500', async () => {
    const handle = createFetchHandler({ client: fakeClient({ kind: 'sent' }).client, logger: silentLogger });
    const r = await handle(fetchRequest(body, signBody('from-env', body)), {
      SAUCE_WEBHOOK_SECRET: 'from-env',
      GITHUB_REPOSITORY: 'acme/web',
      GITHUB_TOKEN: 't',
    });
    expect(r.status).toBe(202);
    const unset = createFetchHandler({ env: { GITHUB_REPOSITORY: 'acme/web' }, client: fakeClient({ kind: 'sent' }).client, logger: silentLogger });
    expect((await unset(fetchRequest(body, signBody('x', body)))).status).toBe(500);
  });

  test('with the real dispatch client against the GitHub double', async () => {
    const double = await startGitHubDouble();
    try {
      const handle = createFetchHandler({
        env: { SAUCE_WEBHOOK_SECRET: SECRET, GITHUB_REPOSITORY: 'acme/web', GITHUB_TOKEN: 'ghs_x', GITHUB_API_URL: double.url },
        logger: silentLogger,
      });
      expect((await handle(fetchRequest(body, signBody(SECRET, body)))).status).toBe(202);
      const [d] = double.dispatches('acme/web');
      expect(d?.event_type).toBe('saucelabs');
      expect(envelopeSchema.parse(d?.client_payload).events[0]?.payload).toEqual(JSON.parse(body.toString('utf8')));
      double.failNext('POST /repos/{owner}/{repo}/dispatches', [{ status: 503 }]);
      expect((await handle(fetchRequest(body, signBody(SECRET, body)))).status).toBe(503);
      double.failNext('POST /repos/{owner}/{repo}/dispatches', [{ status: 404, body: { message: 'Not Found' } }]);
      expect((await handle(fetchRequest(body, signBody(SECRET, body)))).status).toBe(502);
      expect(double.violations).toEqual([]);
    } finally {
      await double.close();
    }
  });
});

describe('Lambda handler (API Gateway v1/v2, function URLs)', () => {
  test('v2 event with a base64 body', async () => {
    const { client, calls } = fakeClient({ kind: 'sent' });
    const handle = createLambdaHandler({ config, client, logger: silentLogger });
    const r = await handle({
      version: '2.0',
      rawPath: '/webhook',
      requestContext: { http: { method: 'POST' } },
      headers: { 'saucelabs-sign': signBody(SECRET, body) },
      body: body.toString('base64'),
      isBase64Encoded: true,
    });
    expect(r).toMatchObject({ statusCode: 202, isBase64Encoded: false });
    expect(calls).toHaveLength(1);
  });

  test('v1 event, mixed-case header, stage prefix', async () => {
    const handle = createLambdaHandler({ config, client: fakeClient({ kind: 'sent' }).client, logger: silentLogger, basePath: '/prod' });
    const r = await handle({ httpMethod: 'POST', path: '/prod/webhook', headers: { 'SauceLabs-Sign': signBody(SECRET, body) }, body: body.toString('utf8') });
    expect(r.statusCode).toBe(202);
    const bad = await handle({ httpMethod: 'POST', path: '/prod/webhook', headers: {}, body: body.toString('utf8') });
    expect([bad.statusCode, bad.body]).toEqual([401, '{"error":"unauthorized"}']);
    expect((await handle({ httpMethod: 'GET', path: '/prod/webhook' })).statusCode).toBe(405);
    expect((await handle({ httpMethod: 'GET', path: '/healthz' })).statusCode).toBe(200);
  });

  test('413 over the cap; 503 when GitHub is down', async () => {
    const handle = createLambdaHandler({ config, client: fakeClient({ kind: 'retry', code: 'server_error', reason: 'x' }).client, logger: silentLogger });
    const big = Buffer.alloc(65 * 1024, 0x20);
    expect(
      (
        await handle({
          httpMethod: 'POST',
          path: '/webhook',
          headers: { 'saucelabs-sign': signBody(SECRET, big) },
          body: big.toString('base64'),
          isBase64Encoded: true,
        })
      ).statusCode,
    ).toBe(413);
    const r = await handle({ httpMethod: 'POST', path: '/webhook', headers: { 'saucelabs-sign': signBody(SECRET, body) }, body: body.toString('utf8') });
    expect(r.statusCode).toBe(503);
    expect(r.headers['retry-after']).toBe('5');
  });
});
