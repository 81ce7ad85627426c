/**
 * The thin I/O shell: every GitHub call this action makes, behind one small interface, so the
 * engine can run against the real API, a test double or the dry-run logger alike.
 */
import { getOctokit } from '@actions/github';
import { retry } from '@octokit/plugin-retry';
import { throttling } from '@octokit/plugin-throttling';
import Bottleneck from 'bottleneck/light.js';
import { GitHubApiError } from './errors.js';
import { runnerLog } from './log.js';
import type { CommitState } from './mapping.js';

export interface CheckRunOutput {
  readonly title?: string | null;
  readonly summary?: string | null;
  readonly text?: string | null;
}

export interface CheckRun {
  readonly id: number;
  readonly name: string;
  readonly head_sha?: string;
  readonly external_id?: string | null;
  readonly status?: string;
  readonly conclusion?: string | null;
  readonly html_url?: string | null;
  readonly output?: CheckRunOutput;
  /** Open PRs whose head is this run's commit (GitHub fills it; other apps' runs too). */
  readonly pull_requests?: readonly { readonly number: number; readonly head: { readonly sha: string } }[];
}

export interface Annotation {
  readonly path: string;
  readonly start_line: number;
  readonly end_line: number;
  readonly annotation_level: 'notice' | 'warning' | 'failure';
  readonly title?: string;
  readonly message: string;
}

export interface CheckRunBody {
  readonly name: string;
  readonly external_id: string;
  readonly status: 'in_progress' | 'completed';
  readonly conclusion?: 'success' | 'failure' | 'neutral' | 'timed_out';
  readonly output: { readonly title: string; readonly summary: string; readonly text?: string; readonly annotations?: readonly Annotation[] };
}

export interface StatusBody {
  readonly state: CommitState;
  readonly context: string;
  readonly description: string;
  readonly target_url?: string;
}

export interface Api {
  /** True when nothing is sent (dry run): writes are logged, reads find nothing. */
  readonly dryRun: boolean;
  /** Full SHA of a short SHA, branch or other ref; null when GitHub does not know it. */
  resolveCommit(ref: string): Promise<string | null>;
  /** Head SHA of pull request `number`; null when there is no such PR. */
  pullHead(number: number): Promise<{ sha: string; state: string } | null>;
  /** merge_commit_sha → { head sha, PR number } for every open PR. */
  openPullMerges(): Promise<Map<string, { head: string; number: number }>>;
  /** Check runs on a commit, all or those with one name. */
  listCheckRuns(sha: string, name?: string): Promise<CheckRun[]>;
  createCheckRun(sha: string, body: CheckRunBody): Promise<CheckRun>;
  updateCheckRun(id: number, body: Partial<CheckRunBody> & { output?: CheckRunBody['output'] }): Promise<CheckRun>;
  createStatus(sha: string, body: StatusBody): Promise<void>;
}

export { GitHubApiError };

type Octokit = ReturnType<typeof getOctokit>;

/** GitHub's own unit for every wait of the retry policy: one second. */
export const GITHUB_WAIT_UNIT_MS = 1000;
/** Retries after the first attempt, for 5xx (plugin-retry) and rate limits (plugin-throttling) alike. */
export const API_RETRIES = 3;
/** A rate limit that asks for a longer wait (in GitHub's seconds) fails the step instead of waiting. */
export const MAX_RATE_LIMIT_WAIT_S = 600;

export interface OctokitSettings {
  /** The API root; default GITHUB_API_URL, as the runner sets it. */
  readonly baseUrl?: string;
  /**
   * The unit of every wait, in ms (GITHUB_WAIT_UNIT_MS, one second, in production): plugin-retry
   * waits 1, 4 and 9 units before its retries, plugin-throttling waits the seconds GitHub asks for
   * (60 after a secondary rate limit that names none). Production uses GitHub's second; tests pass a
   * smaller unit to the in-process client.
   */
  readonly waitUnitMs?: number;
}

const CHECK_RUN_CREATE = { method: 'POST', url: '/repos/{owner}/{repo}/check-runs' } as const;

/** How many attempts the request behind an error took (set by `attemptsAndCreateLookup`). */
const attemptsOf = new WeakMap<object, number>();

interface EndpointOptionsLike {
  readonly method: string;
  readonly url: string;
  readonly [key: string]: unknown;
}

/**
 * The innermost request hook, inside plugin-retry and plugin-throttling, so it sees every attempt:
 *  - it counts the attempts of each request, for the error message;
 *  - creating a check run is not idempotent: a 5xx (or a dropped connection) can come after GitHub
 *    created it, so before a retry of `POST /check-runs` it lists the commit's check runs with that
 *    name and, when one with the same `external_id` exists, updates that run instead of creating a
 *    second one.
 */
function attemptsAndCreateLookup(octokit: { hook: Octokit['hook']; request: Octokit['request'] }): Record<string, never> {
  octokit.hook.wrap('request', async (request, options) => {
    const opts = options as unknown as EndpointOptionsLike;
    const attempt = (attemptsOf.get(opts) ?? 0) + 1;
    attemptsOf.set(opts, attempt);
    try {
      if (attempt > 1 && opts.method === CHECK_RUN_CREATE.method && opts.url === CHECK_RUN_CREATE.url) {
        const created = await findCreatedRun(octokit.request, opts);
        if (created !== null) {
          // The run is there: write this create's content to it. Its annotations are left out, since
          // the attempt that created the run sent them already (GitHub appends annotations).
          const { method: _m, url: _u, baseUrl: _b, headers: _h, mediaType: _t, request: _r, head_sha: _s, output, ...body } = opts;
          const { annotations: _a, ...outputWithout } = (output ?? {}) as Record<string, unknown>;
          const patch = { ...body, ...(output !== undefined ? { output: outputWithout } : {}), check_run_id: created };
          return await octokit.request(
            'PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}',
            patch as unknown as { owner: string; repo: string; check_run_id: number },
          );
        }
      }
      return await request(options);
    } catch (error) {
      if (typeof error === 'object' && error !== null) attemptsOf.set(error, attempt);
      throw error;
    }
  });
  return {};
}

/** The newest check run on `head_sha` with the create's name and external_id, or null. */
async function findCreatedRun(request: Octokit['request'], opts: EndpointOptionsLike): Promise<number | null> {
  const res = await request('GET /repos/{owner}/{repo}/commits/{ref}/check-runs', {
    owner: String(opts['owner']),
    repo: String(opts['repo']),
    ref: String(opts['head_sha']),
    check_name: String(opts['name']),
    filter: 'all',
    per_page: 100,
  });
  const ids = res.data.check_runs.filter((r) => r.external_id === opts['external_id']).map((r) => Number(r.id));
  return ids.length > 0 ? Math.max(...ids) : null;
}

/** Octokit's own messages (deprecations, plugin warnings) reach the log through `logText` too. */
const octokitLog = {
  debug: (): void => {},
  info: (): void => {},
  warn: (message: string): void => runnerLog.info(`Octokit: ${message}`),
  error: (message: string): void => runnerLog.info(`Octokit: ${message}`),
};

/**
 * The Octokit the Action uses: @actions/github's, with one retry policy, the libraries':
 * @octokit/plugin-retry retries 5xx (3 times, after 1, 4 and 9 units), @octokit/plugin-throttling
 * waits out primary and secondary rate limits (a 403 or 429 whose headers or message say so, even
 * without a `retry-after`) and sends writes one at a time; a check run create is looked up before it is retried.
 */
export function createOctokit(token: string, settings: OctokitSettings = {}): Octokit {
  const unit = settings.waitUnitMs ?? GITHUB_WAIT_UNIT_MS;
  const onLimit =
    (kind: string) =>
    (retryAfterS: number, options: { method: string; url: string }, _octokit: unknown, retryCount: number): boolean => {
      const retry = retryCount < API_RETRIES && retryAfterS <= MAX_RATE_LIMIT_WAIT_S;
      runnerLog.info(
        `GitHub ${kind} on ${options.method} ${options.url}: ` +
          (retry ? `waiting ${(retryAfterS * unit) / 1000} s, then retry ${retryCount + 1} of ${API_RETRIES}.` : 'giving up.'),
      );
      return retry;
    };
  return getOctokit(
    token,
    {
      userAgent: 'sauce-github-bridge',
      log: octokitLog,
      ...(settings.baseUrl !== undefined ? { baseUrl: settings.baseUrl } : {}),
      // 429 is the throttling plugin's (it honours retry-after); the rest of 4xx is final.
      retry: { retries: API_RETRIES, retryAfterBaseValue: unit, doNotRetry: [400, 401, 403, 404, 410, 422, 429, 451] },
      throttle: {
        retryAfterBaseValue: unit,
        // Writes one at a time, not spaced: a run makes a handful (a 100-event batch about 13), far
        // under GitHub's secondary limit of about 80 content-creating requests a minute, and spacing
        // them the plugin's default second apart made every run seconds slower. A secondary limit
        // that comes anyway is detected and waited out (onSecondaryRateLimit).
        write: new Bottleneck.Group({ maxConcurrent: 1, minTime: 0 }),
        onRateLimit: onLimit('rate limit'),
        onSecondaryRateLimit: onLimit('secondary rate limit'),
      },
    },
    attemptsAndCreateLookup,
    retry,
    throttling,
  );
}

interface RequestErrorLike {
  readonly status?: unknown;
  readonly message?: unknown;
  readonly request?: { readonly method?: string; readonly url?: string };
}

/**
 * A failed call as a GitHubApiError: method, path, HTTP status and attempts in the message, and
 * on a 403 "not accessible by integration" the permissions the workflow must grant.
 */
export function toGitHubApiError(error: unknown, route: string): GitHubApiError {
  if (error instanceof GitHubApiError) return error;
  const e = (typeof error === 'object' && error !== null ? error : {}) as RequestErrorLike;
  const status = typeof e.status === 'number' ? e.status : null;
  let what = route;
  if (e.request?.method && e.request.url) {
    try {
      what = `${e.request.method} ${new URL(e.request.url).pathname}`;
    } catch {
      // keep the route
    }
  }
  const tries = (typeof error === 'object' && error !== null ? attemptsOf.get(error) : undefined) ?? 1;
  const message = typeof e.message === 'string' ? e.message : String(error);
  const hint =
    status === 403 && /not accessible by integration/i.test(message)
      ? ' (the token lacks a permission: the workflow needs statuses: write, checks: write, pull-requests: read and contents: read)'
      : '';
  return new GitHubApiError(
    `GitHub API ${what} failed${status !== null ? ` with HTTP ${status}` : ''}${tries > 1 ? ` after ${tries} attempts` : ''}: ${message}${hint}`,
    status,
  );
}

/** Run one API call; a failure becomes a GitHubApiError. */
async function call<T>(route: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw toGitHubApiError(error, route);
  }
}

export class GitHubApi implements Api {
  readonly dryRun = false;
  private readonly owner: string;
  private readonly repo: string;

  constructor(
    private readonly octokit: Octokit,
    repository: string,
  ) {
    const [owner, repo] = repository.split('/');
    if (!owner || !repo) throw new Error(`GITHUB_REPOSITORY must be owner/repo, got ${JSON.stringify(repository)}`);
    this.owner = owner;
    this.repo = repo;
  }

  async resolveCommit(ref: string): Promise<string | null> {
    try {
      const res = await call('GET /repos/{owner}/{repo}/commits/{ref}', () =>
        this.octokit.request('GET /repos/{owner}/{repo}/commits/{ref}', { owner: this.owner, repo: this.repo, ref, per_page: 1 }),
      );
      const data: unknown = res.data;
      if (typeof data === 'string' && /^[0-9a-f]{40}$/i.test(data.trim())) return data.trim().toLowerCase();
      const sha = (data as { sha?: unknown })?.sha;
      return typeof sha === 'string' ? sha.toLowerCase() : null;
    } catch (error) {
      const s = (error as GitHubApiError).status;
      if (s === 404 || s === 422 || s === 409) return null;
      throw error;
    }
  }

  async pullHead(number: number): Promise<{ sha: string; state: string } | null> {
    try {
      const res = await call('GET /repos/{owner}/{repo}/pulls/{pull_number}', () =>
        this.octokit.rest.pulls.get({ owner: this.owner, repo: this.repo, pull_number: number }),
      );
      return { sha: res.data.head.sha, state: res.data.state };
    } catch (error) {
      if ((error as GitHubApiError).status === 404) return null;
      throw error;
    }
  }

  async openPullMerges(): Promise<Map<string, { head: string; number: number }>> {
    const map = new Map<string, { head: string; number: number }>();
    for (let page = 1; page <= 10; page++) {
      const res = await call('GET /repos/{owner}/{repo}/pulls', () =>
        this.octokit.rest.pulls.list({ owner: this.owner, repo: this.repo, state: 'open', per_page: 100, page }),
      );
      for (const pr of res.data) {
        if (pr.merge_commit_sha) map.set(pr.merge_commit_sha.toLowerCase(), { head: pr.head.sha.toLowerCase(), number: pr.number });
      }
      if (res.data.length < 100) break;
    }
    return map;
  }

  async listCheckRuns(sha: string, name?: string): Promise<CheckRun[]> {
    const out: CheckRun[] = [];
    for (let page = 1; page <= 20; page++) {
      const res = await call('GET /repos/{owner}/{repo}/commits/{ref}/check-runs', () =>
        this.octokit.rest.checks.listForRef({
          owner: this.owner,
          repo: this.repo,
          ref: sha,
          per_page: 100,
          page,
          filter: 'all',
          ...(name !== undefined ? { check_name: name } : {}),
        }),
      );
      out.push(...(res.data.check_runs as CheckRun[]));
      if (res.data.check_runs.length < 100 || out.length >= res.data.total_count) break;
    }
    return out;
  }

  async createCheckRun(sha: string, body: CheckRunBody): Promise<CheckRun> {
    const res = await call('POST /repos/{owner}/{repo}/check-runs', () =>
      this.octokit.rest.checks.create({
        owner: this.owner,
        repo: this.repo,
        head_sha: sha,
        ...body,
        ...(body.status === 'completed' ? { completed_at: new Date().toISOString() } : {}),
        output: { ...body.output, annotations: body.output.annotations ? [...body.output.annotations] : undefined },
      } as Parameters<Octokit['rest']['checks']['create']>[0]),
    );
    return res.data as CheckRun;
  }

  async updateCheckRun(id: number, body: Partial<CheckRunBody>): Promise<CheckRun> {
    const res = await call('PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}', () =>
      this.octokit.rest.checks.update({
        owner: this.owner,
        repo: this.repo,
        check_run_id: id,
        ...body,
        ...(body.status === 'completed' ? { completed_at: new Date().toISOString() } : {}),
      } as Parameters<Octokit['rest']['checks']['update']>[0]),
    );
    return res.data as CheckRun;
  }

  async createStatus(sha: string, body: StatusBody): Promise<void> {
    await call('POST /repos/{owner}/{repo}/statuses/{sha}', () =>
      this.octokit.rest.repos.createCommitStatus({ owner: this.owner, repo: this.repo, sha, ...body }),
    );
  }
}

/** Logs what it would write; never touches the network. Reads find nothing. */
export class DryRunApi implements Api {
  readonly dryRun = true;
  private nextId = 0;
  constructor(private readonly log: (line: string) => void) {}

  async resolveCommit(ref: string): Promise<string | null> {
    this.log(`[dry-run] would resolve ${JSON.stringify(ref)} with GET /repos/{owner}/{repo}/commits/{ref}; without the API it stays unresolved`);
    return null;
  }
  async pullHead(number: number): Promise<{ sha: string; state: string } | null> {
    this.log(`[dry-run] would read pull request #${number}; without the API it stays unresolved`);
    return null;
  }
  async openPullMerges(): Promise<Map<string, { head: string; number: number }>> {
    this.log('[dry-run] would list open pull requests to move PR merge commits to their head SHA');
    return new Map();
  }
  async listCheckRuns(): Promise<CheckRun[]> {
    return [];
  }
  async createCheckRun(sha: string, body: CheckRunBody): Promise<CheckRun> {
    this.nextId -= 1;
    this.log(
      `[dry-run] would create check run ${JSON.stringify(body.name)} on ${sha}: ${body.status}${body.conclusion ? `/${body.conclusion}` : ''}, "${body.output.title}"` +
        (body.output.annotations?.length ? `, ${body.output.annotations.length} annotation(s)` : ''),
    );
    return { id: this.nextId, name: body.name };
  }
  async updateCheckRun(id: number, body: Partial<CheckRunBody>): Promise<CheckRun> {
    this.log(`[dry-run] would update check run ${id}${body.output ? `: "${body.output.title}"` : ''}`);
    return { id, name: body.name ?? '' };
  }
  async createStatus(sha: string, body: StatusBody): Promise<void> {
    this.log(
      `[dry-run] would set commit status ${JSON.stringify(body.context)} on ${sha}: ${body.state}, "${body.description}"${body.target_url ? ` → ${body.target_url}` : ''}`,
    );
  }
}
