/**
 * A loopback double of Sauce's Visual GraphQL endpoint (`POST /v1/visual/graphql`), enough for the
 * relay's Visual refresh. It refuses what the real API would refuse or what the relay must never
 * send: another path or method, missing or wrong Basic credentials, a query without the build
 * status and all six diff counts, a build id that is not a UUID. Each refusal is recorded in
 * `violations`, which a test expects to be empty.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { VisualStatus } from '../../src/sauce/schema.js';
import type { VisualSummary } from '../../src/sauce/event.js';

export interface SauceApiDouble {
  readonly url: string;
  /** What `build(id)` returns: the state, or null (no such build for this account). */
  setBuild(id: string, build: { status: VisualStatus; summary: VisualSummary } | null): void;
  /** Answer the next `times` requests with this HTTP status. */
  failNext(status: number, times: number): void;
  /** Never answer the next `times` requests (a hung API); they end when the client gives up. */
  stallNext(times: number): void;
  /** Requests that asked for a build (well-formed or not). */
  readonly requests: { id: string; authorized: boolean }[];
  readonly violations: string[];
  close(): Promise<void>;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DIFF_STATUSES = ['ERRORED', 'APPROVED', 'EQUAL', 'REJECTED', 'UNAPPROVED', 'QUEUED'] as const;

export async function startSauceApiDouble(credentials: { username: string; accessKey: string }): Promise<SauceApiDouble> {
  const builds = new Map<string, { status: VisualStatus; summary: VisualSummary } | null>();
  const requests: { id: string; authorized: boolean }[] = [];
  const violations: string[] = [];
  let failures: { status: number; times: number } | null = null;
  let stalls = 0;
  const expectedAuth = `Basic ${Buffer.from(`${credentials.username}:${credentials.accessKey}`).toString('base64')}`;

  const send = (res: http.ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/visual/graphql') {
        violations.push(`${req.method} ${req.url}: not the Visual GraphQL endpoint`);
        return send(res, 404, { message: 'not found' });
      }
      let body: { query?: unknown; variables?: { id?: unknown } };
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof body;
      } catch {
        violations.push('body is not JSON');
        return send(res, 400, { errors: [{ message: 'bad JSON' }] });
      }
      const id = String(body.variables?.id ?? '');
      const authorized = req.headers.authorization === expectedAuth;
      requests.push({ id, authorized });
      if (!authorized) return send(res, 401, { message: 'unauthorized' });
      if (stalls > 0) {
        stalls -= 1;
        return;
      }
      if (failures && failures.times > 0) {
        failures.times -= 1;
        return send(res, failures.status, { message: 'injected failure' });
      }
      const query = typeof body.query === 'string' ? body.query : '';
      const missing = [
        /build\(id:\s*\$id\)/.test(query) ? null : 'build(id: $id)',
        /\bstatus\b/.test(query) ? null : 'status',
        ...DIFF_STATUSES.map((s) =>
          new RegExp(`${s.toLowerCase()}:\\s*diffCountExtended\\(input:\\s*\\{\\s*status:\\s*${s}\\s*\\}\\)`).test(query) ? null : `${s} count`,
        ),
      ].filter((m): m is string => m !== null);
      if (missing.length > 0) {
        violations.push(`query lacks ${missing.join(', ')}`);
        return send(res, 200, { errors: [{ message: `query lacks ${missing.join(', ')}` }] });
      }
      if (!UUID.test(id)) {
        violations.push(`build id ${JSON.stringify(id)} is not a UUID`);
        return send(res, 200, { data: null, errors: [{ message: 'Variable "$id" got invalid value' }] });
      }
      const build = builds.get(id);
      if (build === undefined || build === null) return send(res, 200, { data: { build: null } });
      return send(res, 200, { data: { build: { status: build.status, ...build.summary } } });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    setBuild: (id, build) => void builds.set(id, build),
    failNext: (status, times) => {
      failures = { status, times };
    },
    stallNext: (times) => {
      stalls = times;
    },
    requests,
    violations,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
