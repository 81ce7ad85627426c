import { describe, expect, test } from '@jest/globals';
import { ENVELOPE_VERSION, envelopeSchema, makeEnvelope } from '../../src/sauce/envelope.js';
import { parseSauceTags } from '../../src/sauce/tags.js';
import { REGIONS, appOrigin, isRegion, isSauceUrl, jobUrl, safeSauceUrl } from '../../src/sauce/urls.js';

describe('urls', () => {
  test.each([
    ['us-west-1', 'https://app.saucelabs.com/tests/abc'],
    ['eu-central-1', 'https://app.eu-central-1.saucelabs.com/tests/abc'],
    ['us-east-4', 'https://app.us-east-4.saucelabs.com/tests/abc'],
  ] as const)('jobUrl in %s', (region, want) => {
    expect(jobUrl(region, 'abc')).toBe(want);
    expect(appOrigin(region)).toBe(new URL(want).origin);
  });

  test('job ids are path-encoded and cannot leave the host', () => {
    expect(jobUrl('us-west-1', '../x?y#z')).toBe('https://app.saucelabs.com/tests/..%2Fx%3Fy%23z');
  });

  test.each([
    ['https://app.saucelabs.com/visual/builds/1', true],
    ['https://saucelabs.com/', true],
    ['https://app.eu-central-1.saucelabs.com/x', true],
    ['http://app.saucelabs.com/x', false],
    ['https://saucelabs.com.evil.example/x', false],
    ['https://evilsaucelabs.com/x', false],
    ['https://user:pw@app.saucelabs.com/x', false],
    ['https://app.saucelabs.com:8443/x', false],
    ['javascript:alert(1)', false],
    ['not a url', false],
    ['', false],
    [null, false],
  ] as const)('isSauceUrl(%p) = %p', (url, want) => {
    expect(isSauceUrl(url)).toBe(want);
    expect(safeSauceUrl(url)).toBe(want ? new URL(url as string).href : null);
  });

  test('regions', () => {
    expect(REGIONS.every(isRegion)).toBe(true);
    expect(isRegion('us-east-1')).toBe(false);
  });
});

describe('saucectl tags', () => {
  test('first of each prefix wins; empty values ignored', () => {
    expect(parseSauceTags(['ci:ssha:', 'ci:ssha:abc1234', 'ci:ssha:def5678', 'ci:url:https://x', 'e2e'])).toEqual({
      repo: null,
      ref: null,
      shortSha: 'abc1234',
      ciUrl: 'https://x',
    });
    expect(parseSauceTags([])).toEqual({ repo: null, ref: null, shortSha: null, ciUrl: null });
  });
});

describe('envelope', () => {
  test('round trip, unknown keys kept, version checked', () => {
    const env = makeEnvelope([{ payload: { a: 1 }, id: 'e1', received_at: '2026-01-01T00:00:00Z', route: 'r' }]);
    expect(env.version).toBe(ENVELOPE_VERSION);
    expect(envelopeSchema.parse({ ...env, note: 'x' })['note']).toBe('x');
    expect(envelopeSchema.safeParse({ version: 2, events: [] }).success).toBe(false);
    expect(envelopeSchema.safeParse({ version: 1, events: [{ id: 3 }] }).success).toBe(false);
  });
});
