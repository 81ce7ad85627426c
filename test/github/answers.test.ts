import { describe, expect, it } from '@jest/globals';
import { DEFAULT_RATE_LIMIT_WAIT_MS, MAX_RATE_LIMIT_WAIT_MS, classifyResponse, rateLimitWaitMs } from '../../src/github/answers.js';

const NOW = Date.UTC(2026, 0, 1, 12, 0, 0);

describe('rateLimitWaitMs', () => {
  it('reads retry-after in seconds', () => {
    expect(rateLimitWaitMs({ 'retry-after': '30' }, NOW)).toBe(30_000);
    expect(rateLimitWaitMs({ 'Retry-After': '1.5' }, NOW)).toBe(1_500);
  });
  it('reads retry-after as an HTTP date', () => {
    expect(rateLimitWaitMs({ 'retry-after': new Date(NOW + 90_000).toUTCString() }, NOW)).toBe(90_000);
    expect(rateLimitWaitMs({ 'retry-after': new Date(NOW - 5_000).toUTCString() }, NOW)).toBe(0);
  });
  it('reads x-ratelimit-reset only when the quota is spent', () => {
    const reset = String(Math.floor(NOW / 1000) + 120);
    expect(rateLimitWaitMs({ 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': reset }, NOW)).toBe(121_000);
    expect(rateLimitWaitMs({ 'x-ratelimit-remaining': '17', 'x-ratelimit-reset': reset }, NOW)).toBeUndefined();
  });
  it('prefers retry-after and caps absurd hints', () => {
    const reset = String(Math.floor(NOW / 1000) + 120);
    expect(rateLimitWaitMs({ 'retry-after': '2', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': reset }, NOW)).toBe(2_000);
    expect(rateLimitWaitMs({ 'retry-after': '999999' }, NOW)).toBe(MAX_RATE_LIMIT_WAIT_MS);
    expect(rateLimitWaitMs({ 'retry-after': 'soon' }, NOW)).toBeUndefined();
    expect(rateLimitWaitMs({}, NOW)).toBeUndefined();
  });
});

describe('classifyResponse', () => {
  it('2xx is sent', () => {
    expect(classifyResponse(204, {}, NOW)).toEqual({ kind: 'sent' });
  });
  it('429 waits per retry-after, or a minute without a hint', () => {
    expect(classifyResponse(429, { 'retry-after': '3' }, NOW)).toMatchObject({ kind: 'retry', retryAfterMs: 3_000 });
    expect(classifyResponse(429, {}, NOW)).toMatchObject({ kind: 'retry', retryAfterMs: DEFAULT_RATE_LIMIT_WAIT_MS });
  });
  it('403 is a rate limit only with rate-limit headers or message', () => {
    const reset = String(Math.floor(NOW / 1000) + 60);
    expect(classifyResponse(403, { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': reset }, NOW)).toMatchObject({ kind: 'retry', retryAfterMs: 61_000 });
    expect(classifyResponse(403, { 'retry-after': '10' }, NOW)).toMatchObject({ kind: 'retry', retryAfterMs: 10_000 });
    expect(classifyResponse(403, { 'x-ratelimit-remaining': '4000' }, NOW, 'You have exceeded a secondary rate limit')).toMatchObject({ kind: 'retry' });
    expect(classifyResponse(403, { 'x-ratelimit-remaining': '4000' }, NOW, 'Resource not accessible by integration')).toMatchObject({ kind: 'fatal' });
  });
  it('5xx and 408 retry with backoff (no hint) or the hint', () => {
    for (const status of [500, 502, 503, 504, 408]) {
      const outcome = classifyResponse(status, {}, NOW);
      expect(outcome.kind).toBe('retry');
      expect(outcome).not.toHaveProperty('retryAfterMs');
    }
    expect(classifyResponse(503, { 'retry-after': '7' }, NOW)).toMatchObject({ kind: 'retry', retryAfterMs: 7_000 });
  });
  it('401, 404, 422 and other 4xx are fatal, with the reason', () => {
    expect(classifyResponse(401, {}, NOW, 'Bad credentials')).toEqual({ kind: 'fatal', reason: '401 bad credentials: Bad credentials' });
    expect(classifyResponse(404, {}, NOW)).toMatchObject({ kind: 'fatal', reason: expect.stringContaining('404') });
    expect(classifyResponse(422, {}, NOW, 'Validation Failed')).toMatchObject({ kind: 'fatal', reason: expect.stringContaining('Validation Failed') });
    expect(classifyResponse(400, {}, NOW)).toMatchObject({ kind: 'fatal' });
  });
});
