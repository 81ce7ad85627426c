/**
 * A loopback double of Sauce's Visual GraphQL endpoint (`POST /v1/visual/graphql`), enough for the
 * relay's Visual refresh: the build status query and the diffs query. It refuses what the real API
 * would refuse or what the relay must never send: another path or method, missing or wrong Basic
 * credentials, a build id that is not a UUID, a status query without the build status and all six
 * diff counts, a diffs query that asks for a field Sauce's schema does not have (the fields below
 * are copied from Sauce's published Visual schema, `saucelabs/visual-sdks`
 * visual-java/src/main/graphql/visual/schema.graphqls) or pages without `first`. Each refusal is
 * recorded in `violations`, which a test expects to be empty.
 *
 * Diffs are served like PostGraphile connections: one `diffs(first, after, condition: { status })`
 * per alias, `totalCount`, `pageInfo { hasNextPage endCursor }` and `nodes`, with opaque cursors.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { VisualStatus } from '../../src/sauce/schema.js';
import type { VisualSummary } from '../../src/sauce/event.js';

/** Sauce's DiffStatus. */
export type DiffStatus = 'APPROVED' | 'EQUAL' | 'ERRORED' | 'QUEUED' | 'REJECTED' | 'UNAPPROVED';

/** A snapshot as Sauce's schema has it (the fields the relay may read). */
export interface DoubleSnapshot {
  name: string;
  testName?: string | null;
  suiteName?: string | null;
  browser?: string;
  browserVersion?: string | null;
  device?: string | null;
  operatingSystem?: string;
  operatingSystemVersion?: string | null;
  viewportWidth?: number | null;
  viewportHeight?: number | null;
  /** Non-null: the snapshot is invalid, e.g. `{ code: 'IMAGE_TOO_LARGE' }`. */
  error?: unknown;
}

export interface DoubleDiff {
  id: string;
  status: DiffStatus;
  /** Null: Sauce returns the diff without its snapshot. */
  snapshot: DoubleSnapshot | null;
}

export interface DoubleBuild {
  status: VisualStatus;
  summary: VisualSummary;
  /** Every diff of the build (EQUAL ones included); none when absent. */
  diffs?: DoubleDiff[];
  /** Nodes served as they are, in place of diffs that fail to read (e.g. a node without `status`). */
  rawNodes?: { status: DiffStatus; node: unknown }[];
}

export interface DoubleRequest {
  readonly id: string;
  readonly authorized: boolean;
  /** `status`: the build status query; `diffs`: the diffs query (with the pages it asked for). */
  readonly kind: 'status' | 'diffs' | 'other';
  readonly pages: readonly { readonly status: string; readonly after: string | null; readonly first: number }[];
}

export interface FailOptions {
  /** Only requests of this kind fail (default: any). */
  readonly only?: 'status' | 'diffs';
  /** Let this many matching requests through first ("a 5xx in the middle"). */
  readonly after?: number;
}

export interface SauceApiDouble {
  readonly url: string;
  /** What `build(id)` returns: the state, or null (no such build for this account). */
  setBuild(id: string, build: DoubleBuild | null): void;
  /** Answer the next `times` matching requests with this HTTP status. */
  failNext(status: number, times: number, options?: FailOptions): void;
  /** Never answer the next `times` requests (a hung API); they end when the client gives up. */
  stallNext(times: number): void;
  /** Requests that asked for a build (well-formed or not). */
  readonly requests: DoubleRequest[];
  readonly violations: string[];
  close(): Promise<void>;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const COUNT_STATUSES = ['ERRORED', 'APPROVED', 'EQUAL', 'REJECTED', 'UNAPPROVED', 'QUEUED'] as const;
/** Fields of `Diff` and `Snapshot` in Sauce's schema that carry data (connections and arguments left out). */
const DIFF_FIELDS = new Set([
  'altDomDiffUrl',
  'baseline',
  'baselineId',
  'build',
  'buildId',
  'createdAt',
  'diffBounds',
  'diffClusters',
  'diffingMethod',
  'domDiffUrl',
  'hasDom',
  'id',
  'nodeId',
  'snapshot',
  'snapshotId',
  'status',
  'statusIsEqual',
  'updatedAt',
  'updatedBy',
]);
const SNAPSHOT_FIELDS = new Set([
  'appId',
  'appName',
  'appVersion',
  'branch',
  'browser',
  'browserVersion',
  'buildId',
  'createdAt',
  'defaultBranch',
  'device',
  'devicePixelRatio',
  'domFormat',
  'error',
  'hasDom',
  'height',
  'id',
  'imageUrl',
  'jobUrl',
  'metadata',
  'name',
  'nodeId',
  'operatingSystem',
  'operatingSystemVersion',
  'suiteName',
  'testName',
  'thumbnailUrl',
  'uploadId',
  'url',
  'userAgent',
  'viewportHeight',
  'viewportWidth',
  'width',
]);

/** The text inside the braces that follow `from` (balanced), or null. */
function block(text: string, from: number): string | null {
  const open = text.indexOf('{', from);
  if (open < 0) return null;
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === '{') depth += 1;
    else if (text[i] === '}') {
      depth -= 1;
      if (depth === 0) return text.slice(open + 1, i);
    }
  }
  return null;
}

/** Top-level field names of a selection set (sub-selections skipped). */
function fieldsOf(selection: string): { fields: string[]; sub: Map<string, string> } {
  const fields: string[] = [];
  const sub = new Map<string, string>();
  let i = 0;
  while (i < selection.length) {
    const m = /[A-Za-z_][A-Za-z0-9_]*/y;
    m.lastIndex = i;
    const word = m.exec(selection);
    if (!word) {
      i += 1;
      continue;
    }
    fields.push(word[0]);
    i = m.lastIndex;
    const rest = selection.slice(i).match(/^\s*\{/);
    if (rest) {
      const inner = block(selection, i)!;
      sub.set(word[0], inner);
      i = selection.indexOf('{', i) + inner.length + 2;
    }
  }
  return { fields, sub };
}

const cursor = (offset: number): string => Buffer.from(`offset:${offset}`).toString('base64');
const offsetOf = (value: unknown): number | null => {
  if (value === null || value === undefined) return 0;
  const m = /^offset:(\d+)$/.exec(Buffer.from(String(value), 'base64').toString('utf8'));
  return m ? Number(m[1]) : null;
};

export async function startSauceApiDouble(credentials: { username: string; accessKey: string }): Promise<SauceApiDouble> {
  const builds = new Map<string, DoubleBuild | null>();
  const requests: DoubleRequest[] = [];
  const violations: string[] = [];
  let failures: { status: number; times: number; only: FailOptions['only']; after: number } | null = null;
  let stalls = 0;
  const expectedAuth = `Basic ${Buffer.from(`${credentials.username}:${credentials.accessKey}`).toString('base64')}`;

  const send = (res: http.ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };

  /** The status query: build status and the six counts. */
  function answerStatus(query: string, id: string, res: http.ServerResponse) {
    const missing = [
      /build\(id:\s*\$id\)/.test(query) ? null : 'build(id: $id)',
      /\bstatus\b/.test(query) ? null : 'status',
      ...COUNT_STATUSES.map((s) =>
        new RegExp(`${s.toLowerCase()}:\\s*diffCountExtended\\(input:\\s*\\{\\s*status:\\s*${s}\\s*\\}\\)`).test(query) ? null : `${s} count`,
      ),
    ].filter((m): m is string => m !== null);
    if (missing.length > 0) {
      violations.push(`query lacks ${missing.join(', ')}`);
      return send(res, 200, { errors: [{ message: `query lacks ${missing.join(', ')}` }] });
    }
    const build = builds.get(id);
    if (build === undefined || build === null) return send(res, 200, { data: { build: null } });
    return send(res, 200, { data: { build: { status: build.status, ...build.summary } } });
  }

  /** The diffs query: one connection per alias, each checked against the schema. */
  function answerDiffs(query: string, variables: Record<string, unknown>, id: string, res: http.ServerResponse) {
    const build = builds.get(id);
    const first = variables.first;
    const problems: string[] = [];
    if (typeof first !== 'number' || !Number.isInteger(first) || first < 1 || first > 100) problems.push(`first must be 1..100, got ${JSON.stringify(first)}`);
    const data: Record<string, unknown> = {};
    const connections = [...query.matchAll(/(\w+):\s*diffs\(([^)]*)\)/g)];
    if (connections.length === 0) problems.push('no diffs(...) connection');
    for (const c of connections) {
      const [, alias, args] = c as unknown as [string, string, string];
      const status = /condition:\s*\{\s*status:\s*(\w+)\s*\}/.exec(args)?.[1];
      const afterVar = /after:\s*\$(\w+)/.exec(args)?.[1];
      if (!status || !['APPROVED', 'EQUAL', 'ERRORED', 'QUEUED', 'REJECTED', 'UNAPPROVED'].includes(status))
        problems.push(`${alias}: condition.status missing or not a DiffStatus`);
      if (!/first:\s*\$first/.test(args)) problems.push(`${alias}: no first`);
      const selection = block(query, (c.index ?? 0) + c[0].length) ?? '';
      const top = fieldsOf(selection);
      for (const f of top.fields) if (!['totalCount', 'pageInfo', 'nodes', 'edges'].includes(f)) problems.push(`${alias}: DiffsConnection has no field ${f}`);
      const nodes = fieldsOf(top.sub.get('nodes') ?? '');
      for (const f of nodes.fields) if (!DIFF_FIELDS.has(f)) problems.push(`${alias}: Diff has no field ${f}`);
      for (const f of fieldsOf(nodes.sub.get('snapshot') ?? '').fields) if (!SNAPSHOT_FIELDS.has(f)) problems.push(`${alias}: Snapshot has no field ${f}`);
      const offset = offsetOf(afterVar ? variables[afterVar] : null);
      if (offset === null) problems.push(`${alias}: unknown cursor`);
      if (!build || !status || offset === null || typeof first !== 'number') continue;
      const all: unknown[] = [
        ...(build.diffs ?? []).filter((d) => d.status === status),
        ...(build.rawNodes ?? []).filter((n) => n.status === status).map((n) => n.node),
      ];
      const nodesOut = all.slice(offset, offset + first);
      const end = offset + nodesOut.length;
      data[alias] = {
        totalCount: all.length,
        pageInfo: { hasNextPage: end < all.length, endCursor: nodesOut.length > 0 ? cursor(end) : null },
        nodes: nodesOut,
      };
    }
    if (problems.length > 0) {
      violations.push(...problems);
      return send(res, 200, { errors: problems.map((message) => ({ message })) });
    }
    if (build === undefined || build === null) return send(res, 200, { data: { build: null } });
    return send(res, 200, { data: { build: data } });
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/visual/graphql') {
        violations.push(`${req.method} ${req.url}: not the Visual GraphQL endpoint`);
        return send(res, 404, { message: 'not found' });
      }
      let body: { query?: unknown; variables?: Record<string, unknown> };
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof body;
      } catch {
        violations.push('body is not JSON');
        return send(res, 400, { errors: [{ message: 'bad JSON' }] });
      }
      const variables = body.variables ?? {};
      const id = String(variables.id ?? '');
      const query = typeof body.query === 'string' ? body.query : '';
      const kind: DoubleRequest['kind'] = /diffCountExtended/.test(query) ? 'status' : /\bdiffs\(/.test(query) ? 'diffs' : 'other';
      const pages =
        kind === 'diffs'
          ? [...query.matchAll(/(\w+):\s*diffs\(([^)]*)\)/g)].map((m) => {
              const args = m[2] ?? '';
              const afterVar = /after:\s*\$(\w+)/.exec(args)?.[1];
              return {
                status: /status:\s*(\w+)/.exec(args)?.[1] ?? '',
                after: afterVar && typeof variables[afterVar] === 'string' ? (variables[afterVar] as string) : null,
                first: Number(variables.first),
              };
            })
          : [];
      const authorized = req.headers.authorization === expectedAuth;
      requests.push({ id, authorized, kind, pages });
      if (!authorized) return send(res, 401, { message: 'unauthorized' });
      if (stalls > 0) {
        stalls -= 1;
        return;
      }
      if (failures && failures.times > 0 && (failures.only === undefined || failures.only === kind)) {
        if (failures.after > 0) failures.after -= 1;
        else {
          failures.times -= 1;
          return send(res, failures.status, { message: 'injected failure' });
        }
      }
      if (!UUID.test(id)) {
        violations.push(`build id ${JSON.stringify(id)} is not a UUID`);
        return send(res, 200, { data: null, errors: [{ message: 'Variable "$id" got invalid value' }] });
      }
      if (kind === 'status') return answerStatus(query, id, res);
      if (kind === 'diffs') return answerDiffs(query, variables, id, res);
      violations.push('query is neither the status query nor the diffs query');
      return send(res, 200, { errors: [{ message: 'unknown query' }] });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    setBuild: (id, build) => void builds.set(id, build),
    failNext: (status, times, options = {}) => {
      failures = { status, times, only: options.only, after: options.after ?? 0 };
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

/** A snapshot with every descriptive field set (names may be overridden). */
export function snapshot(name: string, overrides: Partial<DoubleSnapshot> = {}): DoubleSnapshot {
  return {
    name,
    testName: 'checkout.spec.ts',
    suiteName: 'Checkout',
    browser: 'CHROME',
    browserVersion: '128.0',
    device: null,
    operatingSystem: 'WINDOWS',
    operatingSystemVersion: '11',
    viewportWidth: 1280,
    viewportHeight: 720,
    error: null,
    ...overrides,
  };
}

/**
 * A build whose summary counts its diffs: `counts` diffs per status, named `<Status> <n>`, with
 * ids derived from `seed` (UUIDs), plus `equal` EQUAL diffs.
 */
export function buildWithDiffs(
  status: VisualStatus,
  counts: Partial<Record<DiffStatus, number>>,
  seed: number,
  name: (status: DiffStatus, n: number) => string = (s, n) => `${s[0]}${s.slice(1).toLowerCase()} ${n}`,
): DoubleBuild {
  const diffs: DoubleDiff[] = [];
  let k = 0;
  for (const s of ['UNAPPROVED', 'REJECTED', 'ERRORED', 'QUEUED', 'APPROVED', 'EQUAL'] as const) {
    for (let n = 1; n <= (counts[s] ?? 0); n++) {
      k += 1;
      const id = `${seed.toString(16).padStart(8, '0')}-0000-4000-8000-${k.toString(16).padStart(12, '0')}`;
      diffs.push({ id, status: s, snapshot: snapshot(name(s, n)) });
    }
  }
  const c = (s: DiffStatus) => counts[s] ?? 0;
  return {
    status,
    summary: { errored: c('ERRORED'), approved: c('APPROVED'), equal: c('EQUAL'), rejected: c('REJECTED'), unapproved: c('UNAPPROVED'), queued: c('QUEUED') },
    diffs,
  };
}
