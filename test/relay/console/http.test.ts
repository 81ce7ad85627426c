/** The node:http shell of the console: what it takes, what it leaves to the relay, and its body cap. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { MAX_CONSOLE_BODY_BYTES, createConsole } from '../../../src/relay/console/console.js';
import { createMemorySource } from './memory-source.js';
import { seed } from './seed.js';
import { ADMIN_TOKEN, captureLogger } from './support.js';

let server: http.Server;
let url: string;
const memory = createMemorySource();
seed(memory);

beforeAll(async () => {
  const handler = createConsole({ source: memory.source, token: ADMIN_TOKEN, logger: captureLogger().logger });
  server = http.createServer((req, res) => {
    if (!handler(req, res)) res.writeHead(418, { 'content-type': 'text/plain' }).end('the relay');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

test.each(['/webhook', '/webhook/web', '/healthz', '/metrics', '/consoles', '/'])('%s is left to the relay', async (path) => {
  expect((await fetch(`${url}${path}`)).status).toBe(418);
});

test('sign in over HTTP, then read the API with the cookie', async () => {
  const signIn = await fetch(`${url}/console/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { origin: url, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: ADMIN_TOKEN }),
  });
  expect(signIn.status).toBe(303);
  const cookie = signIn.headers.get('set-cookie')!.split(';')[0]!;
  const list = await fetch(`${url}/api/deliveries?limit=2`, { headers: { cookie } });
  expect(list.status).toBe(200);
  expect(((await list.json()) as { items: unknown[] }).items).toHaveLength(2);
});

test('a body over the cap is refused with 413 before the console reads it', async () => {
  const big = `token=${'x'.repeat(MAX_CONSOLE_BODY_BYTES)}`;
  const r = await fetch(`${url}/console/login`, { method: 'POST', headers: { origin: url, 'content-type': 'application/x-www-form-urlencoded' }, body: big });
  expect(r.status).toBe(413);
  const chunked = await new Promise<number>((resolve, reject) => {
    const req = http.request(`${url}/api/deliveries/x/requeue`, { method: 'POST', headers: { 'transfer-encoding': 'chunked' } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    for (let i = 0; i < 5; i += 1) req.write(Buffer.alloc(MAX_CONSOLE_BODY_BYTES / 2, 0x20));
    req.end();
  });
  expect(chunked).toBe(413);
});
