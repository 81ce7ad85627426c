/**
 * The relay as a real child process (from lib/), on loopback: every answer of the request path,
 * zero-config start and dry-run, the CLI against it, health/readiness/metrics, graceful SIGTERM.
 */
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createHandler } from '../../../src/relay/http/handler.js';
import { createMetrics } from '../../../src/relay/metrics.js';
import { bearerAuthorized, clientErrorAnswer, createRelayServer } from '../../../src/relay/http/server.js';
import { signBody } from '../../../src/relay/http/signature.js';
import { MemoryStore, REPO_ROOT, route, sauceFixture, silentLogger, waitFor } from '../support/common.js';
import { datedNow, ensureBuilt, postSigned, rawSocket, request, startRelayProcess, tempDir, type RelayProcess } from '../support/process.js';

const run = promisify(execFile);
const CLI = join(REPO_ROOT, 'lib/relay/cli.js');
const SECRET = 'web-secret-0123456789';
const TOKEN = `tok_${'x9'.repeat(20)}`;
const METRICS_TOKEN = 'metrics-token-5f2b9c';
const passed = sauceFixture('job-vdc-passed.json');
const DAY = 86_400_000;
/** The clock of the in-process handlers: an hour after the fixtures' job events (their times are fixed). */
const FIXTURE_NOW = Date.parse('2025-09-02T15:00:00Z');

function cli(args: string[], env: Record<string, string> = {}) {
  return run(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, env: { PATH: process.env.PATH ?? '', ...env }, timeout: 15_000 }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }),
  );
}

/** Raw socket: write the parts with pauses, collect whatever comes back until close. */
function slowRequest(url: string, parts: (string | Buffer)[], pauseMs: number, onSent?: (i: number) => void): Promise<string> {
  const { socket, received } = rawSocket(url);
  return new Promise((resolve) => {
    void received.then(resolve);
    let i = 0;
    const next = () => {
      if (socket.destroyed || i >= parts.length) return;
      socket.write(parts[i]!);
      onSent?.(i);
      i += 1;
      setTimeout(next, pauseMs);
    };
    socket.on('connect', next);
    setTimeout(() => socket.destroy(), 15_000).unref();
  });
}

beforeAll(() => ensureBuilt(), 120_000);

describe('zero-config start (npm start on a fresh clone)', () => {
  const dataDir = tempDir();
  let relay: RelayProcess | null = null;
  afterAll(async () => {
    await relay?.kill('SIGKILL');
  });

  test('prints the URL, a generated secret and one command that sends a sample; dry-run logs the dispatch', async () => {
    relay = await startRelayProcess({ dataDir, env: { RELAY_GROUP_WINDOW: '100ms' } });
    await relay.waitForLog((l) => l.msg === 'dispatcher started' && l.dryRun === true);
    const out = relay.stdout();
    const secret = /Secret:\s+(\S+)/.exec(out)?.[1];
    // Hex, so never a leading `-` that the sample command's argument parser would take for an option.
    expect(secret).toMatch(/^[0-9a-f]{48}$/);
    expect(out).toContain(`Webhook URL:  ${relay.url}/webhook`);
    expect(readFileSync(join(dataDir, 'webhook-secret'), 'utf8').trim()).toBe(secret);
    // The banner is printed once, not in the logs: the secret appears exactly there.
    expect(out.split(secret!).length - 1).toBe(2);
    const command = /^\s+(node lib\/relay\/cli\.js send .*)$/m.exec(out)?.[1];
    expect(command).toBeDefined();
    const args = command!.split(/\s+/).slice(2);
    const sent = await cli(args);
    // The whole answer on a failure, not only the exit code.
    expect({ code: sent.code, stdout: sent.stdout, stderr: sent.stderr }).toEqual({
      code: 0,
      stdout: expect.stringMatching(/^202 \{"status":"stored","id":"[^"]+"\}/),
      stderr: '',
    });
    const dry = await relay.waitForLog((l) => l.msg === 'dry-run: would send repository_dispatch');
    expect(dry).toMatchObject({ repo: 'example/dry-run', eventType: 'saucelabs', events: 1 });
    await relay.kill('SIGTERM');
  });

  test('a restart keeps the secret and does not print it again', async () => {
    const secret = readFileSync(join(dataDir, 'webhook-secret'), 'utf8').trim();
    relay = await startRelayProcess({ dataDir });
    expect(relay.stdout()).not.toContain(secret);
    expect(relay.stdout()).toContain('webhook-secret');
    const r = await postSigned(`${relay.url}/webhook`, passed, signBody(secret, passed));
    expect(r.status).toBe(202);
    expect((await postSigned(`${relay.url}/webhook`, passed, signBody('guess', passed))).status).toBe(401);
  });
});

describe('every answer of the request path (full config)', () => {
  let relay: RelayProcess;
  let configFile: string;
  beforeAll(async () => {
    const dir = tempDir();
    configFile = join(dir, 'relay.yaml');
    writeFileSync(
      configFile,
      `body_limit: 64KiB
metrics_token: \${METRICS_TOKEN}
request_timeout: 1500ms
headers_timeout: 1s
group_window: 100ms
routes:
  - name: web
    secrets: ["\${WEB_SECRET}", old-secret]
    repo: acme/web
  - name: failures
    secrets: ["\${WEB_SECRET}"]
    repo: acme/web
    filters: { failed_only: true }
  - name: tagged
    secrets: ["\${WEB_SECRET}"]
    repo_from_tags: true
    allow: [acme]
  - name: open
    allow_unsigned: true
    url_token: ${TOKEN}
    repo: acme/open
`,
    );
    relay = await startRelayProcess({ env: { RELAY_CONFIG: configFile, WEB_SECRET: SECRET, METRICS_TOKEN } });
  }, 30_000);
  afterAll(async () => {
    await relay?.kill('SIGKILL');
  });

  const url = (p: string) => `${relay.url}${p}`;

  test('404 wrong path, 405 wrong method', async () => {
    expect((await postSigned(url('/nope'), passed, signBody(SECRET, passed))).status).toBe(404);
    expect((await postSigned(url('/webhook'), passed, signBody(SECRET, passed))).status).toBe(404);
    expect((await postSigned(url('/webhook/open/wrong-token'), passed, null)).status).toBe(404);
    const r = await request(url('/webhook/web'), { method: 'GET' });
    expect(r.status).toBe(405);
    expect(r.headers.allow).toBe('POST');
    expect((await request(url('/webhook/web'), { method: 'PUT', body: passed })).status).toBe(405);
  });

  test('413 counted on bytes read: chunked without Content-Length, and an honest large one', async () => {
    const big = Buffer.alloc(200 * 1024, 0x20);
    const chunked = await new Promise<number>((resolve, reject) => {
      const req = http.request(url('/webhook/web'), { method: 'POST', agent: false, headers: { 'saucelabs-sign': signBody(SECRET, big) } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      for (let i = 0; i < 10; i += 1) req.write(big.subarray(i * 20 * 1024, (i + 1) * 20 * 1024));
      req.end();
    });
    expect(chunked).toBe(413);
    const r = await postSigned(url('/webhook/web'), big, signBody(SECRET, big)).catch((e: Error) => ({ status: e.message }));
    expect(r.status).toBe(413);
    // Just under the cap is read and judged on its content.
    const under = Buffer.alloc(64 * 1024, 0x20);
    expect((await postSigned(url('/webhook/web'), under, signBody(SECRET, under))).status).toBe(400);
  });

  test('408 when headers or body are too slow', async () => {
    const head = 'POST /webhook/web HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n';
    const slowHeaders = await slowRequest(relay.url, [head, 'X-A: 1\r\n', 'X-B: 2\r\n', 'X-C: 3\r\n', 'X-D: 4\r\n', 'X-E: 5\r\n'], 400);
    expect(slowHeaders).toMatch(/^HTTP\/1\.1 408/);
    const slowBody = await slowRequest(relay.url, [`${head}Content-Length: 100\r\n\r\n`, '{"id"', ':"x"'], 1000);
    expect(slowBody).toMatch(/^HTTP\/1\.1 408/);
  });

  test('401 missing or wrong signature, with a body that leaks nothing', async () => {
    const answers = await Promise.all([
      postSigned(url('/webhook/web'), passed, null),
      postSigned(url('/webhook/web'), passed, signBody('nope', passed)),
      postSigned(url('/webhook/web'), passed, 'sha256=zzz'),
    ]);
    for (const a of answers) {
      expect(a.status).toBe(401);
      expect(a.body).toBe('{"error":"unauthorized"}');
    }
  });

  test('400 not JSON, 422 not a Sauce event with the fields at fault', async () => {
    const notJson = Buffer.from('{"id": "abc", ');
    expect((await postSigned(url('/webhook/web'), notJson, signBody(SECRET, notJson))).status).toBe(400);
    const wrong = Buffer.from(JSON.stringify({ id: 'j1', data_type: 'vdc', status: 'EXPLODED' }));
    const r = await postSigned(url('/webhook/web'), wrong, signBody(SECRET, wrong));
    expect(r.status).toBe(422);
    expect(JSON.parse(r.body)).toEqual({ error: 'not a Sauce Labs event', issues: [expect.objectContaining({ field: 'status' })] });
  });

  test('202 filtered / no route, with the reason', async () => {
    const f = await postSigned(url('/webhook/failures'), passed, signBody(SECRET, passed));
    expect(f.status).toBe(202);
    expect(JSON.parse(f.body)).toEqual({ status: 'filtered', reason: expect.stringContaining('failed_only') });
    const visual = sauceFixture('visual-approved.json');
    const n = await postSigned(url('/webhook/tagged'), visual, signBody(SECRET, visual));
    expect(n.status).toBe(202);
    expect(JSON.parse(n.body)).toEqual({ status: 'filtered', reason: expect.stringMatching(/^no route/) });
  });

  test('202 stored with an id, then 200 duplicate (any secret, any route-local body)', async () => {
    const body = sauceFixture('job-vdc-failed-boolean.json');
    const first = await postSigned(url('/webhook/web'), body, signBody(SECRET, body));
    expect(first.status).toBe(202);
    const { id } = JSON.parse(first.body) as { id: string };
    expect(JSON.parse(first.body)).toEqual({ status: 'stored', id: expect.any(String) });
    const dup = await postSigned(url('/webhook/web'), body, signBody('old-secret', body));
    expect(dup.status).toBe(200);
    expect(JSON.parse(dup.body)).toEqual({ status: 'duplicate', id });
    // The same body on another route is another delivery.
    expect((await postSigned(url('/webhook/failures'), body, signBody(SECRET, body))).status).toBe(202);
    const stored = await relay.waitForLog((l) => l.msg === 'event stored' && l.id === id);
    expect(stored).toMatchObject({ route: 'web', repo: 'acme/web', secretIndex: 0 });
    const dupLog = await relay.waitForLog((l) => l.msg === 'duplicate delivery' && l.id === id);
    expect(dupLog.secretIndex).toBe(1);
  });

  test('unsigned only where opted in, with the URL token', async () => {
    const body = sauceFixture('job-vdc-errored.json');
    expect((await postSigned(url(`/webhook/open/${TOKEN}`), body, null)).status).toBe(202);
    expect((await postSigned(url('/webhook/web'), body, null)).status).toBe(401);
  });

  test('healthz, readyz, metrics (with the metrics token)', async () => {
    expect((await request(url('/healthz'), { method: 'GET' })).status).toBe(200);
    const ready = await request(url('/readyz'), { method: 'GET' });
    expect([ready.status, ready.body]).toEqual([200, '{"ready":true}']);
    const wrong: Record<string, string>[] = [{}, { authorization: 'Bearer wrong' }, { authorization: METRICS_TOKEN }];
    for (const headers of wrong) {
      const denied = await request(url('/metrics'), { method: 'GET', headers });
      expect([denied.status, denied.headers['www-authenticate'], denied.body]).toEqual([401, 'Bearer', '{"error":"unauthorized"}']);
    }
    const m = await request(url('/metrics'), { method: 'GET', headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(m.status).toBe(200);
    expect(m.headers['content-type']).toMatch(/text\/plain/);
    for (const line of [
      /sauce_relay_received_total\{route="web"\} \d+/,
      /sauce_relay_rejected_total\{reason="signature"\} \d+/,
      /sauce_relay_rejected_total\{reason="too_large"\} \d+/,
      /sauce_relay_rejected_total\{reason="not_found"\} \d+/,
      /sauce_relay_rejected_total\{reason="metrics_token"\} 3/,
      /sauce_relay_stored_total\{route="web"\} \d+/,
      /sauce_relay_duplicates_total\{route="web"\} 1/,
      /sauce_relay_queue_depth \d+/,
      /sauce_relay_dispatch_latency_seconds_bucket/,
      /sauce_relay_process_resident_memory_bytes/,
    ]) {
      expect(m.body).toMatch(line);
    }
    expect(m.body).not.toContain(SECRET);
    expect(relay.stdout()).not.toContain(METRICS_TOKEN);
  });

  test('the CLI: sign, send, check-config, outbox', async () => {
    const file = join(REPO_ROOT, 'test/fixtures/sauce/job-vdc-complete-passed-null.json');
    const signed = await cli(['sign', file, '--secret', SECRET]);
    expect(signed.stdout.trim()).toBe(signBody(SECRET, readFileSync(file)));
    const sent = await cli(['send', file, '--url', url('/webhook/web'), '--secret', SECRET]);
    expect(sent.code).toBe(0);
    expect(sent.stdout).toMatch(/^202 \{"status":"stored"/);
    const again = await cli(['send', file, '--url', url('/webhook/web'), '--secret', SECRET]);
    expect(again.stdout).toMatch(/^200 \{"status":"duplicate"/);
    const bad = await cli(['send', file, '--url', url('/webhook/web'), '--secret', 'wrong']);
    expect(bad).toMatchObject({ code: 1, stdout: '401 {"error":"unauthorized"}\n' });
    const unreachable = await cli(['send', file, '--url', 'http://127.0.0.1:9/webhook', '--secret', SECRET]);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toMatch(/cannot reach/);

    const ok = await cli(['check-config'], { RELAY_CONFIG: configFile, WEB_SECRET: SECRET, METRICS_TOKEN });
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('configuration OK');
    expect(ok.stdout).not.toContain(SECRET);
    expect(ok.stdout).not.toContain(METRICS_TOKEN);
    expect(ok.stdout).not.toContain(TOKEN);
    const broken = await cli(['check-config'], { RELAY_CONFIG: configFile, METRICS_TOKEN });
    expect(broken.code).toBe(2);
    expect(broken.stderr).toMatch(/relay\.yaml: routes\[0:web\]\.secrets\[0\]: environment variable WEB_SECRET is not set/);

    const list = await cli(['outbox', 'list', '--state', 'delivered'], { RELAY_DATA_DIR: relay.dataDir });
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^pending=\d+ delivered=\d+ dead=0/);
    const dead = await cli(['outbox', 'dead'], { RELAY_DATA_DIR: relay.dataDir });
    expect(dead.stdout).toMatch(/dead=0/);
    const retry = await cli(['outbox', 'retry', 'no-such-id'], { RELAY_DATA_DIR: relay.dataDir });
    expect(retry.code).toBe(1);
    expect(retry.stderr).toContain('no dead event no-such-id');
  });
});

describe('stale job events (replays) against a relay process with the 24 h default', () => {
  test('an old signed job event: 202 filtered stale, a warning with the code, counted; the same job dated now is stored', async () => {
    const relay = await startRelayProcess({ env: { SAUCE_WEBHOOK_SECRET: SECRET, RELAY_STALE_AFTER: '24h' } });
    try {
      const old = sauceFixture('job-vdc-errored.json'); // modified 2025-09-02
      const r = await postSigned(`${relay.url}/webhook`, old, signBody(SECRET, old));
      expect(r.status).toBe(202);
      expect(JSON.parse(r.body)).toEqual({
        status: 'filtered',
        reason: expect.stringMatching(/^stale: the job's modification_time 2025-09-02T14:05:17\.000Z is more than 24 h before/),
      });
      const line = await relay.waitForLog((l) => l.msg === 'event not relayed');
      expect(line).toMatchObject({ level: 40, code: 'stale', route: 'default' });
      const fresh = datedNow(old);
      expect(JSON.parse((await postSigned(`${relay.url}/webhook`, fresh, signBody(SECRET, fresh))).body).status).toBe('stored');
      const m = await request(`${relay.url}/metrics`, { method: 'GET' });
      expect(m.body).toMatch(/sauce_relay_filtered_total\{route="default",reason="stale"\} 1/);
    } finally {
      await relay.kill('SIGKILL');
    }
  });
});

describe('graceful stop and misconfiguration', () => {
  test('SIGTERM: stops accepting, finishes the request in flight, exits 0', async () => {
    const relay = await startRelayProcess({ env: { SAUCE_WEBHOOK_SECRET: SECRET, RELAY_GROUP_WINDOW: '0' } });
    const body = sauceFixture('job-rdc-failed-tags.json');
    const head = `POST /webhook HTTP/1.1\r\nHost: x\r\nsaucelabs-sign: ${signBody(SECRET, body)}\r\nContent-Length: ${body.length}\r\n\r\n`;
    const half = Math.floor(body.length / 2);
    const answer = slowRequest(relay.url, [head, body.subarray(0, half), body.subarray(half)], 400, (i) => {
      if (i === 1) relay.child.kill('SIGTERM');
    });
    const raw = await answer;
    expect(raw).toMatch(/^HTTP\/1\.1 202/);
    expect(raw.toLowerCase()).toContain('connection: close');
    expect(await relay.exited).toBe(0);
    await relay.waitForLog((l) => l.msg === 'relay stopped');
    await expect(request(`${relay.url}/healthz`, { method: 'GET' })).rejects.toThrow(/ECONNREFUSED/);
  });

  test('a bad configuration exits 2 with the field and the fix, before listening', async () => {
    const r = await cli(['serve'], { PORT: '0', GITHUB_TOKEN: 't', RELAY_DATA_DIR: tempDir() });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/GITHUB_REPOSITORY: set the target owner\/repo/);
  });
});

describe('node server in-process: the store failing', () => {
  test('503 with Retry-After, readyz 503; never 2xx', async () => {
    const store = new MemoryStore();
    store.down = true;
    const metrics = createMetrics({ defaultMetrics: false });
    const routes = [route({ name: 'default', path: '/webhook', secrets: [SECRET] })];
    const handler = createHandler({
      routes,
      bodyLimitBytes: 1 << 20,
      dedupWindowMs: 1000,
      staleAfterMs: DAY,
      now: () => FIXTURE_NOW,
      logger: silentLogger,
      metrics,
      store,
    });
    const { server } = createRelayServer({
      handler,
      bodyLimitBytes: 1 << 20,
      headersTimeoutMs: 2000,
      requestTimeoutMs: 2000,
      maxConnections: 100,
      maxBufferedBytes: 4 << 20,
      logger: silentLogger,
      metrics,
      store,
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    try {
      const r = await postSigned(`${base}/webhook`, passed, signBody(SECRET, passed));
      expect(r.status).toBe(503);
      expect(r.headers['retry-after']).toBe('5');
      expect((await request(`${base}/readyz`, { method: 'GET' })).status).toBe(503);
      store.down = false;
      expect((await postSigned(`${base}/webhook`, passed, signBody(SECRET, passed))).status).toBe(202);
      expect((await request(`${base}/readyz`, { method: 'GET' })).status).toBe(200);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('node server in-process: connection and memory limits', () => {
  async function serve(overrides: { maxConnections?: number; maxBufferedBytes?: number; bodyLimitBytes?: number; headersTimeoutMs?: number } = {}) {
    const store = new MemoryStore();
    const metrics = createMetrics({ defaultMetrics: false });
    const bodyLimitBytes = overrides.bodyLimitBytes ?? 64 * 1024;
    const routes = [route({ name: 'default', path: '/webhook', secrets: [SECRET] })];
    const handler = createHandler({
      routes,
      bodyLimitBytes,
      dedupWindowMs: 1000,
      staleAfterMs: DAY,
      now: () => FIXTURE_NOW,
      logger: silentLogger,
      metrics,
      store,
    });
    const relay = createRelayServer({
      handler,
      bodyLimitBytes,
      headersTimeoutMs: overrides.headersTimeoutMs ?? 5000,
      requestTimeoutMs: 10_000,
      maxConnections: overrides.maxConnections ?? 100,
      maxBufferedBytes: overrides.maxBufferedBytes ?? 1 << 20,
      logger: silentLogger,
      metrics,
      store,
    });
    await new Promise<void>((resolve) => relay.server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(relay.server.address() as net.AddressInfo).port}`;
    const close = async () => {
      relay.server.closeAllConnections();
      await new Promise((resolve) => relay.server.close(resolve));
    };
    return { relay, base, store, metrics, close };
  }

  /** A raw connection; `write` sends, `text()` is everything read so far, `closed` resolves on close. */
  function connect(base: string) {
    const { socket, received } = rawSocket(base);
    let got = '';
    socket.on('data', (d: string) => (got += d));
    const connected = new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    return { socket, connected, text: () => got, closed: received };
  }

  const head = (length: number | null, extra = '') =>
    `POST /webhook HTTP/1.1\r\nHost: x\r\nsaucelabs-sign: ${'0'.repeat(64)}\r\n${length === null ? 'Transfer-Encoding: chunked' : `Content-Length: ${length}`}\r\n${extra}\r\n`;

  async function rejected(metrics: ReturnType<typeof createMetrics>): Promise<Record<string, number>> {
    const m = await metrics.registry.getSingleMetric('sauce_relay_rejected_total')!.get();
    return Object.fromEntries(m.values.map((v) => [String(v.labels.reason), v.value]));
  }

  test('a request on a connection past the limit: 503 + Retry-After, connection closed; probes still answered; served again once one closes', async () => {
    const { base, metrics, close } = await serve({ maxConnections: 2 });
    try {
      const held = [connect(base), connect(base)];
      await Promise.all(held.map((h) => h.connected));
      const over = await postSigned(`${base}/webhook`, passed, signBody(SECRET, passed));
      expect(over.status).toBe(503);
      expect(over.headers['retry-after']).toBe('5');
      expect(over.headers.connection).toBe('close');
      expect(JSON.parse(over.body)).toEqual({ error: 'too many connections, retry later' });
      const probe = await request(`${base}/healthz`, { method: 'GET' });
      expect([probe.status, probe.headers.connection]).toEqual([200, 'close']);
      expect((await rejected(metrics)).too_many_connections).toBe(1);
      held[0]!.socket.destroy();
      await held[0]!.closed;
      await waitFor(async () => (await postSigned(`${base}/webhook`, passed, signBody(SECRET, passed))).status === 202, 5000, 'a 202 once a connection closed');
      held[1]!.socket.destroy();
    } finally {
      await close();
    }
  });

  test('a body that does not fit in the buffered budget: 503 + Retry-After before it is read; the budget comes back to 0', async () => {
    const { base, metrics, relay, close } = await serve({ maxBufferedBytes: 100 * 1024 });
    try {
      // A holds 60 KiB of the 100 KiB budget while it sends slowly.
      const a = connect(base);
      await a.connected;
      a.socket.write(head(60 * 1024));
      a.socket.write(Buffer.alloc(1024, 0x61));
      await waitFor(() => relay.bufferedBytes() === 60 * 1024, 5000, 'A to take 60 KiB');
      // B declares 60 KiB: refused at once, nothing taken.
      const b = connect(base);
      await b.connected;
      b.socket.write(head(60 * 1024));
      await waitFor(() => b.text().includes('\r\n\r\n'), 5000, 'the answer to B');
      expect(b.text()).toMatch(/^HTTP\/1\.1 503 /);
      expect(b.text().toLowerCase()).toContain('retry-after: 5');
      expect(b.text()).toContain('{"error":"too many request bodies in flight, retry later"}');
      expect(relay.bufferedBytes()).toBe(60 * 1024);
      // B's body is read and discarded: B can still send it and use the connection again.
      b.socket.write(Buffer.alloc(60 * 1024, 0x62));
      // C, chunked, is refused when its growing body no longer fits.
      const c = connect(base);
      await c.connected;
      c.socket.write(head(null));
      c.socket.write(`8000\r\n${'c'.repeat(0x8000)}\r\n`);
      c.socket.write(`8000\r\n${'c'.repeat(0x8000)}\r\n`);
      await waitFor(() => c.text().includes('\r\n\r\n'), 5000, 'the answer to C');
      expect(c.text()).toMatch(/^HTTP\/1\.1 503 /);
      expect(relay.bufferedBytes()).toBe(60 * 1024);
      // A completes: judged (unsigned → 401), and its bytes given back.
      a.socket.write(Buffer.alloc(59 * 1024, 0x61));
      await waitFor(() => a.text().includes('\r\n\r\n'), 5000, 'the answer to A');
      expect(a.text()).toMatch(/^HTTP\/1\.1 401 /);
      await waitFor(() => relay.bufferedBytes() === 0, 5000, 'the budget back to 0');
      expect((await rejected(metrics)).buffer_full).toBe(2);
      for (const s of [a, b, c]) s.socket.destroy();
      // A signed event fits again.
      expect((await postSigned(`${base}/webhook`, passed, signBody(SECRET, passed))).status).toBe(202);
    } finally {
      await close();
    }
  });

  test('an aborted upload gives its bytes back', async () => {
    const { base, relay, close } = await serve();
    try {
      const a = connect(base);
      await a.connected;
      a.socket.write(head(50 * 1024));
      a.socket.write(Buffer.alloc(10 * 1024, 0x61));
      await waitFor(() => relay.bufferedBytes() === 50 * 1024, 5000, 'the upload to take its share');
      a.socket.destroy();
      await waitFor(() => relay.bufferedBytes() === 0, 5000, 'the budget back to 0');
    } finally {
      await close();
    }
  });

  test('a declared Content-Length over the cap: 413 before any of the body is read', async () => {
    const { base, relay, close } = await serve({ bodyLimitBytes: 1024 });
    try {
      const a = connect(base);
      await a.connected;
      a.socket.write(head(1025));
      await waitFor(() => a.text().includes('\r\n\r\n'), 5000, 'the 413');
      expect(a.text()).toMatch(/^HTTP\/1\.1 413 /);
      expect(relay.bufferedBytes()).toBe(0);
      a.socket.destroy();
    } finally {
      await close();
    }
  });

  test('408 on a keep-alive connection after a completed response (the finished response is not taken for one in progress)', async () => {
    const { base, close } = await serve({ headersTimeoutMs: 300 });
    try {
      const a = connect(base);
      await a.connected;
      a.socket.write(`${head(passed.length).replace('0'.repeat(64), signBody(SECRET, passed))}`);
      a.socket.write(passed);
      await waitFor(() => /\r\n\r\n\{"status":"stored"/.test(a.text()), 5000, 'the 202');
      a.socket.write('POST /webhook HTTP/1.1\r\nHost: x\r\n');
      await a.closed;
      expect(a.text()).toMatch(/HTTP\/1\.1 408 Request Timeout/);
    } finally {
      await close();
    }
  });
});

describe('bearerAuthorized (the /metrics token)', () => {
  test.each([
    [undefined, null, true],
    ['anything', null, true],
    [undefined, 'tok', false],
    ['', 'tok', false],
    ['Bearer tok', 'tok', true],
    ['bearer tok', 'tok', true],
    ['Bearer  tok ', 'tok', true],
    ['Bearer tok2', 'tok', false],
    ['Bearer to', 'tok', false],
    ['tok', 'tok', false],
    ['Basic dG9r', 'tok', false],
    ['Bearer tok extra', 'tok', false],
  ] as const)('%j with token %j → %s', (header, token, ok) => {
    expect(bearerAuthorized(header, token)).toBe(ok);
  });
});

describe('clientErrorAnswer', () => {
  test.each([
    ['ERR_HTTP_REQUEST_TIMEOUT', true, false, 408],
    ['ERR_HTTP_HEADERS_TIMEOUT', true, false, 408],
    ['HPE_HEADER_OVERFLOW', true, false, 431],
    ['HPE_INVALID_METHOD', true, false, 400],
    ['ERR_HTTP_REQUEST_TIMEOUT', true, true, null],
    ['HPE_INVALID_METHOD', false, false, null],
    ['ECONNRESET', true, false, null],
    ['HPE_INVALID_EOF_STATE', true, false, null],
  ] as const)('%s, writable %s, response started %s → %s', (code, writable, responseStarted, status) => {
    expect(clientErrorAnswer(code, { writable, responseStarted })?.status ?? null).toBe(status);
  });
});
