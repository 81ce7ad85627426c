/** The diffs of a Visual build: the GraphQL request, its answer, and the bounded page-by-page read (pure). */
import {
  DIFF_READ_LIMITS,
  addDiffPages,
  finishDiffRead,
  nextDiffPages,
  parseVisualDiffsResponse,
  snapshotInvalid,
  startDiffRead,
  visualDiffsRequest,
  visualStatusListsDiffs,
  type DiffPage,
  type DiffReadLimits,
} from '../../src/sauce/visual-api.js';
import { VISUAL_STATUSES, type VisualStatus } from '../../src/sauce/schema.js';
import { SNAPSHOT_NAME_MAX_CHARS, type VisualDiff } from '../../src/sauce/visual-notes.js';

const BUILD = '0b0e2d4c-1111-4a2b-8c3d-000000000001';
const summary = (over: Partial<Record<'errored' | 'approved' | 'equal' | 'rejected' | 'unapproved' | 'queued', number>> = {}) => ({
  errored: 0,
  approved: 0,
  equal: 0,
  rejected: 0,
  unapproved: 0,
  queued: 0,
  ...over,
});
const node = (id: string, status: string, name: string, snapshot: Record<string, unknown> = {}) => ({
  id,
  status,
  snapshot: {
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
    ...snapshot,
  },
});
const connection = (nodes: unknown[], totalCount: number, endCursor: string | null) => ({
  totalCount,
  pageInfo: { hasNextPage: endCursor !== null, endCursor },
  nodes,
});
const diff = (id: string, status: VisualDiff['status']): VisualDiff => ({
  id,
  status,
  snapshot: id,
  test: null,
  suite: null,
  browser: null,
  device: null,
  os: null,
  viewport: null,
  invalid: null,
});
const page = (status: VisualDiff['status'], ids: string[], totalCount: number, next: string | null): DiffPage => ({
  status,
  totalCount,
  next,
  items: ids.map((id) => diff(id, status)),
  unreadable: 0,
});

describe('visualStatusListsDiffs: which check runs list the diffs', () => {
  const listed: Record<VisualStatus, boolean> = {
    UNAPPROVED: true,
    REJECTED: true,
    ERRORED: true,
    QUEUED: false,
    RUNNING: false,
    APPROVED: false,
    EQUAL: false,
    EMPTY: false,
  };
  test.each(VISUAL_STATUSES.map((s) => [s, listed[s]] as const))('%s → %s', (status, expected) => expect(visualStatusListsDiffs(status)).toBe(expected));
});

describe('visualDiffsRequest', () => {
  test('one connection per status, by condition, first/after as variables, only schema fields', () => {
    const { query, variables } = visualDiffsRequest(
      BUILD,
      [
        { status: 'UNAPPROVED', after: null },
        { status: 'REJECTED', after: 'b2Zmc2V0OjI=' },
      ],
      50,
    );
    expect(variables).toEqual({ id: BUILD, first: 50, unapprovedAfter: null, rejectedAfter: 'b2Zmc2V0OjI=' });
    expect(query).toContain('query relayBuildDiffs($id: UUID!, $first: Int!, $unapprovedAfter: Cursor, $rejectedAfter: Cursor)');
    expect(query).toContain('unapproved: diffs(first: $first, after: $unapprovedAfter, condition: { status: UNAPPROVED })');
    expect(query).toContain('rejected: diffs(first: $first, after: $rejectedAfter, condition: { status: REJECTED })');
    expect(query).toContain('totalCount pageInfo { hasNextPage endCursor } nodes { id status snapshot {');
    // Never the image URLs: the check run links to the build page only.
    expect(query).not.toMatch(/imageUrl|thumbnailUrl/);
  });
});

describe('parseVisualDiffsResponse', () => {
  test('pages per status: labels joined, invalid snapshots named, malformed nodes counted and left out', () => {
    const json = {
      data: {
        build: {
          unapproved: connection(
            [
              node('d1', 'UNAPPROVED', 'Checkout'),
              node('d2', 'UNAPPROVED', 'Cart', {
                error: { code: 'IMAGE_TOO_LARGE' },
                browser: 'NONE',
                device: 'iPhone 15',
                operatingSystem: 'IOS',
                operatingSystemVersion: '17',
              }),
              { id: 'd3', snapshot: null },
              { id: 'd4', status: 'UNAPPROVED', snapshot: null },
            ],
            5,
            'c4',
          ),
        },
      },
    };
    const read = parseVisualDiffsResponse(json, ['UNAPPROVED']);
    expect(read).toEqual({
      kind: 'found',
      pages: [
        {
          status: 'UNAPPROVED',
          totalCount: 5,
          next: 'c4',
          unreadable: 1,
          items: [
            {
              id: 'd1',
              status: 'UNAPPROVED',
              snapshot: 'Checkout',
              test: 'checkout.spec.ts',
              suite: 'Checkout',
              browser: 'CHROME 128.0',
              device: null,
              os: 'WINDOWS 11',
              viewport: '1280x720',
              invalid: null,
            },
            {
              id: 'd2',
              status: 'UNAPPROVED',
              snapshot: 'Cart',
              test: 'checkout.spec.ts',
              suite: 'Checkout',
              browser: null,
              device: 'iPhone 15',
              os: 'IOS 17',
              viewport: '1280x720',
              invalid: 'IMAGE_TOO_LARGE',
            },
            { id: 'd4', status: 'UNAPPROVED', snapshot: null, test: null, suite: null, browser: null, device: null, os: null, viewport: null, invalid: null },
          ],
        },
      ],
    });
  });

  test('a 10,000-character snapshot name is cut to its limit, never a whole page', () => {
    const read = parseVisualDiffsResponse({ data: { build: { rejected: connection([node('d1', 'REJECTED', 'x'.repeat(10_000))], 1, null) } } }, ['REJECTED']);
    if (read.kind !== 'found') throw new Error(read.kind);
    const name = read.pages[0]!.items[0]!.snapshot!;
    expect(Array.from(name)).toHaveLength(SNAPSHOT_NAME_MAX_CHARS);
    expect(name.endsWith('…')).toBe(true);
  });

  test.each([
    ['no such build', { data: { build: null } }, { kind: 'not_found' }],
    ['GraphQL errors', { errors: [{ message: 'Cannot query field "x"' }] }, { kind: 'invalid', reason: 'GraphQL error: Cannot query field "x"' }],
    ['a connection missing', { data: { build: {} } }, { kind: 'invalid', reason: expect.stringMatching(/^data\.build\.unapproved: /) }],
    [
      'no pageInfo',
      { data: { build: { unapproved: { totalCount: 1, nodes: [] } } } },
      { kind: 'invalid', reason: expect.stringMatching(/^data\.build\.unapproved\.pageInfo: /) },
    ],
    ['no data', {}, { kind: 'invalid', reason: 'no data in the answer' }],
  ])('%s', (_name, json, expected) => expect(parseVisualDiffsResponse(json, ['UNAPPROVED'])).toEqual(expected));
});

describe('snapshotInvalid: Sauce error JSON → what the check run says', () => {
  test.each([
    [null, null],
    [undefined, null],
    [{ code: 'TRUNCATED' }, 'TRUNCATED'],
    [{ code: 'INVALID' }, 'INVALID'],
    [{ dom_code: 'DOM_TOO_LARGE' }, null],
    [{ message: 'something else' }, 'ERROR'],
    ['broken', 'ERROR'],
  ])('%j → %j', (error, expected) => expect(snapshotInvalid(error)).toBe(expected));
});

describe('reading the diffs page by page, bounded', () => {
  const small: DiffReadLimits = { pageSize: 2, maxItems: 4, maxRequests: 3 };

  test('the first request asks every status the summary counts, in review order; EQUAL never', () => {
    const state = startDiffRead(summary({ approved: 1, equal: 40, rejected: 2, unapproved: 3, queued: 0, errored: 1 }));
    expect(nextDiffPages(state, small)).toEqual([
      { status: 'UNAPPROVED', after: null },
      { status: 'REJECTED', after: null },
      { status: 'ERRORED', after: null },
      { status: 'APPROVED', after: null },
    ]);
  });

  test('nothing counted → nothing to read', () => {
    expect(nextDiffPages(startDiffRead(summary({ equal: 40 })), small)).toBeNull();
  });

  test('continues only what is still short of the bound, and stops at it', () => {
    let state = startDiffRead(summary({ unapproved: 5, rejected: 1 }));
    state = addDiffPages(state, [page('UNAPPROVED', ['u1', 'u2'], 5, 'c2'), page('REJECTED', ['r1'], 1, null)]);
    expect(nextDiffPages(state, small)).toEqual([{ status: 'UNAPPROVED', after: 'c2' }]);
    state = addDiffPages(state, [page('UNAPPROVED', ['u3', 'u4'], 5, 'c4')]);
    // Four unapproved already fill the list: the fifth is counted, not read.
    expect(nextDiffPages(state, small)).toBeNull();
    expect(finishDiffRead(state, 1000, small)).toEqual({
      readAt: 1000,
      totals: { UNAPPROVED: 5, REJECTED: 1 },
      items: ['u1', 'u2', 'u3', 'u4'].map((id) => diff(id, 'UNAPPROVED')),
    });
  });

  test('never more requests than the bound, whatever pageInfo says', () => {
    let state = startDiffRead(summary({ unapproved: 1000 }));
    let requests = 0;
    for (let pages = nextDiffPages(state, small); pages !== null; pages = nextDiffPages(state, small)) {
      requests += 1;
      state = addDiffPages(state, [page('UNAPPROVED', [`u${requests}`], 1000, `c${requests}`)]);
    }
    expect(requests).toBe(3);
  });

  test('an empty page ends its status even if it claims more (no endless loop)', () => {
    let state = startDiffRead(summary({ unapproved: 3 }));
    state = addDiffPages(state, [page('UNAPPROVED', [], 3, 'c0')]);
    expect(nextDiffPages(state, small)).toBeNull();
  });

  test('a diff seen twice (it moved between pages) is listed once; the list keeps review order', () => {
    let state = startDiffRead(summary({ unapproved: 2, approved: 2 }));
    state = addDiffPages(state, [page('UNAPPROVED', ['a', 'b'], 2, null), page('APPROVED', ['b', 'c'], 2, null)]);
    expect(finishDiffRead(state, 0, DIFF_READ_LIMITS).items.map((d) => d.id)).toEqual(['a', 'b', 'c']);
  });

  test('the defaults: 50 a page, 100 listed, 3 requests', () => {
    expect(DIFF_READ_LIMITS).toEqual({ pageSize: 50, maxItems: 100, maxRequests: 3 });
  });
});
