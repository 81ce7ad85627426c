/**
 * The thin I/O shell: every GitHub call this action makes, behind one small interface, so the
 * engine can run against the real API, a test double or the dry-run logger alike.
 */
import { getOctokit } from '@actions/github';
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
  readonly conclusion?: 'success' | 'failure' | 'neutral';
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

interface RequestErrorLike {
  status?: number;
  message?: string;
  response?: { headers?: Record<string, string | number | undefined>; data?: unknown };
}

function statusOf(error: unknown): number | null {
  const s = (error as RequestErrorLike)?.status;
  return typeof s === 'number' ? s : null;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * How long to wait before retrying, or null to give up: 5xx, 429 and rate-limit 403s are retried,
 * honouring `retry-after` and `x-ratelimit-reset` (capped at 60 s), else 1 s, 2 s, 4 s.
 */
export function retryDelayMs(error: unknown, attempt: number, nowMs: number, baseMs = 1000): number | null {
  const status = statusOf(error);
  const headers = (error as RequestErrorLike)?.response?.headers ?? {};
  const rateLimited = status === 429 || (status === 403 && (headers['retry-after'] !== undefined || String(headers['x-ratelimit-remaining']) === '0'));
  if (!(status !== null && status >= 500) && !rateLimited) return null;
  const retryAfter = Number(headers['retry-after']);
  if (headers['retry-after'] !== undefined && Number.isFinite(retryAfter)) return Math.min(60_000, Math.max(0, retryAfter * 1000));
  const reset = Number(headers['x-ratelimit-reset']);
  if (rateLimited && Number.isFinite(reset)) return Math.min(60_000, Math.max(0, reset * 1000 - nowMs));
  return baseMs * 2 ** attempt;
}

/** Octokit's own messages (deprecations, plugin warnings) reach the log through `logText` too. */
const octokitLog = {
  debug: (): void => {},
  info: (): void => {},
  warn: (message: string): void => runnerLog.info(`Octokit: ${message}`),
  error: (message: string): void => runnerLog.info(`Octokit: ${message}`),
};

export function createOctokit(token: string, maxRetries = 3): Octokit {
  const octokit = getOctokit(token, { userAgent: 'sauce-github-bridge', log: octokitLog });
  octokit.hook.wrap('request', async (request, options) => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await request(options);
      } catch (error) {
        const delay = attempt < maxRetries ? retryDelayMs(error, attempt, Date.now()) : null;
        if (delay === null) {
          const status = statusOf(error);
          const sent = (error as { request?: { url?: string } })?.request?.url;
          let path = String(options.url);
          try {
            if (sent) path = new URL(sent).pathname;
          } catch {
            // keep the template
          }
          const what = `${options.method} ${path}`;
          const tries = attempt + 1;
          throw new GitHubApiError(
            `GitHub API ${what} failed${status !== null ? ` with HTTP ${status}` : ''}${tries > 1 ? ` after ${tries} attempts` : ''}: ${(error as Error).message}`,
            status,
          );
        }
        await sleep(delay);
      }
    }
  });
  return octokit;
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
      const res = await this.octokit.request('GET /repos/{owner}/{repo}/commits/{ref}', {
        owner: this.owner,
        repo: this.repo,
        ref,
        per_page: 1,
      });
      const data: unknown = res.data;
      if (typeof data === 'string' && /^[0-9a-f]{40}$/i.test(data.trim())) return data.trim().toLowerCase();
      const sha = (data as { sha?: unknown })?.sha;
      return typeof sha === 'string' ? sha.toLowerCase() : null;
    } catch (error) {
      const s = statusOf(error);
      if (s === 404 || s === 422 || s === 409) return null;
      throw error;
    }
  }

  async pullHead(number: number): Promise<{ sha: string; state: string } | null> {
    try {
      const res = await this.octokit.rest.pulls.get({ owner: this.owner, repo: this.repo, pull_number: number });
      return { sha: res.data.head.sha, state: res.data.state };
    } catch (error) {
      if (statusOf(error) === 404) return null;
      throw error;
    }
  }

  async openPullMerges(): Promise<Map<string, { head: string; number: number }>> {
    const map = new Map<string, { head: string; number: number }>();
    for (let page = 1; page <= 10; page++) {
      const res = await this.octokit.rest.pulls.list({ owner: this.owner, repo: this.repo, state: 'open', per_page: 100, page });
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
      const res = await this.octokit.rest.checks.listForRef({
        owner: this.owner,
        repo: this.repo,
        ref: sha,
        per_page: 100,
        page,
        filter: 'all',
        ...(name !== undefined ? { check_name: name } : {}),
      });
      out.push(...(res.data.check_runs as CheckRun[]));
      if (res.data.check_runs.length < 100 || out.length >= res.data.total_count) break;
    }
    return out;
  }

  async createCheckRun(sha: string, body: CheckRunBody): Promise<CheckRun> {
    const res = await this.octokit.rest.checks.create({
      owner: this.owner,
      repo: this.repo,
      head_sha: sha,
      ...body,
      ...(body.status === 'completed' ? { completed_at: new Date().toISOString() } : {}),
      output: { ...body.output, annotations: body.output.annotations ? [...body.output.annotations] : undefined },
    } as Parameters<Octokit['rest']['checks']['create']>[0]);
    return res.data as CheckRun;
  }

  async updateCheckRun(id: number, body: Partial<CheckRunBody>): Promise<CheckRun> {
    const res = await this.octokit.rest.checks.update({
      owner: this.owner,
      repo: this.repo,
      check_run_id: id,
      ...body,
      ...(body.status === 'completed' ? { completed_at: new Date().toISOString() } : {}),
    } as Parameters<Octokit['rest']['checks']['update']>[0]);
    return res.data as CheckRun;
  }

  async createStatus(sha: string, body: StatusBody): Promise<void> {
    await this.octokit.rest.repos.createCommitStatus({ owner: this.owner, repo: this.repo, sha, ...body });
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
