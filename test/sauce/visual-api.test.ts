import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { VISUAL_STATUSES, type VisualStatus } from '../../src/sauce/schema.js';
import { parseSauceEvent } from '../../src/sauce/event.js';
import {
  applyVisualBuild,
  parseVisualBuildResponse,
  visualApiOrigin,
  visualRefreshDelayMs,
  visualStatusIsOpen,
  VISUAL_BUILD_QUERY,
} from '../../src/sauce/visual-api.js';
import { FIXTURES } from '../relay/support/common.js';

const fixture = (name: string) => readFileSync(join(FIXTURES, 'sauce', name), 'utf8');
const counts = { errored: 0, approved: 3, equal: 41, rejected: 0, unapproved: 0, queued: 0 };

describe('visualStatusIsOpen: which builds the relay keeps re-reading', () => {
  const open: Record<VisualStatus, boolean> = {
    QUEUED: true,
    RUNNING: true,
    UNAPPROVED: true,
    APPROVED: false,
    EQUAL: false,
    EMPTY: false,
    ERRORED: false,
    REJECTED: false,
  };
  test.each(VISUAL_STATUSES.map((s) => [s, open[s]] as const))('%s → %s', (status, expected) => {
    expect(visualStatusIsOpen(status)).toBe(expected);
  });
});

describe('visualApiOrigin: credentials only ever go to api.<region>.saucelabs.com', () => {
  test.each([
    ['us-west-1', 'us-west-1', 'https://api.us-west-1.saucelabs.com'],
    ['eu-central-1', 'us-west-1', 'https://api.eu-central-1.saucelabs.com'],
    ['us-east-4', 'us-west-1', 'https://api.us-east-4.saucelabs.com'],
    ['us-east-1', 'us-west-1', 'https://api.us-east-1.saucelabs.com'],
    [null, 'eu-central-1', 'https://api.eu-central-1.saucelabs.com'],
    ['', 'us-west-1', 'https://api.us-west-1.saucelabs.com'],
    ['evil.example.com#', 'us-west-1', 'https://api.us-west-1.saucelabs.com'],
    ['eu-central-1.evil.com/x', 'eu-central-1', 'https://api.eu-central-1.saucelabs.com'],
    ['us-west-1@evil.com', 'us-west-1', 'https://api.us-west-1.saucelabs.com'],
    ['US-WEST-1', 'us-east-4', 'https://api.us-east-4.saucelabs.com'],
  ] as const)('data_center %j (route %s) → %s', (dc, fallback, expected) => {
    expect(visualApiOrigin(dc, fallback)).toBe(expected);
  });
});

describe('parseVisualBuildResponse', () => {
  test('a build: status and the six counts', () => {
    expect(parseVisualBuildResponse({ data: { build: { status: 'APPROVED', ...counts } } })).toEqual({
      kind: 'found',
      build: { status: 'APPROVED', summary: counts },
    });
  });
  test('no such build', () => {
    expect(parseVisualBuildResponse({ data: { build: null } })).toEqual({ kind: 'not_found' });
  });
  test.each([
    ['GraphQL errors', { data: null, errors: [{ message: 'Variable "$id" got invalid value' }] }, /GraphQL error: Variable/],
    ['errors beside data', { data: { build: null }, errors: [{ message: 'denied' }] }, /GraphQL error: denied/],
    ['no data', {}, /no data/],
    ['a status outside the enum', { data: { build: { status: 'DONE', ...counts } } }, /^data\.build\.status: /],
    ['a missing count', { data: { build: { status: 'APPROVED', ...counts, queued: undefined } } }, /^data\.build\.queued: /],
    ['a negative count', { data: { build: { status: 'APPROVED', ...counts, equal: -1 } } }, /^data\.build\.equal: /],
    ['not an object', 'nope', /^\(root\): /],
  ])('%s → invalid, naming the field', (_name, json, reason) => {
    const read = parseVisualBuildResponse(json);
    expect(read.kind).toBe('invalid');
    expect(read.kind === 'invalid' && read.reason).toMatch(reason);
  });
  test('the query asks for exactly what the parser reads', () => {
    for (const key of Object.keys(counts)) expect(VISUAL_BUILD_QUERY).toContain(`${key}: diffCountExtended(input: { status: ${key.toUpperCase()} })`);
    expect(VISUAL_BUILD_QUERY).toMatch(/build\(id: \$id\) \{\s+status/);
  });
});

describe('applyVisualBuild: the event as it reads now', () => {
  const body = fixture('visual-unapproved.json');

  test('a changed status and summary: everything else kept, still a valid Sauce Visual event', () => {
    const { body: next, changed } = applyVisualBuild(body, { status: 'APPROVED', summary: counts });
    expect(changed).toBe(true);
    const before = JSON.parse(body) as Record<string, unknown>;
    const after = JSON.parse(next) as Record<string, unknown>;
    expect(after).toEqual({ ...before, status: 'APPROVED', summary: counts });
    expect(Object.keys(after)).toEqual(Object.keys(before));
    const parsed = parseSauceEvent(after);
    expect(parsed.ok && parsed.event.kind === 'visual' && parsed.event.status).toBe('APPROVED');
  });

  test('what the body already says → unchanged, the same bytes', () => {
    const event = JSON.parse(body) as { status: VisualStatus; summary: typeof counts };
    expect(applyVisualBuild(body, { status: event.status, summary: event.summary })).toEqual({ body, changed: false });
  });

  test.each([
    ['only the status', { status: 'REJECTED' as const, summary: { errored: 0, approved: 0, equal: 41, rejected: 0, unapproved: 3, queued: 0 } }],
    ['only one count', { status: 'UNAPPROVED' as const, summary: { errored: 0, approved: 1, equal: 41, rejected: 0, unapproved: 2, queued: 0 } }],
  ])('%s differs → changed', (_name, build) => {
    expect(applyVisualBuild(body, build).changed).toBe(true);
  });

  test('unknown fields, including inside summary, are kept', () => {
    const withExtra = JSON.stringify({ ...(JSON.parse(body) as object), vendor_field: { a: 1 }, summary: { ...counts, new_count: 7 } });
    const next = JSON.parse(applyVisualBuild(withExtra, { status: 'UNAPPROVED', summary: counts }).body) as Record<string, unknown>;
    expect(next.vendor_field).toEqual({ a: 1 });
    expect(next.summary).toEqual({ ...counts, new_count: 7 });
  });
});

describe('visualRefreshDelayMs: often while reviews happen, then less', () => {
  const MIN = 60_000;
  test.each([
    [0, MIN],
    [59 * MIN, MIN],
    [60 * MIN, 5 * MIN],
    [24 * 60 * MIN - 1, 5 * MIN],
    [24 * 60 * MIN, 15 * MIN],
    [3 * 24 * 60 * MIN, 15 * MIN],
  ])('age %d ms → %d ms', (age, expected) => {
    expect(visualRefreshDelayMs(age, MIN)).toBe(expected);
  });
});
