import {
  commitsOf,
  compareNewestFirst,
  decodeCursor,
  encodeCursor,
  eventOutcome,
  factsOf,
  matchesQuery,
  prettyBody,
  requestOutcome,
} from '../../../src/relay/console/derive.js';
import type { DeliverySummary, EventRow, RequestRecord } from '../../../src/relay/console/source.js';
import { sauceFixture } from '../support/common.js';

const body = (name: string) => sauceFixture(name).toString('utf8');

describe('display fields come from the shared parser and the Action’s commit candidates', () => {
  test.each([
    [
      'job-vdc-passed.json',
      { kind: 'vdc', name: 'login should succeed', status: 'PASSED', passed: true, shortSha: '9fceb02', commit: { kind: 'sha', source: 'commit_id' } },
    ],
    ['job-rdc-failed-tags.json', { kind: 'rdc', name: 'test_checkout_payment_declined', status: 'FAILED', build: 'android-nightly-881' }],
    ['job-vdc-saucectl-sha-in-build.json', { kind: 'vdc', shortSha: '9fceb02', commit: { kind: 'sha', source: 'build' } }],
    ['visual-unapproved.json', { kind: 'visual', status: 'UNAPPROVED', passed: null, build: null, branch: 'feature/login', shortSha: '9fceb02' }],
    ['visual-equal-eu-no-branch.json', { kind: 'visual', status: 'EQUAL', commit: null, shortSha: null }],
  ])('%s', (file, expected) => {
    expect(factsOf(body(file))).toMatchObject(expected);
  });

  test('a body that is not a Sauce event has no facts; one that is not JSON has no pretty form', () => {
    expect(factsOf('{"hello":1}')).toBeNull();
    expect(factsOf('not json')).toBeNull();
    expect(prettyBody('not json')).toBeNull();
    expect(prettyBody('{"a":[1,2]}')).toBe('{\n  "a": [\n    1,\n    2\n  ]\n}');
  });

  test('every commit candidate, in the Action’s order', () => {
    const candidates = commitsOf(body('job-rdc-failed-tags.json'));
    expect(candidates.map((c) => c.source)).toEqual(expect.arrayContaining(['tag ci:ssha']));
    expect(commitsOf(body('job-vdc-passed.json'))[0]).toEqual({ kind: 'sha', value: '9fceb02d0ae598e95dc970b74767f19372d61af8', source: 'commit_id' });
  });
});

const row = (over: Partial<EventRow>): EventRow => ({
  id: 'e1',
  route: 'web',
  repo: 'acme/web',
  eventType: 'saucelabs',
  body: body('job-vdc-passed.json'),
  extra: null,
  receivedAt: 1000,
  state: 'pending',
  attempts: 0,
  nextAttemptAt: 1000,
  lastError: null,
  requeuedAt: null,
  lastAttempt: null,
  ...over,
});

test.each([
  ['pending, never tried', row({}), { state: 'stored' }],
  [
    'pending after failures',
    row({ attempts: 2, nextAttemptAt: 5000, lastError: 'GitHub 502' }),
    { state: 'retrying', attempts: 2, nextAttemptAt: 5000, lastError: 'GitHub 502' },
  ],
  ['dead', row({ state: 'dead', attempts: 1, lastError: 'GitHub 404' }), { state: 'dead', attempts: 1, reason: 'GitHub 404' }],
  [
    'delivered, with the accepted attempt',
    row({ state: 'delivered', lastAttempt: { at: 7, dispatchId: 'd1', events: 3, status: 204, message: 'accepted', result: 'sent', code: null } }),
    { state: 'dispatched', at: 7, dispatchId: 'd1', status: 204, message: 'accepted' },
  ],
  ['delivered, no attempt recorded', row({ state: 'delivered' }), { state: 'dispatched', at: null, dispatchId: null, status: null, message: null }],
] as const)('outcome of a stored event: %s', (_name, r, expected) => {
  expect(eventOutcome(r)).toEqual(expected);
});

const request = (over: Partial<RequestRecord>): RequestRecord => ({
  id: 'req-x-1',
  receivedAt: 1,
  route: 'web',
  repo: null,
  status: 401,
  code: 'signature',
  reason: 'wrong',
  bytes: 10,
  source: null,
  signature: null,
  issues: [],
  event: null,
  duplicateOf: null,
  ...over,
});

test.each([
  [request({}), { state: 'refused', code: 'signature', status: 401, reason: 'wrong' }],
  [request({ code: 'stale', status: 202, reason: 'old' }), { state: 'filtered', code: 'stale', reason: 'old' }],
  [request({ code: 'not_allowed', status: 202, reason: 'x' }), { state: 'filtered', code: 'not_allowed', reason: 'x' }],
  [request({ code: 'duplicate', status: 200, duplicateOf: 'e1' }), { state: 'duplicate', of: 'e1' }],
  [request({ code: 'too_large', status: 413, reason: 'big' }), { state: 'refused', code: 'too_large', status: 413, reason: 'big' }],
] as const)('outcome of a request: %j', (r, expected) => {
  expect(requestOutcome(r)).toEqual(expected);
});

describe('filters', () => {
  const item: DeliverySummary = {
    type: 'event',
    id: 'e1',
    receivedAt: 1,
    route: 'web',
    repo: 'Acme/Web',
    event: factsOf(body('job-vdc-passed.json')),
    outcome: { state: 'stored' },
  };
  test.each([
    [{}, true],
    [{ outcome: 'stored' }, true],
    [{ outcome: 'dead' }, false],
    [{ route: 'web' }, true],
    [{ route: 'mobile' }, false],
    [{ repo: 'acme/web' }, true],
    [{ repo: 'acme/api' }, false],
    [{ kind: 'vdc' }, true],
    [{ kind: 'visual' }, false],
    [{ text: 'LOGIN' }, true],
    [{ text: 'shop-web #12' }, true],
    [{ text: 'eed5eb49' }, true],
    [{ text: 'checkout' }, false],
    [{ text: '   ' }, true],
  ] as const)('%j → %s', (query, expected) => {
    expect(matchesQuery(item, { limit: 10, ...query })).toBe(expected);
  });

  test('a text search never matches a request without a parsed event', () => {
    expect(matchesQuery({ ...item, event: null }, { limit: 10, text: 'login' })).toBe(false);
  });
});

describe('order and cursors', () => {
  test('newest first, then id descending', () => {
    const items = [
      { receivedAt: 1, id: 'a' },
      { receivedAt: 2, id: 'a' },
      { receivedAt: 2, id: 'b' },
    ];
    expect(items.sort(compareNewestFirst)).toEqual([
      { receivedAt: 2, id: 'b' },
      { receivedAt: 2, id: 'a' },
      { receivedAt: 1, id: 'a' },
    ]);
  });

  test('a cursor round-trips; anything else is refused', () => {
    const p = { receivedAt: 1_756_821_791_000, id: '0c3b9a7e-6f1d-4c1e-9a2b-3c4d5e6f7a8b' };
    expect(decodeCursor(encodeCursor(p))).toEqual(p);
    for (const bad of ['', 'x', '!!!', Buffer.from('12.').toString('base64url'), Buffer.from('a.b').toString('base64url'), 'A'.repeat(200)]) {
      expect(decodeCursor(bad)).toBeNull();
    }
  });
});
