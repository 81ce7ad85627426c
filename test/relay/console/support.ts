/** Shared by the console tests: a console over the seeded in-memory source, a log to read, requests to make. */
import { Writable } from 'node:stream';
import { type ConsoleOptions, type ConsoleResponse, createConsoleCore } from '../../../src/relay/console/console.js';
import { createLogger } from '../../../src/relay/logger.js';
import { createMemorySource, type MemorySource } from './memory-source.js';
import { seed, type Seeded } from './seed.js';

export const ADMIN_TOKEN = 'console-test-admin-token-5f2b9c0d8e7a6b';
export const HOST = 'relay.test:8080';
export const ORIGIN = `http://${HOST}`;

export function captureLogger() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  });
  return { logger: createLogger({ level: 'info', destination }), lines, records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

export interface Harness {
  readonly memory: MemorySource;
  readonly seeded: Seeded;
  readonly log: ReturnType<typeof captureLogger>;
  call(method: string, url: string, init?: { headers?: Record<string, string>; body?: string }): Promise<ConsoleResponse>;
  /** Sign in as the page does; the cookie header value and the CSRF token. */
  signIn(): Promise<{ cookie: string; csrf: string }>;
  text(r: ConsoleResponse): string;
  // biome-ignore lint/suspicious/noExplicitAny: tests read the JSON API's answers field by field
  json(r: ConsoleResponse): any;
}

export function consoleHarness(options: Partial<ConsoleOptions> = {}): Harness {
  const memory = createMemorySource();
  const seeded = seed(memory);
  const log = captureLogger();
  let n = 0;
  const core = createConsoleCore({
    source: memory.source,
    token: ADMIN_TOKEN,
    logger: log.logger,
    routes: ['web', 'mobile'],
    now: () => memory.clock.now,
    random: (bytes) => {
      n += 1;
      return Buffer.alloc(bytes, n);
    },
    ...options,
  });
  const call: Harness['call'] = (method, url, init = {}) =>
    core.handle({ method, url, headers: { host: HOST, ...init.headers }, body: Buffer.from(init.body ?? '', 'utf8'), remoteAddress: '127.0.0.1' });
  const text = (r: ConsoleResponse) => (typeof r.body === 'string' ? r.body : r.body.toString('utf8'));
  return {
    memory,
    seeded,
    log,
    call,
    text,
    json: (r) => JSON.parse(text(r)),
    async signIn() {
      const r = await call('POST', '/console/login', {
        headers: { origin: ORIGIN, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token: ADMIN_TOKEN }).toString(),
      });
      if (r.status !== 303) throw new Error(`sign-in: ${r.status}`);
      const cookie = r.headers['set-cookie']!.split(';')[0]!;
      const session = await call('GET', '/api/session', { headers: { cookie } });
      return { cookie, csrf: (JSON.parse(text(session)) as { csrf: string }).csrf };
    },
  };
}
