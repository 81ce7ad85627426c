/**
 * Pure retry policy for repository_dispatch: how long to wait before the next attempt, and when an
 * event is too old to keep trying (what an answer means is src/github/answers.ts). No I/O, no clock: the
 * caller passes `now` and, for jitter, a random source.
 */
import type { DispatchOutcome } from '../../github/answers.js';

export interface BackoffOptions {
  /** First retry waits about this long. */
  readonly baseMs: number;
  /** Longest wait between two attempts. */
  readonly capMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 1_000, capMs: 5 * 60_000 };

/**
 * Exponential backoff with "equal jitter": half the delay is fixed, half random, so retries
 * spread out but never collapse to zero. `attempt` counts attempts already made (1 = first retry).
 */
export function backoffDelayMs(attempt: number, options: BackoffOptions = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const exp = Math.min(options.capMs, options.baseMs * 2 ** Math.max(0, Math.min(attempt - 1, 30)));
  return Math.round(exp / 2 + random() * (exp / 2));
}

/** True when an event received at `since` should be given up on at `now`. */
export function tooOld(since: number, now: number, maxAgeMs: number): boolean {
  return now - since >= maxAgeMs;
}

/**
 * When to try again after a retryable outcome. A rate-limit hint wins over backoff. Never later
 * than the deadline (`since + maxAgeMs`), so the event is tried once more, then dead-lettered.
 */
export function nextAttemptAt(
  outcome: Extract<DispatchOutcome, { kind: 'retry' }>,
  attempt: number,
  now: number,
  deadline: number,
  options: BackoffOptions = DEFAULT_BACKOFF,
  random: () => number = Math.random,
): number {
  const delay = outcome.retryAfterMs ?? backoffDelayMs(attempt, options, random);
  return Math.min(now + delay, Math.max(now, deadline));
}
