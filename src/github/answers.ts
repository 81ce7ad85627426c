/**
 * What GitHub's answers mean, shared by the Action and the relay: a response classified as sent,
 * worth retrying (with the wait GitHub asks for) or final, and the wait a rate limit asks for.
 * Pure: the caller passes `now`.
 */
import { truncateChars } from './limits.js';

/** Why a request is worth another try: a code for programs (metrics, policies); `reason` is for people. */
export type RetryCode = 'rate_limit' | 'timeout' | 'network' | 'server_error';
/** Why a request will never succeed as it is. */
export type FatalCode = 'bad_credentials' | 'forbidden' | 'not_found' | 'unprocessable' | 'client_error' | 'invalid_target';

/**
 * What GitHub itself said, when it answered: its HTTP status and, for an error, the `message` of
 * its body (absent when there was no answer: a timeout, a network error, a dry run).
 */
export interface GitHubAnswer {
  status?: number;
  message?: string;
}

/**
 * What one request to GitHub came to. `retry` carries the wait GitHub asked for, when it did.
 * Decisions are made on `kind` and `code`; `reason` only explains them (logs, dead-letter list);
 * `status` and `message` are GitHub's answer as it came (the delivery console shows them).
 */
export type DispatchOutcome =
  | ({ kind: 'sent' } & GitHubAnswer)
  | ({ kind: 'retry'; code: RetryCode; reason: string; retryAfterMs?: number } & GitHubAnswer)
  | ({ kind: 'fatal'; code: FatalCode; reason: string } & GitHubAnswer);

export type Headers = Readonly<Record<string, string | number | undefined>>;

/** GitHub's message is kept up to this many characters (it is for people; GitHub's are short). */
export const MAX_MESSAGE_CHARS = 500;

/** GitHub's message as kept beside an outcome (cut by characters, never inside a surrogate pair). */
export function keptMessage(message: string): string {
  return truncateChars(message, MAX_MESSAGE_CHARS);
}

/** GitHub asks integrations to wait at least a minute after a secondary rate limit with no hint. */
export const DEFAULT_RATE_LIMIT_WAIT_MS = 60_000;
/** Never trust a rate-limit hint beyond this (a clock far off, or a bogus header). */
export const MAX_RATE_LIMIT_WAIT_MS = 60 * 60_000;

function header(headers: Headers, name: string): string | undefined {
  const value = headers[name] ?? headers[name.toLowerCase()];
  if (value !== undefined) return String(value);
  const wanted = name.toLowerCase();
  for (const [key, v] of Object.entries(headers)) if (key.toLowerCase() === wanted && v !== undefined) return String(v);
  return undefined;
}

/**
 * How long GitHub asks us to wait, from `retry-after` (seconds or an HTTP date) or, when the
 * primary limit is spent, `x-ratelimit-reset` (epoch seconds). Undefined when there is no hint.
 */
export function rateLimitWaitMs(headers: Headers, now: number): number | undefined {
  const retryAfter = header(headers, 'retry-after')?.trim();
  if (retryAfter) {
    let ms: number | undefined;
    if (/^\d+(\.\d+)?$/.test(retryAfter)) ms = Number(retryAfter) * 1000;
    else {
      const at = Date.parse(retryAfter);
      if (!Number.isNaN(at)) ms = at - now;
    }
    if (ms !== undefined) return clamp(ms, 0, MAX_RATE_LIMIT_WAIT_MS);
  }
  const remaining = header(headers, 'x-ratelimit-remaining');
  const reset = header(headers, 'x-ratelimit-reset');
  if (remaining !== undefined && Number(remaining) === 0 && reset !== undefined && /^\d+$/.test(reset.trim())) {
    // One extra second: the reset instant is rounded down to whole seconds.
    return clamp(Number(reset) * 1000 - now + 1000, 0, MAX_RATE_LIMIT_WAIT_MS);
  }
  return undefined;
}

function clamp(n: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, Math.ceil(n)));
}

function isSecondaryRateLimit(message: string | undefined): boolean {
  return message !== undefined && /rate limit/i.test(message);
}

/**
 * A rate limit: retry after `waitMs` (clamped to at most MAX_RATE_LIMIT_WAIT_MS). For a limit detected
 * elsewhere too (the relay's Octokit throttling plugin reports primary and secondary limits itself).
 */
export function rateLimited(waitMs: number, reason: string): Extract<DispatchOutcome, { kind: 'retry' }> {
  return { kind: 'retry', code: 'rate_limit', reason, retryAfterMs: clamp(waitMs, 0, MAX_RATE_LIMIT_WAIT_MS) };
}

/**
 * The outcome of one dispatch attempt from GitHub's answer. `message` is the error body's
 * message, when there is one (403 is a rate limit only when its headers or message say so).
 */
export function classifyResponse(status: number, headers: Headers, now: number, message?: string): DispatchOutcome {
  const answer: GitHubAnswer = message ? { status, message: keptMessage(message) } : { status };
  if (status >= 200 && status < 300) return { kind: 'sent', status };
  const wait = rateLimitWaitMs(headers, now);
  const detail = message ? `: ${message.slice(0, 200)}` : '';
  if (status === 429 || (status === 403 && (wait !== undefined || header(headers, 'x-ratelimit-remaining') === '0' || isSecondaryRateLimit(message)))) {
    return { ...rateLimited(wait ?? DEFAULT_RATE_LIMIT_WAIT_MS, `rate limited (${status})${detail}`), ...answer };
  }
  if (status >= 500 || status === 408) {
    const code = status === 408 ? 'timeout' : 'server_error';
    return wait !== undefined
      ? { kind: 'retry', code, reason: `GitHub ${status}${detail}`, retryAfterMs: wait, ...answer }
      : { kind: 'retry', code, reason: `GitHub ${status}${detail}`, ...answer };
  }
  if (status === 401) return { kind: 'fatal', code: 'bad_credentials', reason: `401 bad credentials${detail}`, ...answer };
  if (status === 403) return { kind: 'fatal', code: 'forbidden', reason: `403 forbidden (the token needs contents: write)${detail}`, ...answer };
  if (status === 404) return { kind: 'fatal', code: 'not_found', reason: `404 repository not found or not accessible to the token${detail}`, ...answer };
  if (status === 422) return { kind: 'fatal', code: 'unprocessable', reason: `422 dispatch rejected${detail}`, ...answer };
  return { kind: 'fatal', code: 'client_error', reason: `unexpected ${status}${detail}`, ...answer };
}
