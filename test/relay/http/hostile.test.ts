/**
 * Hostile input against a real relay process, bounded in count and time: random bytes,
 * truncated JSON, deeply nested JSON, 10 MB bodies, slow senders. The right status codes,
 * no crash, and the child's RSS stays flat.
 */
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { DEFAULTS } from '../../../src/relay/config/index.js';
import { signBody } from '../../../src/relay/http/signature.js';
import { sauceFixture, sauceFixtureNames } from '../support/common.js';
import { ensureBuilt, postSigned, rawSocket, request, startRelayProcess, type RelayProcess } from '../support/process.js';

const SECRET = 'hostile-secret-123456';
const MiB = 1024 * 1024;
/** The default body cap (the relay here runs with it). */
const CAP = DEFAULTS.bodyLimitBytes;
let relay: RelayProcess;
let seed = 42;
/** Deterministic PRNG so a failure can be replayed. */
function rand(): number {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed / 0x7fffffff;
}

beforeAll(async () => {
  ensureBuilt();
  relay = await startRelayProcess({
    env: { SAUCE_WEBHOOK_SECRET: SECRET, RELAY_REQUEST_TIMEOUT: '1500ms', RELAY_HEADERS_TIMEOUT: '1s', RELAY_GROUP_WINDOW: '0' },
  });
}, 120_000);
afterAll(async () => {
  await relay?.kill('SIGKILL');
});

const url = () => `${relay.url}/webhook`;
const signed = (b: Buffer) => postSigned(url(), b, signBody(SECRET, b));

async function alive(): Promise<void> {
  expect(relay.child.exitCode).toBeNull();
  expect((await request(`${relay.url}/healthz`, { method: 'GET' })).status).toBe(200);
}

/** Push `total` bytes on a raw socket (with or without Content-Length); the status line the sender saw. */
function streamBig(total: number, declaredLength: boolean): Promise<string> {
  const { socket, received } = rawSocket(relay.url);
  return new Promise((resolve) => {
    void received.then((got) => resolve(got.split('\r\n')[0] ?? ''));
    const timer = setTimeout(() => socket.destroy(), 10_000);
    timer.unref();
    socket.on('connect', () => {
      const length = declaredLength ? `Content-Length: ${total}` : 'Transfer-Encoding: chunked';
      socket.write(`POST /webhook HTTP/1.1\r\nHost: x\r\nsaucelabs-sign: ${'0'.repeat(64)}\r\n${length}\r\n\r\n`);
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      const framed = declaredLength ? chunk : Buffer.concat([Buffer.from('10000\r\n'), chunk, Buffer.from('\r\n')]);
      let sent = 0;
      const pump = () => {
        while (sent < total && !socket.destroyed) {
          sent += chunk.length;
          if (!socket.write(framed)) return void socket.once('drain', pump);
        }
        if (!declaredLength && !socket.destroyed) socket.write('0\r\n\r\n');
      };
      pump();
    });
  });
}

function slowSender(bytesPerTick: number, intervalMs: number): Promise<string> {
  const { socket, received } = rawSocket(relay.url);
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | null = null;
    void received.then((got) => {
      if (timer) clearInterval(timer);
      resolve(got);
    });
    socket.on('connect', () => {
      socket.write(`POST /webhook HTTP/1.1\r\nHost: x\r\nsaucelabs-sign: ${'a'.repeat(64)}\r\nContent-Length: 100000\r\n\r\n`);
      timer = setInterval(() => socket.write('x'.repeat(bytesPerTick)), intervalMs);
    });
    setTimeout(() => socket.destroy(), 10_000).unref();
  });
}

async function hostileRound(): Promise<void> {
  // Random bytes: signed → 400 (not UTF-8 JSON), unsigned or wrongly signed → 401.
  for (let i = 0; i < 20; i += 1) {
    const b = randomBytes(Math.floor(rand() * 16_384));
    expect((await signed(b)).status).toBe(400);
    expect((await postSigned(url(), b, i % 2 ? null : randomBytes(32).toString('hex'))).status).toBe(401);
  }
  // Truncated JSON of every fixture → 400.
  for (const name of sauceFixtureNames()) {
    const full = sauceFixture(name);
    const cut = full.subarray(0, 1 + Math.floor(rand() * (full.lastIndexOf('}') - 1)));
    expect([name, (await signed(cut)).status]).toEqual([name, 400]);
  }
  // Deeply nested (each under the cap): valid JSON, not an event → 422; inside a valid event → 422 too.
  const arrays = Buffer.from('['.repeat(100_000) + ']'.repeat(100_000));
  expect((await signed(arrays)).status).toBe(422);
  const event = JSON.parse(sauceFixture('job-vdc-passed.json').toString('utf8')) as Record<string, unknown>;
  const nested = Buffer.from(JSON.stringify({ ...event, extra: 'X' }).replace('"X"', `${'{"a":'.repeat(40_000)}1${'}'.repeat(40_000)}`));
  expect((await signed(nested)).status).toBe(422);
  const unbalanced = Buffer.from('{"a":'.repeat(50_000));
  expect((await signed(unbalanced)).status).toBe(400);
  // At the body cap: exactly the cap is read and judged (random bytes → 400), one byte more → 413.
  // These also put 4 MiB a round through the handler, so a leak of bodies shows up.
  for (let i = 0; i < (4 * MiB) / CAP; i += 1) expect((await signed(randomBytes(CAP))).status).toBe(400);
  expect((await signed(randomBytes(CAP + 1))).status).toBe(413);
}

test('hostile input: right answers, no crash, RSS flat', async () => {
  // Warm up with valid traffic so the baseline includes JIT, caches and the store.
  for (let i = 0; i < 100; i += 1) {
    const b = Buffer.from(JSON.stringify({ ...JSON.parse(sauceFixture('job-vdc-passed.json').toString('utf8')), id: `warm-${i}` }));
    expect((await signed(b)).status).toBe(202);
  }
  const bigRound = async () => {
    await hostileRound();
    // 10 MB bodies, with and without Content-Length: the sender reads a 413.
    const big = await Promise.all([streamBig(10 * 1024 * 1024, true), streamBig(10 * 1024 * 1024, false), streamBig(10 * 1024 * 1024, false)]);
    for (const s of big) expect(s).toBe('HTTP/1.1 413 Payload Too Large');
    await alive();
  };
  // Memory is judged as `npm start` runs the relay (its 96 MB old-space cap; see START_NODE_ARGS).
  // One RSS sample depends on when V8 last collected and how far it has grown the heap, so a single
  // baseline made this flaky (CI once read 83.6 MB, then 102-115 MB, with no leak). Instead: warm-up
  // rounds, then 12 measured rounds, and the peak of the last four against the peak of the first
  // four. Without a leak the two differ by up to ~14 MB here (heap growth steps). Keeping the bodies
  // that reach the handler (~5 MB a round at the 256 KiB cap; tried by patching the handler to push
  // each into an array) moves it by ~38 MB and fails.
  for (let round = 0; round < 3; round += 1) await bigRound();
  const samples: number[] = [];
  for (let round = 0; round < 12; round += 1) {
    await bigRound();
    samples.push(relay.rss());
  }
  const mb = (n: number) => (n / 2 ** 20).toFixed(1);
  process.stderr.write(`hostile RSS MB per round: ${samples.map(mb).join(' ')}\n`);
  const firstPeak = Math.max(...samples.slice(0, 4));
  const lastPeak = Math.max(...samples.slice(-4));
  expect(lastPeak - firstPeak).toBeLessThan(28 * 2 ** 20);
  // The product target for the relay's RSS (issue 4): under 150 MB.
  expect(Math.max(...samples)).toBeLessThan(150 * 2 ** 20);
  await alive();
}, 90_000);

test('slow senders get 408 and do not block others', async () => {
  const slow = [slowSender(10, 200), slowSender(1, 100), slowSender(50, 300)];
  const b = sauceFixture('job-vdc-errored.json');
  // Meanwhile, a normal request is answered at once.
  const started = Date.now();
  expect([200, 202]).toContain((await signed(b)).status);
  expect(Date.now() - started).toBeLessThan(1000);
  for (const raw of await Promise.all(slow)) expect(raw).toMatch(/^HTTP\/1\.1 408/);
  await alive();
}, 30_000);

test('garbage on the socket → 400, not a crash', async () => {
  const { port } = new URL(relay.url);
  const raw = await new Promise<string>((resolve) => {
    const s = net.connect(Number(port), '127.0.0.1', () => s.write(randomBytes(4096)));
    let got = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => (got += d));
    s.on('error', () => undefined);
    s.on('close', () => resolve(got));
    setTimeout(() => s.destroy(), 5000).unref();
  });
  expect(raw === '' || /^HTTP\/1\.1 400/.test(raw)).toBe(true);
  await alive();
});
