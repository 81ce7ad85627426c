import { describe, expect, it } from '@jest/globals';
import {
  DEFAULT_RATE_LIMIT_WAIT_MS,
  MAX_MESSAGE_CHARS,
  MAX_RATE_LIMIT_WAIT_MS,
  classifyResponse,
  rateLimitWaitMs,
  rateLimited,
} from '../../src/github/answers.js';

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
    expect(classifyResponse(204, {}, NOW)).toEqual({ kind: 'sent', status: 204 });
    expect(classifyResponse(200, {}, NOW)).toEqual({ kind: 'sent', status: 200 });
  });
  it('429 waits per retry-after, or a minute without a hint', () => {
    expect(classifyResponse(429, { 'retry-after': '3' }, NOW)).toMatchObject({ kind: 'retry', code: 'rate_limit', retryAfterMs: 3_000 });
    expect(classifyResponse(429, {}, NOW)).toMatchObject({ kind: 'retry', code: 'rate_limit', retryAfterMs: DEFAULT_RATE_LIMIT_WAIT_MS });
  });
  it('403 is a rate limit only with rate-limit headers or message', () => {
    const reset = String(Math.floor(NOW / 1000) + 60);
    expect(classifyResponse(403, { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': reset }, NOW)).toMatchObject({
      kind: 'retry',
      code: 'rate_limit',
      retryAfterMs: 61_000,
    });
    expect(classifyResponse(403, { 'retry-after': '10' }, NOW)).toMatchObject({ kind: 'retry', code: 'rate_limit', retryAfterMs: 10_000 });
    // A secondary limit may come as a 403 with no rate-limit header at all: the message says it.
    expect(classifyResponse(403, {}, NOW, 'You have exceeded a secondary rate limit')).toMatchObject({
      kind: 'retry',
      code: 'rate_limit',
      retryAfterMs: DEFAULT_RATE_LIMIT_WAIT_MS,
    });
    expect(classifyResponse(403, { 'x-ratelimit-remaining': '4000' }, NOW, 'Resource not accessible by integration')).toMatchObject({
      kind: 'fatal',
      code: 'forbidden',
    });
  });
  it.each([
    [500, 'server_error'],
    [502, 'server_error'],
    [503, 'server_error'],
    [504, 'server_error'],
    [408, 'timeout'],
  ])('%i retries with backoff (no hint), code %s', (status, code) => {
    const outcome = classifyResponse(status, {}, NOW);
    expect(outcome).toMatchObject({ kind: 'retry', code });
    expect(outcome).not.toHaveProperty('retryAfterMs');
  });
  it('5xx with a hint waits as asked', () => {
    expect(classifyResponse(503, { 'retry-after': '7' }, NOW)).toMatchObject({ kind: 'retry', code: 'server_error', retryAfterMs: 7_000 });
  });
  it.each([
    [401, 'bad_credentials'],
    [403, 'forbidden'],
    [404, 'not_found'],
    [422, 'unprocessable'],
    [400, 'client_error'],
    [410, 'client_error'],
  ])('%i is fatal with code %s', (status, code) => {
    expect(classifyResponse(status, {}, NOW)).toMatchObject({ kind: 'fatal', code });
  });
  it("the reason carries GitHub's message for people; the status and the message come as GitHub sent them", () => {
    expect(classifyResponse(401, {}, NOW, 'Bad credentials')).toEqual({
      kind: 'fatal',
      code: 'bad_credentials',
      reason: '401 bad credentials: Bad credentials',
      status: 401,
      message: 'Bad credentials',
    });
    expect(classifyResponse(502, {}, NOW)).toEqual({ kind: 'retry', code: 'server_error', reason: 'GitHub 502', status: 502 });
    expect(classifyResponse(429, { 'retry-after': '1' }, NOW, 'slow down')).toMatchObject({ status: 429, message: 'slow down' });
    expect(classifyResponse(422, {}, NOW, 'x'.repeat(2000)).message).toHaveLength(MAX_MESSAGE_CHARS);
    expect(classifyResponse(422, {}, NOW, 'Validation Failed')).toMatchObject({ reason: expect.stringContaining('Validation Failed') });
  });
});

describe('rateLimited', () => {
  it('is a rate_limit retry with the wait, clamped', () => {
    expect(rateLimited(5_000, 'x')).toEqual({ kind: 'retry', code: 'rate_limit', reason: 'x', retryAfterMs: 5_000 });
    expect(rateLimited(-1, 'x').retryAfterMs).toBe(0);
    expect(rateLimited(10 * MAX_RATE_LIMIT_WAIT_MS, 'x').retryAfterMs).toBe(MAX_RATE_LIMIT_WAIT_MS);
  });
});
