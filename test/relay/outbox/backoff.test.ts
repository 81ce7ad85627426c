import { describe, expect, it } from '@jest/globals';
import { backoffDelayMs, nextAttemptAt, tooOld } from '../../../src/relay/outbox/backoff.js';

const NOW = Date.UTC(2026, 0, 1, 12, 0, 0);

describe('backoffDelayMs', () => {
  const opts = { baseMs: 1_000, capMs: 60_000 };
  it('doubles per attempt, between half and all of the step', () => {
    expect(backoffDelayMs(1, opts, () => 0)).toBe(500);
    expect(backoffDelayMs(1, opts, () => 1)).toBe(1_000);
    expect(backoffDelayMs(2, opts, () => 0)).toBe(1_000);
    expect(backoffDelayMs(4, opts, () => 1)).toBe(8_000);
  });
  it('is capped, even for huge attempt counts', () => {
    expect(backoffDelayMs(50, opts, () => 1)).toBe(60_000);
    expect(backoffDelayMs(10_000, opts, () => 0)).toBe(30_000);
  });
  it('spreads retries (jitter)', () => {
    const seen = new Set(Array.from({ length: 50 }, () => backoffDelayMs(5, opts)));
    expect(seen.size).toBeGreaterThan(10);
    for (const d of seen) expect(d).toBeGreaterThanOrEqual(8_000);
  });
});

describe('nextAttemptAt and tooOld', () => {
  const opts = { baseMs: 1_000, capMs: 60_000 };
  it('uses the rate-limit hint over backoff', () => {
    expect(nextAttemptAt({ kind: 'retry', code: 'rate_limit', reason: 'x', retryAfterMs: 5_000 }, 9, NOW, NOW + 1e9, opts)).toBe(NOW + 5_000);
    expect(nextAttemptAt({ kind: 'retry', code: 'server_error', reason: 'x' }, 1, NOW, NOW + 1e9, opts, () => 1)).toBe(NOW + 1_000);
  });
  it('never schedules past the deadline, so the event gets one last try then dies', () => {
    expect(nextAttemptAt({ kind: 'retry', code: 'rate_limit', reason: 'x', retryAfterMs: 60_000 }, 1, NOW, NOW + 10_000, opts)).toBe(NOW + 10_000);
    expect(nextAttemptAt({ kind: 'retry', code: 'server_error', reason: 'x' }, 1, NOW, NOW - 10, opts)).toBe(NOW);
  });
  it('tooOld at exactly the maximum age', () => {
    expect(tooOld(NOW, NOW + 999, 1_000)).toBe(false);
    expect(tooOld(NOW, NOW + 1_000, 1_000)).toBe(true);
  });
});
