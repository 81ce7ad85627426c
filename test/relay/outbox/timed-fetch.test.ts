/**
 * fetchWithTimeout against real loopback servers that hang: before the headers, and after them
 * in the middle of the body.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fetchWithTimeout } from '../../../src/relay/outbox/timed-fetch.js';

let server: http.Server;
let base: string;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    if (req.url === '/hang') return; // never answers
    if (req.url === '/stall-body') {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
      res.write('{"partial":');
      return; // the rest never comes
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

test('an answer within the deadline is returned as is', async () => {
  const res = await fetchWithTimeout(`${base}/ok`, { method: 'GET' }, 5_000);
  expect(await res.json()).toEqual({ ok: true });
});

test('a server that never answers: TimeoutError once the deadline passes', async () => {
  const started = Date.now();
  const error = await rejection(fetchWithTimeout(`${base}/hang`, { method: 'POST', body: '{}' }, 300));
  expect(error.name).toBe('TimeoutError');
  expect(error.message).toBe('request timed out after 300 ms');
  expect(Date.now() - started).toBeGreaterThanOrEqual(290);
});

test('headers on time, then a stalled body: reading the body fails at the deadline', async () => {
  const res = await fetchWithTimeout(`${base}/stall-body`, undefined, 300);
  expect(res.status).toBe(200);
  const error = await rejection(res.text());
  expect(error.name).toBe('TimeoutError');
});

test.each([
  ["the caller's signal", 'init'],
  ['the extra (shutdown) signal', 'also'],
] as const)('%s aborts a hung request with its own reason', async (_name, which) => {
  const controller = new AbortController();
  const reason = new Error('shutting down');
  const p = fetchWithTimeout(`${base}/hang`, which === 'init' ? { signal: controller.signal } : {}, 30_000, which === 'also' ? controller.signal : null);
  setTimeout(() => controller.abort(reason), 50);
  expect(await rejection(p)).toBe(reason);
});

test('an already aborted signal: no request waits', async () => {
  const controller = new AbortController();
  controller.abort(new Error('already stopped'));
  expect((await rejection(fetchWithTimeout(`${base}/hang`, {}, 30_000, controller.signal))).message).toBe('already stopped');
});
