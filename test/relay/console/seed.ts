/**
 * A console's worth of deliveries from the Sauce fixtures: one of each outcome, two routes, a
 * Visual build with its refresh history, refused requests of each kind, and a job whose name and
 * build are HTML that would run if the page ever parsed payload text as markup.
 */
import { parseSauceEvent, type SauceEvent } from '../../../src/sauce/event.js';
import type { DispatchAttempt } from '../../../src/relay/console/source.js';
import { sauceFixture } from '../support/common.js';
import type { MemorySource } from './memory-source.js';

/** Would set a global (and show an image) if parsed as HTML. */
export const HOSTILE_NAME = '<img src=x onerror="window.__pwned=1;alert(1)">';
export const HOSTILE_BUILD = '<script>window.__pwned=2</script><b>bold</b>';

const MIN = 60_000;

/** A body as the handler hands a refusal on: the parsed event. */
function eventOf(body: string): SauceEvent {
  const parsed = parseSauceEvent(JSON.parse(body));
  if (!parsed.ok) throw new Error('not an event');
  return parsed.event;
}

function fixture(name: string, changes: Record<string, unknown> = {}): string {
  return JSON.stringify({ ...(JSON.parse(sauceFixture(name).toString('utf8')) as object), ...changes });
}

function attempt(
  at: number,
  dispatchId: string,
  status: number | null,
  message: string,
  result: DispatchAttempt['result'],
  code: DispatchAttempt['code'] = null,
): DispatchAttempt {
  return { at, dispatchId, events: 1, status, message, result, code };
}

export interface Seeded {
  readonly passed: string;
  readonly retrying: string;
  readonly deadMobile: string;
  readonly deadMobile2: string;
  readonly hostile: string;
  readonly visual: string;
  readonly visualRefreshed: string;
  readonly errored: string;
  readonly signature: string;
  readonly invalid: string;
  readonly filtered: string;
  readonly duplicate: string;
}

export function seed(m: MemorySource): Seeded {
  const t = m.clock.now;
  const s = m.store;
  const passed = s.add({
    route: 'web',
    repo: 'acme/web',
    receivedAt: t - 50 * MIN,
    body: sauceFixture('job-vdc-passed.json').toString('utf8'),
    state: 'delivered',
    attemptHistory: [attempt(t - 50 * MIN + 2100, 'd-7f3a91c2', 204, 'accepted', 'sent')],
  }).id;
  const errored = s.add({
    route: 'web',
    repo: 'acme/web',
    receivedAt: t - 44 * MIN,
    body: sauceFixture('job-vdc-errored.json').toString('utf8'),
    state: 'delivered',
    attemptHistory: [attempt(t - 44 * MIN + 2000, 'd-0b81e4aa', 204, 'accepted', 'sent')],
  }).id;
  const visual = s.add({
    route: 'web',
    repo: 'acme/web',
    receivedAt: t - 40 * MIN,
    body: sauceFixture('visual-unapproved.json').toString('utf8'),
    state: 'delivered',
    attemptHistory: [attempt(t - 40 * MIN + 2000, 'd-5c2e77d0', 204, 'accepted', 'sent')],
  }).id;
  const visualRefreshed = s.add({
    route: 'web',
    repo: 'acme/web',
    receivedAt: t - 3 * MIN,
    body: fixture('visual-unapproved.json', { status: 'APPROVED', summary: { errored: 0, approved: 3, equal: 41, rejected: 0, unapproved: 0, queued: 0 } }),
    state: 'pending',
  }).id;
  s.events.get(visual)!.visualChecks = [
    {
      at: t - 39 * MIN,
      outcome: 'unchanged',
      status: 'UNAPPROVED',
      summary: { errored: 0, approved: 0, equal: 41, rejected: 0, unapproved: 3, queued: 0 },
      error: null,
      eventId: null,
    },
    { at: t - 20 * MIN, outcome: 'error', status: null, summary: null, error: 'Sauce API answered 503', eventId: null },
    {
      at: t - 3 * MIN,
      outcome: 'decided',
      status: 'APPROVED',
      summary: { errored: 0, approved: 3, equal: 41, rejected: 0, unapproved: 0, queued: 0 },
      error: null,
      eventId: visualRefreshed,
    },
  ];
  const retrying = s.add({
    route: 'web',
    repo: 'acme/web',
    receivedAt: t - 12 * MIN,
    body: sauceFixture('job-vdc-failed-boolean.json').toString('utf8'),
    state: 'pending',
    attempts: 2,
    nextAttemptAt: t + 40_000,
    lastError: 'GitHub 502: Bad Gateway',
    attemptHistory: [
      attempt(t - 12 * MIN + 2000, 'd-a1b2c3d4', 502, 'Bad Gateway', 'retry', 'server_error'),
      attempt(t - 11 * MIN, 'd-e5f6a7b8', null, 'timed out after 10 s', 'retry', 'timeout'),
    ],
  }).id;
  const deadMobile = s.add({
    route: 'mobile',
    repo: 'acme/mobile',
    receivedAt: t - 30 * MIN,
    body: sauceFixture('job-rdc-failed-tags.json').toString('utf8'),
    state: 'dead',
    attempts: 1,
    lastError: 'GitHub 404: Not Found (the token cannot see acme/mobile)',
    attemptHistory: [attempt(t - 30 * MIN + 2000, 'd-3e4f5a6b', 404, 'Not Found', 'fatal', 'not_found')],
  }).id;
  const deadMobile2 = s.add({
    route: 'mobile',
    repo: 'acme/mobile',
    receivedAt: t - 29 * MIN,
    body: fixture('job-rdc-failed-tags.json', { id: 'a0c1e2f3a4b5c6d7e8f9a0b1c2d3e4f5', name: 'test_checkout_payment_retry' }),
    state: 'dead',
    attempts: 1,
    lastError: 'GitHub 404: Not Found (the token cannot see acme/mobile)',
    attemptHistory: [attempt(t - 29 * MIN + 2000, 'd-3e4f5a6b', 404, 'Not Found', 'fatal', 'not_found')],
  }).id;
  const hostile = s.add({
    route: 'web',
    repo: 'acme/web',
    receivedAt: t - 8 * MIN,
    body: fixture('job-vdc-failed-boolean.json', { id: 'ffeeddccbbaa99887766554433221100', name: HOSTILE_NAME, build: HOSTILE_BUILD }),
    state: 'dead',
    attempts: 1,
    lastError: 'GitHub 422: <b>Invalid</b> request',
    attemptHistory: [attempt(t - 8 * MIN + 2000, 'd-c0ffee00', 422, 'Invalid request. <img src=x onerror=alert(3)>', 'fatal', 'unprocessable')],
  }).id;

  const signature = m.refuse({
    receivedAt: t - 6 * MIN,
    route: 'web',
    status: 401,
    code: 'signature',
    reason: 'signature missing or wrong',
    bytes: 812,
    source: '203.0.113.7',
    signature: 'deadbeefcafebabe00112233445566778899aabbccddeeff0011223344556677',
  }).id;
  m.refuse({ receivedAt: t - 5 * MIN, route: 'web', status: 400, code: 'not_json', reason: 'body is not valid JSON', bytes: 17, source: '203.0.113.7' });
  const invalid = m.refuse({
    receivedAt: t - 4 * MIN,
    route: 'mobile',
    status: 422,
    code: 'invalid_event',
    reason: 'not a Sauce Labs event',
    bytes: 240,
    source: '198.51.100.20',
    signature: 'a'.repeat(64),
    issues: [{ field: 'status', message: 'Invalid option: expected one of "COMPLETE"|"PASSED"|"FAILED"|"ERRORED"' }],
  }).id;
  m.refuse({
    receivedAt: t - 140_000,
    route: 'web',
    status: 413,
    code: 'too_large',
    reason: 'body over the size limit (256 KiB)',
    bytes: 300_000,
    source: '198.51.100.20',
  });
  m.refuse({
    receivedAt: t - 100_000,
    route: null,
    status: 408,
    code: 'timeout',
    reason: 'request timeout: the body did not arrive within 30 s',
    bytes: 0,
    source: '192.0.2.9',
  });
  const filteredBody = sauceFixture('job-vdc-passed.json').toString('utf8');
  const filtered = m.refuse({
    receivedAt: t - 60_000,
    route: 'mobile',
    status: 202,
    code: 'filtered',
    reason: 'filters.failed_only: the event is not a failure',
    bytes: filteredBody.length,
    source: '198.51.100.20',
    signature: 'b'.repeat(64),
    event: eventOf(filteredBody),
  }).id;
  const duplicate = m.refuse({
    receivedAt: t - 30_000,
    route: 'web',
    repo: 'acme/web',
    status: 200,
    code: 'duplicate',
    reason: 'same body as a stored event',
    bytes: filteredBody.length,
    source: '198.51.100.20',
    signature: 'c'.repeat(64),
    event: eventOf(filteredBody),
    duplicateOf: passed,
  }).id;
  return { passed, retrying, deadMobile, deadMobile2, hostile, visual, visualRefreshed, errored, signature, invalid, filtered, duplicate };
}
