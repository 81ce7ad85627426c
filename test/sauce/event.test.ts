import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { describeIssues, familyOf, parseSauceEvent, parseSauceTime, type JobEvent, type VisualEvent } from '../../src/sauce/event.js';
import { JOB_STATUSES, VISUAL_STATUSES, jobEventSchema, visualEventSchema } from '../../src/sauce/schema.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'sauce');
const fixture = (name: string): Record<string, unknown> => JSON.parse(readFileSync(join(FIXTURES, name), 'utf8')) as Record<string, unknown>;
const JOB = fixture('job-vdc-passed.json');
const VISUAL = fixture('visual-approved.json');

function job(over: Record<string, unknown>): JobEvent {
  const r = parseSauceEvent({ ...JOB, ...over });
  if (!r.ok) throw new Error(describeIssues(r.issues));
  if (r.event.kind !== 'job') throw new Error('not a job');
  return r.event;
}

const PASSED_FORMS: [unknown, boolean | null][] = [
  [true, true],
  [1, true],
  ['1', true],
  ['true', true],
  ['TRUE', true],
  [false, false],
  [0, false],
  ['0', false],
  ['false', false],
  [null, null],
  [undefined, null],
  ['', null],
];

describe('job events', () => {
  test('every fixture parses', () => {
    for (const f of readdirSync(FIXTURES).filter((n) => n.endsWith('.json'))) {
      const r = parseSauceEvent(fixture(f));
      expect([f, r.ok]).toEqual([f, true]);
    }
  });

  const table = JOB_STATUSES.flatMap((status) => PASSED_FORMS.map(([form, want]) => [status, form, want] as const));
  test.each(table)('status %s × passed %p → passed %p', (status, form, want) => {
    const over: Record<string, unknown> = { status };
    if (form === undefined) {
      const { passed: _omit, ...rest } = JOB;
      const r = parseSauceEvent({ ...rest, status });
      expect(r.ok && r.event.kind === 'job' && r.event.passed).toBe(want);
      return;
    }
    over['passed'] = form;
    const e = job(over);
    expect(e.status).toBe(status);
    expect(e.passed).toBe(want);
  });

  test.each([['yes'], [2], [{}], [[]]])('passed %p is an error naming the field', (form) => {
    const r = parseSauceEvent({ ...JOB, passed: form });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(describeIssues(r.issues)).toMatch(/^passed: /);
  });

  test.each([['CANCELLED'], [''], [null], [3]])('status %p outside the enum is an error naming the field', (status) => {
    const r = parseSauceEvent({ ...JOB, status });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.issues.map((i) => i.field)).toContain('status');
  });

  test('status is case-insensitive; data_type must be vdc or rdc', () => {
    expect(job({ status: ' passed ' }).status).toBe('PASSED');
    const r = parseSauceEvent({ ...JOB, data_type: 'xdc' });
    expect(!r.ok && r.issues.map((i) => i.field)).toEqual(['data_type']);
  });

  test.each([
    ['128.0.6613.84', '128.0.6613.84'],
    [131, '131'],
    ['', null],
    [null, null],
  ])('browser_version %p → %p', (v, want) => {
    expect(job({ browser_version: v }).browserVersion).toBe(want);
  });

  test.each([[''], [null], [undefined]])('empty forms %p of text fields are alike', (v) => {
    const e = job({ commit_id: v, branch_name: v, error: v, device: v, build: v });
    expect([e.commitId, e.branchName, e.error, e.device, e.build]).toEqual([null, null, null, null, null]);
  });

  test('unknown fields are kept by the model', () => {
    const parsed = jobEventSchema.parse({ ...JOB, sl_url: 'https://app.saucelabs.com/x', extra: { a: 1 } });
    expect(parsed['sl_url']).toBe('https://app.saucelabs.com/x');
    expect(parsed['extra']).toEqual({ a: 1 });
    expect(parseSauceEvent({ ...JOB, sl_url: 'x' }).ok).toBe(true);
  });

  test('duration, time, tags and family', () => {
    const e = job({ duration_sec: '93', tags: ['ci:ssha:abc1234', 'ci:ref:main', 'ci:repo:acme/shop', 7] });
    expect(e.durationSec).toBe(93);
    expect(e.sauceTags).toEqual({ repo: 'acme/shop', ref: 'main', shortSha: 'abc1234', ciUrl: null });
    expect(e.tags).toContain('7');
    expect(e.modifiedAt).toBe(Date.parse('2025-09-02T14:05:17Z'));
    expect(familyOf(e)).toBe('vdc');
    expect(parseSauceTime('not a date')).toBeNull();
    expect(parseSauceTime(null)).toBeNull();
  });

  test('rdc fixture: commit only in tags', () => {
    const r = parseSauceEvent(fixture('job-rdc-failed-tags.json'));
    expect(r.ok && r.event.kind === 'job' && [r.event.family, r.event.commitId, r.event.sauceTags.shortSha]).toEqual(['rdc', null, '9fceb02']);
  });
});

describe('Visual events', () => {
  test.each(VISUAL_STATUSES.map((s) => [s]))('status %s parses', (status) => {
    const r = parseSauceEvent({ ...VISUAL, status });
    expect(r.ok).toBe(true);
    const e = (r as { event: VisualEvent }).event;
    expect(e.kind).toBe('visual');
    expect(e.status).toBe(status);
    expect(familyOf(e)).toBe('visual');
  });

  test('status outside the enum names the field', () => {
    const r = parseSauceEvent({ ...VISUAL, status: 'PENDING' });
    expect(!r.ok && r.issues.map((i) => i.field)).toEqual(['status']);
  });

  test('summary counts: null and absent are 0, negatives are errors naming the field', () => {
    const r = parseSauceEvent({ ...VISUAL, summary: { errored: null, approved: 3 } });
    expect(r.ok && r.event.kind === 'visual' && r.event.summary).toEqual({ errored: 0, approved: 3, equal: 0, rejected: 0, unapproved: 0, queued: 0 });
    const bad = parseSauceEvent({ ...VISUAL, summary: { ...(VISUAL['summary'] as object), unapproved: -1 } });
    expect(!bad.ok && bad.issues.map((i) => i.field)).toEqual(['summary.unapproved']);
  });

  test('branch and project optional; unknown fields kept', () => {
    const e = parseSauceEvent(fixture('visual-equal-eu-no-branch.json'));
    expect(e.ok && e.event.kind === 'visual' && [e.event.branch, e.event.project, e.event.dataCenter]).toEqual([null, null, 'eu-central-1']);
    expect(visualEventSchema.parse({ ...VISUAL, future: 1 })['future']).toBe(1);
  });

  test('not a Sauce event', () => {
    for (const v of [null, [], 'x', { hello: 1 }]) expect(parseSauceEvent(v).ok).toBe(false);
  });
});
