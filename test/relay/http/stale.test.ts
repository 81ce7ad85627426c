import { parseSauceEvent } from '../../../src/sauce/event.js';
import { eventTime, staleness } from '../../../src/relay/http/stale.js';
import { sauceFixture } from '../support/common.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const RECEIVED = Date.parse('2026-11-30T12:00:00Z');

/** A job event (from a fixture) with its two times replaced; undefined drops the field. */
function job(times: { modification_time?: string | null; creation_time?: string | null }) {
  const raw: Record<string, unknown> = { ...JSON.parse(sauceFixture('job-vdc-passed.json').toString('utf8')) };
  delete raw.modification_time;
  delete raw.creation_time;
  Object.assign(raw, times);
  const parsed = parseSauceEvent(raw);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.issues));
  return { event: parsed.event, raw };
}

const iso = (ms: number) => new Date(ms).toISOString();

describe('staleness of job events (24 h limit)', () => {
  test.each([
    ['modified an hour ago', { modification_time: iso(RECEIVED - HOUR) }, null],
    ['modified exactly at the limit', { modification_time: iso(RECEIVED - DAY) }, null],
    ['modified a second past the limit', { modification_time: iso(RECEIVED - DAY - 1000) }, 'stale'],
    ['modified years ago', { modification_time: '2023-01-01T00:00:00Z', creation_time: '2023-01-01T00:00:00Z' }, 'stale'],
    ['created long ago, modified now: modification_time counts', { modification_time: iso(RECEIVED), creation_time: '2023-01-01T00:00:00Z' }, null],
    ['no modification_time: creation_time counts', { creation_time: iso(RECEIVED - 2 * DAY) }, 'stale'],
    ['no modification_time, created recently', { creation_time: iso(RECEIVED - HOUR) }, null],
    ['an unparseable modification_time: creation_time counts', { modification_time: 'yesterday', creation_time: iso(RECEIVED - 2 * DAY) }, 'stale'],
    ['no time at all: cannot be judged, passes', {}, null],
    ['dated an hour in the future: a clock difference, passes', { modification_time: iso(RECEIVED + HOUR) }, null],
    ['dated a year in the future: passes', { modification_time: iso(RECEIVED + 365 * DAY) }, null],
  ] as const)('%s', (_what, times, expected) => {
    const { event, raw } = job(times);
    expect(staleness(event, eventTime(event, raw), RECEIVED, DAY)?.code ?? null).toBe(expected);
  });

  test('the reason names the field, its time and the limit', () => {
    const { event, raw } = job({ modification_time: '2025-09-02T14:05:17Z' });
    expect(staleness(event, eventTime(event, raw), RECEIVED, DAY)).toEqual({
      code: 'stale',
      reason: "stale: the job's modification_time 2025-09-02T14:05:17.000Z is more than 24 h before it was received (2026-11-30T12:00:00.000Z)",
    });
    const created = job({ creation_time: '2025-09-02T14:03:11Z' });
    expect(staleness(created.event, eventTime(created.event, created.raw), RECEIVED, 90 * 60_000)?.reason).toMatch(
      /^stale: the job's creation_time .* more than 1\.5 h before/,
    );
  });

  test('Visual build events carry no time of their own: never stale', () => {
    const raw = JSON.parse(sauceFixture('visual-approved.json').toString('utf8')) as unknown;
    const parsed = parseSauceEvent(raw);
    if (!parsed.ok) throw new Error('fixture');
    expect(eventTime(parsed.event, raw)).toBeNull();
    expect(staleness(parsed.event, eventTime(parsed.event, raw), RECEIVED + 10 * 365 * DAY, DAY)).toBeNull();
  });
});
