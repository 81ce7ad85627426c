/**
 * Sends one `repository_dispatch` and says what happened, without retrying: retries belong to
 * the dispatcher, which keeps the events stored meanwhile (a retry inside the request would hold
 * a lease and hide the wait from the store). In serverless mode the handler calls this directly.
 *
 * Octokit's plugins, for what they do well:
 * - `@octokit/plugin-throttling` paces content-creating requests (GitHub asks for one second
 *   between them; `writeSpacingMs`) and detects primary and secondary rate limits, including a
 *   secondary limit answered as a 403 with no rate-limit header. Its handlers answer "do not
 *   retry here": the limit and its wait become a `rate_limit` outcome, and the dispatcher pauses
 *   every send until then and reschedules the events in the store.
 * - `@octokit/plugin-retry` is not used here. It retries inside the request, in memory: the
 *   dispatcher's lease would be held through its waits (and could run out mid-request), a restart
 *   would forget them, and the store would not show the event as waiting. That part, the durable
 *   retry across restarts (backoff.ts, `next_attempt_at` in the store), is the one this relay keeps.
 *
 * Auth: a token (`GITHUB_TOKEN`), or a GitHub App (`@octokit/auth-app`): the installation is looked
 * up once per repository (`GET /repos/{owner}/{repo}/installation`) and its token is cached and
 * renewed by the library. No credentials: dry-run, which logs the dispatch it would make.
 *
 * HTTP: Octokit's default (Node's fetch, keep-alive) with a timeout on every request.
 */
import { randomUUID } from 'node:crypto';
import { Octokit } from '@octokit/rest';
import { createAppAuth } from '@octokit/auth-app';
import { throttling } from '@octokit/plugin-throttling';
import Bottleneck from 'bottleneck';
import type { Logger } from '../logger.js';
import { classifyResponse, keptMessage, rateLimited, type DispatchOutcome, type Headers } from '../../github/answers.js';
import { payloadBytes } from '../../github/limits.js';
import { timedFetch } from './timed-fetch.js';

export type { DispatchOutcome };

export interface DispatchClient {
  dispatch(repo: string, eventType: string, clientPayload: Record<string, unknown>): Promise<DispatchOutcome>;
  readonly dryRun: boolean;
}

export interface DispatchClientOptions {
  token?: string;
  appId?: string;
  privateKey?: string;
  /** GitHub Enterprise Server or a test double, e.g. `http://127.0.0.1:9999`. Default api.github.com. */
  apiUrl?: string;
  logger: Logger;
  /** Per HTTP request (connect + answer). Default 10 s. */
  timeoutMs?: number;
  /** Clock for rate-limit headers. Default Date.now. */
  now?: () => number;
  /** Least time between two content-creating requests (the dispatches). Default 1000 ms, as GitHub asks. */
  writeSpacingMs?: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_WRITE_SPACING_MS = 1_000;
const ThrottledOctokit = Octokit.plugin(throttling);

/** A rate limit the throttling plugin detected on one request, and the wait it derived (seconds). */
type LimitSeen = (kind: 'primary' | 'secondary', retryAfterSec: number) => void;
const REPO_RE = /^([A-Za-z0-9-]{1,39})\/([A-Za-z0-9._-]{1,100})$/;

interface HttpErrorLike {
  status?: number;
  message?: string;
  response?: { headers?: Headers; data?: unknown };
}

function errorMessage(data: unknown, fallback: string | undefined): string | undefined {
  if (data && typeof data === 'object' && 'message' in data && typeof (data as { message: unknown }).message === 'string') {
    return (data as { message: string }).message;
  }
  return fallback;
}

/** Map whatever a request threw to an outcome: HTTP errors by status, anything else is transient. */
export function outcomeFromError(error: unknown, now: number): DispatchOutcome {
  const e = (error ?? {}) as HttpErrorLike;
  if (e.response && typeof e.status === 'number') {
    return classifyResponse(e.status, e.response.headers ?? {}, now, errorMessage(e.response.data, e.message));
  }
  // Duck-typed, not instanceof: fetch's DOMException may come from another realm. Octokit wraps
  // fetch failures (message "Unknown Error" when it cannot read them) and keeps the original as cause.
  const chain: { name: string; message: string }[] = [];
  for (let e: unknown = error, depth = 0; e && depth < 4; depth++) {
    const err = e as { name?: unknown; message?: unknown; cause?: unknown };
    chain.push({ name: typeof err.name === 'string' ? err.name : '', message: typeof err.message === 'string' ? err.message : String(e) });
    e = typeof e === 'object' ? err.cause : undefined;
  }
  const timedOut = chain.some((c) => c.name === 'TimeoutError' || c.name === 'AbortError' || /timeout|timed out|aborted/i.test(c.message));
  if (timedOut) return { kind: 'retry', code: 'timeout', reason: 'timeout' };
  const message = chain.map((c) => c.message).find((m) => m && m !== 'Unknown Error') ?? chain[0]?.message ?? 'unknown';
  return { kind: 'retry', code: 'network', reason: `network error: ${message.slice(0, 200)}` };
}

function splitRepo(repo: string): { owner: string; repo: string } | undefined {
  const m = REPO_RE.exec(repo);
  return m ? { owner: m[1]!, repo: m[2]! } : undefined;
}

export function createDispatchClient(opts: DispatchClientOptions): DispatchClient {
  const { logger } = opts;
  const now = opts.now ?? Date.now;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const hasApp = Boolean(opts.appId && opts.privateKey);
  // No credentials: dry-run. The config loader already warned once at start-up; each would-be
  // dispatch is logged below.
  if (!opts.token && !hasApp) {
    return {
      dryRun: true,
      async dispatch(repo, eventType, clientPayload) {
        const events = Array.isArray(clientPayload.events) ? clientPayload.events.length : undefined;
        logger.info({ dryRun: true, repo, eventType, events, bytes: payloadBytes(clientPayload) }, 'dry-run: would send repository_dispatch');
        logger.debug({ dryRun: true, repo, eventType, clientPayload }, 'dry-run: client_payload');
        return { kind: 'sent' };
      },
    };
  }

  // Tell the request that was rate limited (passed per request, as a function so Octokit's option
  // merging keeps the reference), and never wait inside it.
  const onLimit =
    (kind: 'primary' | 'secondary') =>
    (retryAfterSec: number, options: { request?: object }): boolean => {
      (options.request as { limitSeen?: LimitSeen } | undefined)?.limitSeen?.(kind, retryAfterSec);
      return false;
    };
  const octokit = new ThrottledOctokit({
    ...(opts.apiUrl ? { baseUrl: opts.apiUrl.replace(/\/+$/, '') } : {}),
    userAgent: 'sauce-relay',
    // Every request gets its own deadline, covering connect, headers and body.
    request: { fetch: timedFetch(timeoutMs) },
    // Octokit's own logging would go to the console; failures are logged by the dispatcher.
    log: { debug: () => {}, info: () => {}, warn: (m: string) => logger.warn({ octokit: m }), error: () => {} },
    throttle: {
      Bottleneck,
      // The plugin's limiters are shared per id across the process: this client's are its own.
      id: `sauce-relay-${randomUUID()}`,
      write: new Bottleneck.Group({ maxConcurrent: 1, minTime: Math.max(0, opts.writeSpacingMs ?? DEFAULT_WRITE_SPACING_MS) }),
      onRateLimit: onLimit('primary'),
      onSecondaryRateLimit: onLimit('secondary'),
    },
  });

  let tokenFor: (owner: string, repo: string) => Promise<string>;
  let forget: (owner: string, repo: string) => void = () => {};
  if (opts.token) {
    const token = opts.token;
    tokenFor = async () => token;
  } else {
    const auth = createAppAuth({ appId: opts.appId!, privateKey: opts.privateKey!, request: octokit.request });
    const installations = new Map<string, Promise<number>>();
    const installationOf = (owner: string, repo: string): Promise<number> => {
      const key = `${owner}/${repo}`.toLowerCase();
      let found = installations.get(key);
      if (!found) {
        found = (async () => {
          const { token: jwt } = await auth({ type: 'app' });
          const res = await octokit.request('GET /repos/{owner}/{repo}/installation', { owner, repo, headers: { authorization: `bearer ${jwt}` } });
          return res.data.id;
        })();
        installations.set(key, found);
        found.catch(() => installations.delete(key));
      }
      return found;
    };
    tokenFor = async (owner, repo) => {
      const installationId = await installationOf(owner, repo);
      const { token } = await auth({ type: 'installation', installationId });
      return token;
    };
    forget = (owner, repo) => installations.delete(`${owner}/${repo}`.toLowerCase());
  }

  return {
    dryRun: false,
    async dispatch(repo, eventType, clientPayload) {
      const target = splitRepo(repo);
      if (!target) return { kind: 'fatal', code: 'invalid_target', reason: `not a repository: ${JSON.stringify(repo).slice(0, 120)}` };
      let token: string;
      try {
        token = await tokenFor(target.owner, target.repo);
      } catch (error) {
        const outcome = outcomeFromError(error, now());
        if (outcome.kind === 'sent') return { kind: 'retry', code: 'network', reason: 'GitHub App auth failed' };
        return { ...outcome, reason: `GitHub App auth for ${repo}: ${outcome.reason}` };
      }
      let limit: { kind: 'primary' | 'secondary'; retryAfterSec: number } | undefined;
      const limitSeen: LimitSeen = (kind, retryAfterSec) => {
        limit = { kind, retryAfterSec };
      };
      try {
        const answer = await octokit.request('POST /repos/{owner}/{repo}/dispatches', {
          owner: target.owner,
          repo: target.repo,
          event_type: eventType,
          client_payload: clientPayload,
          headers: { authorization: `token ${token}` },
          request: { limitSeen },
        });
        return { kind: 'sent', status: answer.status };
      } catch (error) {
        if (limit) {
          const status = (error as HttpErrorLike).status;
          const message = errorMessage((error as HttpErrorLike).response?.data, undefined);
          return {
            ...rateLimited(limit.retryAfterSec * 1000, `rate limited (${status ?? 0}, ${limit.kind})${message ? `: ${message.slice(0, 200)}` : ''}`),
            ...(status !== undefined ? { status } : {}),
            ...(message ? { message: keptMessage(message) } : {}),
          };
        }
        const outcome = outcomeFromError(error, now());
        // The App may have been uninstalled or moved: look the installation up again next time.
        if (outcome.kind === 'fatal') forget(target.owner, target.repo);
        return outcome;
      }
    },
  };
}
