/**
 * A loopback HTTP test double of the GitHub REST API.
 *
 * Every request is first checked against GitHub's published description (see ./openapi.ts); a
 * request the description does not allow is recorded in `violations` and answered 404/422, so a
 * client bug fails the test even when the client swallows errors. Only the endpoints the Action and
 * the relay use are implemented, statefully and with GitHub's own extra rules (140-char status
 * descriptions, 65,535-byte check output, dispatch payload limits). Other described endpoints
 * answer 501 and are recorded as violations too, so nobody mistakes "unimplemented" for "works".
 *
 * Repositories exist implicitly: any owner/repo is accessible. Commits, branches and pulls only
 * exist once a test adds them.
 *
 * The token has permissions, as a workflow's GITHUB_TOKEN does: by default exactly the `permissions:`
 * block of the README's example workflow (see ./readme-workflow.ts). A call whose permission the token
 * lacks is answered as GitHub answers it on a private repository, 403 "Resource not accessible by
 * integration" (see ROUTE_PERMISSIONS; routes not listed there, such as the relay's dispatches with an
 * App or personal token, are not checked).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadApiDescription, type ApiDescription, type RouteMatch } from './openapi.js';
import { readmeWorkflowPermissions, type PermissionLevel, type TokenPermissions } from './readme-workflow.js';

export type { PermissionLevel, TokenPermissions };

export interface RecordedRequest {
  method: string;
  /** The URL path as sent (percent-encoding kept). */
  path: string;
  /** `METHOD template` from the description, e.g. 'POST /repos/{owner}/{repo}/statuses/{sha}'; `METHOD path` when nothing matched. */
  route: string;
  query: Record<string, string>;
  /** Parsed JSON body; undefined when none was sent; the raw text when it was not JSON. */
  body: unknown;
  /** Response status; 0 while the request is still being handled (e.g. inside the interceptor). */
  status: number;
  headers: Record<string, string | undefined>;
}
export interface StatusRecord {
  id: number;
  state: 'error' | 'failure' | 'pending' | 'success';
  context: string;
  description: string | null;
  target_url: string | null;
  created_at: string;
  updated_at: string;
}
export interface CheckRunRecord {
  id: number;
  name: string;
  head_sha: string;
  status: string;
  conclusion: string | null;
  external_id: string | null;
  details_url: string | null;
  started_at: string | null;
  completed_at: string | null;
  output: { title: string | null; summary: string | null; text: string | null; annotations: unknown[] /* accumulated across create+updates */ };
}
export interface DispatchRecord {
  event_type: string;
  /** As sent; undefined when the request had no client_payload. */
  client_payload: unknown;
}
export interface ScriptedResponse {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
  delayMs?: number;
  /**
   * True: the request is first handled as usual (a check run is created, a status written) and
   * this answer is sent instead of the real one: GitHub acted, and the client never learnt it.
   */
  afterHandling?: boolean;
}
export interface PullSpec {
  number: number;
  headSha: string;
  headRef: string;
  mergeCommitSha: string | null;
  state?: 'open' | 'closed';
}
export interface GitHubDouble {
  readonly url: string;
  close(): Promise<void>;
  addCommit(repo: string, sha: string): void;
  setBranch(repo: string, branch: string, sha: string): void;
  addPull(repo: string, pr: PullSpec): void;
  /** A check run another app made (e.g. the CI workflow's own job), in progress on `sha`. */
  addForeignCheckRun(repo: string, name: string, sha: string): void;
  readonly requests: RecordedRequest[];
  /** Every request the OpenAPI description does not allow (or the double does not implement), with reason. */
  readonly violations: string[];
  /**
   * Requests the description allows but GitHub would still reject (unknown SHA, description over
   * 140 chars, output over 65,535 bytes, oversize dispatch payload, non-JWT on app routes...).
   * Each was answered like GitHub answers it, usually 422. Not violations: tests may provoke them.
   */
  readonly rejections: string[];
  statuses(repo: string, sha: string): StatusRecord[];
  checkRuns(repo: string): CheckRunRecord[];
  dispatches(repo: string): DispatchRecord[];
  /** The next N requests matching route get these answers (in order) instead of normal handling. Throws for a route not in the description. */
  failNext(route: string, responses: ScriptedResponse[]): void;
  /** Optional hook run before handling; return a ScriptedResponse to override. */
  setInterceptor(fn: ((req: RecordedRequest) => ScriptedResponse | undefined) | null): void;
  /** The token's permissions from now on (`null`: every call allowed); reset() restores the default. */
  setPermissions(permissions: TokenPermissions | null): void;
  /** Clears requests, violations, rejections, repository state, queued failNext answers and the interceptor; restores the default permissions. */
  reset(): void;
  countRequests(filter?: (r: RecordedRequest) => boolean): number;
  /** The loaded description (for tests that want to check a route name or the load time). */
  readonly description: ApiDescription;
}

export interface GitHubDoubleOptions {
  port?: number;
  /** Default true: 401 without an Authorization header; app routes also need a JWT-shaped bearer token. */
  requireAuth?: boolean;
  /** Default false: body fields the description does not list are violations (they are typos GitHub would silently drop). */
  allowUnknownBodyFields?: boolean;
  /** The token's permissions. Default: the README workflow's `permissions:` block. `null`: every call allowed. */
  permissions?: TokenPermissions | null;
}

/**
 * The permission each implemented repository route needs from a workflow token (write implies
 * read). Scopes a `permissions:` block leaves out are `none`.
 */
export const ROUTE_PERMISSIONS: Readonly<Record<string, readonly [scope: string, level: 'read' | 'write']>> = {
  'POST /repos/{owner}/{repo}/statuses/{sha}': ['statuses', 'write'],
  'GET /repos/{owner}/{repo}/commits/{ref}/statuses': ['statuses', 'read'],
  'GET /repos/{owner}/{repo}/commits/{ref}/status': ['statuses', 'read'],
  'POST /repos/{owner}/{repo}/check-runs': ['checks', 'write'],
  'PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}': ['checks', 'write'],
  'GET /repos/{owner}/{repo}/check-runs/{check_run_id}': ['checks', 'read'],
  'GET /repos/{owner}/{repo}/check-runs/{check_run_id}/annotations': ['checks', 'read'],
  'GET /repos/{owner}/{repo}/commits/{ref}/check-runs': ['checks', 'read'],
  'GET /repos/{owner}/{repo}/pulls': ['pull-requests', 'read'],
  'GET /repos/{owner}/{repo}/pulls/{pull_number}': ['pull-requests', 'read'],
  'GET /repos/{owner}/{repo}/commits/{commit_sha}/pulls': ['pull-requests', 'read'],
  'GET /repos/{owner}/{repo}/commits/{ref}': ['contents', 'read'],
  'GET /repos/{owner}/{repo}/branches/{branch}': ['contents', 'read'],
};

/** Whether a token with `permissions` may call `route`; routes without an entry are not checked. */
export function permits(permissions: TokenPermissions | null, route: string): boolean {
  const need = ROUTE_PERMISSIONS[route];
  if (permissions === null || !need) return true;
  const have: PermissionLevel = permissions[need[0]] ?? 'none';
  return need[1] === 'read' ? have === 'read' || have === 'write' : have === 'write';
}

// GitHub's rules that the description states only in prose.
const STATUS_DESCRIPTION_MAX_CHARS = 140;
const CHECK_OUTPUT_MAX_BYTES = 65_535;
const ANNOTATIONS_PER_REQUEST = 50;
const DISPATCH_EVENT_TYPE_MAX_CHARS = 100;
const DISPATCH_MAX_KEYS = 10;
/** repository_dispatch: client_payload must serialise to less than 64 KiB. */
const DISPATCH_PAYLOAD_LIMIT_BYTES = 65_536;
const RATE_LIMIT = 5000;
const DOCS = 'https://docs.github.com/rest';
const FULL_SHA = /^[0-9a-f]{40}$/;

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** GitHub's timestamp style: ISO 8601 without milliseconds. */
function timestamp(date = new Date()): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function text(body: JsonObject, key: string): string | undefined {
  const value = body[key];
  return typeof value === 'string' ? value : undefined;
}

function charCount(value: string): number {
  return Array.from(value).length; // code points, as GitHub counts
}

// ---------------------------------------------------------------------------------------------
// Repository state

interface PullState {
  number: number;
  headSha: string;
  headRef: string;
  mergeCommitSha: string | null;
  state: 'open' | 'closed';
}

class RepoState {
  readonly commits = new Set<string>();
  readonly branches = new Map<string, string>();
  readonly pulls = new Map<number, PullState>();
  readonly statuses = new Map<string, StatusRecord[]>();
  readonly checkRuns: CheckRunRecord[] = [];
  readonly dispatches: DispatchRecord[] = [];

  constructor(
    readonly owner: string,
    readonly name: string,
    readonly id: number,
  ) {}

  get fullName(): string {
    return `${this.owner}/${this.name}`;
  }

  get defaultBranch(): string {
    return this.branches.has('main') ? 'main' : (this.branches.keys().next().value ?? 'main');
  }

  /** Full SHA, branch (or refs/heads/branch), or a unique hex prefix of 4+ chars. */
  resolve(ref: string): { sha: string } | { error: string } {
    const lower = ref.toLowerCase();
    if (FULL_SHA.test(lower) && this.commits.has(lower)) return { sha: lower };
    const branch = this.branches.get(ref.replace(/^refs\/heads\//, ''));
    if (branch) return { sha: branch };
    if (/^[0-9a-f]{4,39}$/.test(lower)) {
      const candidates = [...this.commits].filter((sha) => sha.startsWith(lower));
      if (candidates.length === 1 && candidates[0]) return { sha: candidates[0] };
      if (candidates.length > 1) return { error: `Ambiguous SHA: ${ref}` };
    }
    return { error: `No commit found for SHA: ${ref}` };
  }
}

// ---------------------------------------------------------------------------------------------
// Response bodies (close to GitHub's, enough for Octokit and for code reading common fields)

function userJson(login: string, id: number, type = 'User'): JsonObject {
  return { login, id, node_id: `U_${id}`, type, site_admin: false, avatar_url: `https://avatars.githubusercontent.com/u/${id}` };
}

function repoJson(base: string, repo: RepoState): JsonObject {
  return {
    id: repo.id,
    node_id: `R_${repo.id}`,
    name: repo.name,
    full_name: repo.fullName,
    owner: userJson(repo.owner, repo.id + 1_000_000, 'Organization'),
    private: true, // so the token's permissions decide every read, as they do on a private repository
    html_url: `https://github.com/${repo.fullName}`,
    url: `${base}/repos/${repo.fullName}`,
    default_branch: repo.defaultBranch,
    archived: false,
    disabled: false,
    permissions: { admin: false, maintain: false, push: true, triage: true, pull: true },
  };
}

function statusJson(base: string, repo: RepoState, sha: string, s: StatusRecord): JsonObject {
  return {
    url: `${base}/repos/${repo.fullName}/statuses/${sha}`,
    avatar_url: 'https://avatars.githubusercontent.com/in/1',
    node_id: `SC_${s.id}`,
    ...s,
    creator: userJson('sauce-bot[bot]', 1, 'Bot'),
  };
}

function checkRunJson(base: string, repo: RepoState, run: CheckRunRecord): JsonObject {
  const { annotations, ...output } = run.output;
  return {
    ...run,
    node_id: `CR_${run.id}`,
    url: `${base}/repos/${repo.fullName}/check-runs/${run.id}`,
    html_url: `https://github.com/${repo.fullName}/runs/${run.id}`,
    output: { ...output, annotations_count: annotations.length, annotations_url: `${base}/repos/${repo.fullName}/check-runs/${run.id}/annotations` },
    check_suite: { id: 1 },
    app: { id: 1, slug: 'sauce-test', name: 'Sauce test app', owner: userJson(repo.owner, 2, 'Organization') },
    pull_requests: pullsWithHead(base, repo, run.head_sha),
  };
}

/**
 * A check run's `pull_requests`: GitHub lists the open PRs whose head matches the run's commit
 * (never a PR whose temporary merge commit it is).
 */
function pullsWithHead(base: string, repo: RepoState, sha: string): JsonObject[] {
  const repoRef = { id: repo.id, url: `${base}/repos/${repo.fullName}`, name: repo.name };
  return [...repo.pulls.values()]
    .filter((pr) => pr.state === 'open' && pr.headSha === sha)
    .map((pr) => ({
      id: 10_000 + pr.number,
      number: pr.number,
      url: `${base}/repos/${repo.fullName}/pulls/${pr.number}`,
      head: { ref: pr.headRef, sha: pr.headSha, repo: repoRef },
      base: { ref: repo.defaultBranch, sha: repo.branches.get(repo.defaultBranch) ?? pr.headSha, repo: repoRef },
    }));
}

function pullJson(base: string, repo: RepoState, pr: PullState): JsonObject {
  const repoBody = repoJson(base, repo);
  const baseRef = repo.defaultBranch;
  return {
    url: `${base}/repos/${repo.fullName}/pulls/${pr.number}`,
    id: 10_000 + pr.number,
    node_id: `PR_${pr.number}`,
    html_url: `https://github.com/${repo.fullName}/pull/${pr.number}`,
    number: pr.number,
    state: pr.state,
    locked: false,
    draft: false,
    title: `Pull request #${pr.number}`,
    user: userJson('octocat', 583231),
    body: null,
    merge_commit_sha: pr.mergeCommitSha,
    head: { label: `${repo.owner}:${pr.headRef}`, ref: pr.headRef, sha: pr.headSha, user: userJson(repo.owner, 2), repo: repoBody },
    base: { label: `${repo.owner}:${baseRef}`, ref: baseRef, sha: repo.branches.get(baseRef) ?? pr.headSha, user: userJson(repo.owner, 2), repo: repoBody },
  };
}

function commitJson(base: string, repo: RepoState, sha: string): JsonObject {
  const person = { name: 'Octo Cat', email: 'octocat@example.com', date: timestamp() };
  return {
    sha,
    node_id: `C_${sha}`,
    url: `${base}/repos/${repo.fullName}/commits/${sha}`,
    html_url: `https://github.com/${repo.fullName}/commit/${sha}`,
    commit: { message: 'Test commit', author: person, committer: person, tree: { sha }, comment_count: 0 },
    author: userJson('octocat', 583231),
    committer: userJson('octocat', 583231),
    parents: [],
    files: [],
    stats: { total: 0, additions: 0, deletions: 0 },
  };
}

/** Combined state as GitHub computes it from the latest status of each context. */
function combinedState(latest: readonly StatusRecord[]): StatusRecord['state'] {
  if (latest.some((s) => s.state === 'error' || s.state === 'failure')) return 'failure';
  if (latest.length === 0 || latest.some((s) => s.state === 'pending')) return 'pending';
  return 'success';
}

// ---------------------------------------------------------------------------------------------
// Request handling plumbing

interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** Set when GitHub would refuse a request the description allows; recorded in `rejections`. */
  rejection?: string;
}

interface Context {
  readonly params: Record<string, string>;
  readonly query: Record<string, string>;
  /** The JSON body when it is an object, else {} (the description check has vetted its shape). */
  readonly body: JsonObject;
  readonly request: RecordedRequest;
}

type Handler = (ctx: Context) => Reply;

function error(status: number, message: string, extra: JsonObject = {}): Reply {
  return { status, body: { message, documentation_url: DOCS, status: String(status), ...extra } };
}

function reject(status: number, message: string, rejection: string, extra: JsonObject = {}): Reply {
  return { ...error(status, message, extra), rejection };
}

function validationFailed(resource: string, field: string, message: string): Reply {
  return reject(422, 'Validation Failed', `${resource}.${field}: ${message}`, { errors: [{ resource, code: 'custom', field, message }] });
}

function headerMap(req: IncomingMessage): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(req.headers)) out[name] = Array.isArray(value) ? value.join(', ') : value;
  return out;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function parseBody(raw: string): { body: unknown; problem?: string } {
  if (raw.trim() === '') return { body: undefined }; // Octokit sends "" for PATCH/PUT without fields
  try {
    return { body: JSON.parse(raw) as unknown };
  } catch (e) {
    return { body: raw, problem: `body is not valid JSON (${(e as Error).message})` };
  }
}

/** An app-authenticated route needs a JWT (three base64url parts), not a token. */
function needsJwt(route: string): boolean {
  return / \/app(\/|$)/.test(route) || route.endsWith('/installation');
}

const JWT = /^bearer\s+[\w-]+\.[\w-]+\.[\w-]+$/i;

function delay(ms: number, timers: Set<NodeJS.Timeout>): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      resolve();
    }, ms);
    timers.add(timer);
  });
}

// ---------------------------------------------------------------------------------------------
// The double

class Double implements GitHubDouble {
  readonly requests: RecordedRequest[] = [];
  readonly violations: string[] = [];
  readonly rejections: string[] = [];
  url = '';
  private readonly repos = new Map<string, RepoState>();
  private readonly scripted = new Map<string, ScriptedResponse[]>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private interceptor: ((req: RecordedRequest) => ScriptedResponse | undefined) | null = null;
  private permissions: TokenPermissions | null;
  private nextId = 1;
  private used = 0;
  private readonly resetAt = Math.floor(Date.now() / 1000) + 3600;
  private readonly handlers: ReadonlyMap<string, Handler>;

  constructor(
    readonly description: ApiDescription,
    private readonly server: Server,
    private readonly options: Required<Omit<GitHubDoubleOptions, 'port'>>,
  ) {
    this.handlers = this.routes();
    this.permissions = options.permissions;
  }

  // --- test-facing API ------------------------------------------------------------------------

  async close(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    const closed = new Promise<void>((resolve, reject) => this.server.close((err) => (err ? reject(err) : resolve())));
    this.server.closeAllConnections(); // Octokit's fetch keeps connections alive; close() alone would wait for them
    await closed;
  }

  addCommit(repo: string, sha: string): void {
    const lower = sha.toLowerCase();
    if (!FULL_SHA.test(lower)) throw new Error(`addCommit: "${sha}" is not a 40-hex SHA`);
    this.repo(repo).commits.add(lower);
  }

  setBranch(repo: string, branch: string, sha: string): void {
    this.addCommit(repo, sha);
    this.repo(repo).branches.set(branch, sha.toLowerCase());
  }

  addPull(repo: string, pr: PullSpec): void {
    const state = this.repo(repo);
    this.addCommit(repo, pr.headSha);
    if (pr.mergeCommitSha) this.addCommit(repo, pr.mergeCommitSha);
    state.pulls.set(pr.number, {
      number: pr.number,
      headSha: pr.headSha.toLowerCase(),
      headRef: pr.headRef,
      mergeCommitSha: pr.mergeCommitSha?.toLowerCase() ?? null,
      state: pr.state ?? 'open',
    });
  }

  addForeignCheckRun(repo: string, name: string, sha: string): void {
    const state = this.repo(repo);
    const lower = sha.toLowerCase();
    state.commits.add(lower);
    state.checkRuns.push({
      id: this.id(),
      name,
      head_sha: lower,
      status: 'in_progress',
      conclusion: null,
      external_id: null,
      details_url: null,
      started_at: timestamp(),
      completed_at: null,
      output: { title: null, summary: null, text: null, annotations: [] },
    });
  }

  statuses(repo: string, sha: string): StatusRecord[] {
    return [...(this.repo(repo).statuses.get(sha.toLowerCase()) ?? [])];
  }

  checkRuns(repo: string): CheckRunRecord[] {
    return [...this.repo(repo).checkRuns];
  }

  dispatches(repo: string): DispatchRecord[] {
    return [...this.repo(repo).dispatches];
  }

  failNext(route: string, responses: ScriptedResponse[]): void {
    if (!this.description.operation(route)) throw new Error(`failNext: "${route}" is not a route of the description (expected "METHOD /template")`);
    this.scripted.set(route, [...(this.scripted.get(route) ?? []), ...responses]);
  }

  setInterceptor(fn: ((req: RecordedRequest) => ScriptedResponse | undefined) | null): void {
    this.interceptor = fn;
  }

  setPermissions(permissions: TokenPermissions | null): void {
    this.permissions = permissions;
  }

  reset(): void {
    this.permissions = this.options.permissions;
    // Cleared in place: tests may hold on to these arrays.
    this.requests.length = 0;
    this.violations.length = 0;
    this.rejections.length = 0;
    this.repos.clear();
    this.scripted.clear();
    this.interceptor = null;
  }

  countRequests(filter?: (r: RecordedRequest) => boolean): number {
    return filter ? this.requests.filter(filter).length : this.requests.length;
  }

  // --- HTTP -----------------------------------------------------------------------------------

  async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await readBody(req);
    const url = new URL(req.url ?? '/', 'http://double.invalid');
    const method = (req.method ?? 'GET').toUpperCase();
    const parsed = parseBody(raw);
    const query = Object.fromEntries(url.searchParams);
    const check = this.description.check({ method, path: url.pathname, query, body: parsed.problem ? undefined : parsed.body }, this.options);
    const route = check.match ? check.match.operation.route : `${method} ${url.pathname}`;
    const recorded: RecordedRequest = { method, path: url.pathname, route, query, body: parsed.body, status: 0, headers: headerMap(req) };
    this.requests.push(recorded);
    this.used += 1;
    const problems = parsed.problem ? [...check.problems, `${route}: ${parsed.problem}`] : [...check.problems];
    this.violations.push(...problems);

    const reply = await this.decide(recorded, check.match, problems);
    if (reply.rejection) this.rejections.push(`${route}: ${reply.rejection}`);
    recorded.status = reply.status;
    this.send(res, reply);
  }

  private async decide(recorded: RecordedRequest, match: RouteMatch | null, problems: string[]): Promise<Reply> {
    if (!match) return error(404, 'Not Found');
    const auth = this.authProblem(recorded);
    if (auth) return auth;
    if (problems.length) return error(422, `Invalid request.\n\n${problems.join('\n')}`);
    if (!permits(this.permissions, recorded.route)) {
      const [scope, level] = ROUTE_PERMISSIONS[recorded.route]!;
      return reject(403, 'Resource not accessible by integration', `the token lacks ${scope}: ${level}`);
    }
    const scripted = this.interceptor?.(recorded) ?? this.scripted.get(recorded.route)?.shift();
    if (scripted) {
      if (scripted.afterHandling) {
        const real = this.handle(recorded, match);
        if (real.rejection) this.rejections.push(`${recorded.route}: ${real.rejection}`);
      }
      if (scripted.delayMs) await delay(scripted.delayMs, this.timers);
      return { status: scripted.status, body: scripted.body, headers: scripted.headers ?? {} };
    }
    return this.handle(recorded, match);
  }

  private authProblem(recorded: RecordedRequest): Reply | null {
    if (!this.options.requireAuth) return null;
    const header = recorded.headers.authorization;
    if (!header) return reject(401, 'Requires authentication', 'no Authorization header');
    if (needsJwt(recorded.route) && !JWT.test(header)) {
      return reject(401, 'A JSON web token could not be decoded', 'app route called without a JWT bearer token');
    }
    return null;
  }

  private handle(recorded: RecordedRequest, match: RouteMatch): Reply {
    const handler = this.handlers.get(recorded.route);
    if (!handler) {
      this.violations.push(`${recorded.route}: not implemented by the double (${recorded.method} ${recorded.path})`);
      return error(501, `Not implemented by the GitHub double: ${recorded.route}`);
    }
    const body = isObject(recorded.body) ? recorded.body : {};
    try {
      return handler({ params: match.pathParams, query: recorded.query, body, request: recorded });
    } catch (e) {
      this.violations.push(`${recorded.route}: the double crashed: ${(e as Error).stack ?? String(e)}`);
      return error(500, 'GitHub double crashed');
    }
  }

  private send(res: ServerResponse, reply: Reply): void {
    const headers: Record<string, string> = {
      'content-type': 'application/json; charset=utf-8',
      'x-ratelimit-limit': String(RATE_LIMIT),
      'x-ratelimit-remaining': String(Math.max(0, RATE_LIMIT - this.used)),
      'x-ratelimit-reset': String(this.resetAt),
      'x-ratelimit-used': String(this.used),
      'x-ratelimit-resource': 'core',
      'x-github-request-id': `DOUBLE:${this.requests.length}`,
      ...reply.headers,
    };
    const noBody = reply.status === 204 || reply.status === 304 || reply.body === undefined;
    res.writeHead(reply.status, headers);
    res.end(noBody ? undefined : JSON.stringify(reply.body));
  }

  // --- state helpers --------------------------------------------------------------------------

  /** Repositories are keyed case-insensitively, as GitHub treats owner and name. */
  private repo(fullName: string): RepoState {
    const [owner = '', name = ''] = fullName.split('/');
    return this.repoOf(owner, name);
  }

  private repoOf(owner: string, name: string): RepoState {
    const key = `${owner}/${name}`.toLowerCase();
    let state = this.repos.get(key);
    if (!state) {
      state = new RepoState(owner, name, 100 + this.repos.size);
      this.repos.set(key, state);
    }
    return state;
  }

  private ctxRepo(ctx: Context): RepoState {
    return this.repoOf(ctx.params.owner ?? '', ctx.params.repo ?? '');
  }

  private id(): number {
    return this.nextId++;
  }

  /** GitHub-style page slicing plus a Link header so Octokit's paginate() works. */
  private paginate<T>(items: readonly T[], ctx: Context): { items: T[]; headers: Record<string, string> } {
    const perPage = Math.min(100, Math.max(1, Number(ctx.query.per_page ?? 30) || 30));
    const page = Math.max(1, Number(ctx.query.page ?? 1) || 1);
    const last = Math.max(1, Math.ceil(items.length / perPage));
    const link = (p: number, rel: string): string => {
      const params = new URLSearchParams({ ...ctx.query, per_page: String(perPage), page: String(p) });
      return `<${this.url}${ctx.request.path}?${params}>; rel="${rel}"`;
    };
    const links = [
      page < last ? link(page + 1, 'next') : '',
      page < last ? link(last, 'last') : '',
      page > 1 ? link(page - 1, 'prev') : '',
      page > 1 ? link(1, 'first') : '',
    ];
    const value = links.filter(Boolean).join(', ');
    return { items: items.slice((page - 1) * perPage, page * perPage), headers: value ? { link: value } : {} };
  }

  // --- endpoints ------------------------------------------------------------------------------

  private routes(): Map<string, Handler> {
    const routes: Array<[string, Handler]> = [
      ['GET /rate_limit', () => this.rateLimit()],
      ['GET /repos/{owner}/{repo}', (ctx) => ({ status: 200, body: repoJson(this.url, this.ctxRepo(ctx)) })],
      ['POST /repos/{owner}/{repo}/statuses/{sha}', (ctx) => this.createStatus(ctx)],
      ['GET /repos/{owner}/{repo}/commits/{ref}/statuses', (ctx) => this.listStatuses(ctx)],
      ['GET /repos/{owner}/{repo}/commits/{ref}/status', (ctx) => this.combinedStatus(ctx)],
      ['GET /repos/{owner}/{repo}/commits/{ref}', (ctx) => this.getCommit(ctx)],
      ['GET /repos/{owner}/{repo}/branches/{branch}', (ctx) => this.getBranch(ctx)],
      ['GET /repos/{owner}/{repo}/commits/{commit_sha}/pulls', (ctx) => this.pullsForCommit(ctx)],
      ['GET /repos/{owner}/{repo}/pulls', (ctx) => this.listPulls(ctx)],
      ['GET /repos/{owner}/{repo}/pulls/{pull_number}', (ctx) => this.getPull(ctx)],
      ['POST /repos/{owner}/{repo}/check-runs', (ctx) => this.createCheckRun(ctx)],
      ['PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}', (ctx) => this.updateCheckRun(ctx)],
      ['GET /repos/{owner}/{repo}/check-runs/{check_run_id}', (ctx) => this.getCheckRun(ctx)],
      ['GET /repos/{owner}/{repo}/check-runs/{check_run_id}/annotations', (ctx) => this.listAnnotations(ctx)],
      ['GET /repos/{owner}/{repo}/commits/{ref}/check-runs', (ctx) => this.checkRunsForRef(ctx)],
      ['POST /repos/{owner}/{repo}/dispatches', (ctx) => this.dispatch(ctx)],
      ['GET /repos/{owner}/{repo}/installation', (ctx) => this.installation(ctx)],
      ['POST /app/installations/{installation_id}/access_tokens', (ctx) => this.accessToken(ctx)],
    ];
    for (const [route] of routes) {
      if (!this.description.operation(route)) throw new Error(`GitHub double: "${route}" is no longer in the API description`);
    }
    return new Map(routes);
  }

  private rateLimit(): Reply {
    const core = { limit: RATE_LIMIT, remaining: Math.max(0, RATE_LIMIT - this.used), reset: this.resetAt, used: this.used, resource: 'core' };
    const search = { limit: 30, remaining: 30, reset: this.resetAt, used: 0, resource: 'search' };
    const graphql = { limit: RATE_LIMIT, remaining: RATE_LIMIT, reset: this.resetAt, used: 0, resource: 'graphql' };
    return { status: 200, body: { resources: { core, search, graphql }, rate: core } };
  }

  private createStatus(ctx: Context): Reply {
    const repo = this.ctxRepo(ctx);
    const sha = (ctx.params.sha ?? '').toLowerCase();
    if (!FULL_SHA.test(sha) || !repo.commits.has(sha)) return reject(422, `No commit found for SHA: ${ctx.params.sha}`, `unknown commit ${ctx.params.sha}`);
    const description = text(ctx.body, 'description') ?? null;
    if (description !== null && charCount(description) > STATUS_DESCRIPTION_MAX_CHARS) {
      return validationFailed('Status', 'description', `description is too long (maximum is ${STATUS_DESCRIPTION_MAX_CHARS} characters)`);
    }
    const now = timestamp();
    const record: StatusRecord = {
      id: this.id(),
      state: ctx.body.state as StatusRecord['state'], // the description check guarantees the enum
      context: text(ctx.body, 'context') ?? 'default',
      description,
      target_url: text(ctx.body, 'target_url') ?? null,
      created_at: now,
      updated_at: now,
    };
    repo.statuses.set(sha, [...(repo.statuses.get(sha) ?? []), record]);
    return { status: 201, body: statusJson(this.url, repo, sha, record) };
  }

  private resolveRef(ctx: Context, ref: string): { repo: RepoState; sha: string } | Reply {
    const repo = this.ctxRepo(ctx);
    const resolved = repo.resolve(ref);
    return 'sha' in resolved ? { repo, sha: resolved.sha } : reject(422, resolved.error, resolved.error);
  }

  private listStatuses(ctx: Context): Reply {
    const found = this.resolveRef(ctx, ctx.params.ref ?? '');
    if ('status' in found) return found;
    const newestFirst = [...(found.repo.statuses.get(found.sha) ?? [])].reverse();
    const page = this.paginate(newestFirst, ctx);
    return { status: 200, body: page.items.map((s) => statusJson(this.url, found.repo, found.sha, s)), headers: page.headers };
  }

  private combinedStatus(ctx: Context): Reply {
    const found = this.resolveRef(ctx, ctx.params.ref ?? '');
    if ('status' in found) return found;
    const latest = new Map<string, StatusRecord>(); // contexts are case-insensitive on GitHub
    for (const s of found.repo.statuses.get(found.sha) ?? []) latest.set(s.context.toLowerCase(), s);
    const all = [...latest.values()];
    const page = this.paginate(all, ctx);
    const base = `${this.url}/repos/${found.repo.fullName}`;
    return {
      status: 200,
      headers: page.headers,
      body: {
        state: combinedState(all),
        statuses: page.items.map((s) => statusJson(this.url, found.repo, found.sha, s)),
        sha: found.sha,
        total_count: all.length,
        repository: repoJson(this.url, found.repo),
        commit_url: `${base}/commits/${found.sha}`,
        url: `${base}/commits/${found.sha}/status`,
      },
    };
  }

  private getCommit(ctx: Context): Reply {
    const found = this.resolveRef(ctx, ctx.params.ref ?? '');
    if ('status' in found) return found;
    return { status: 200, body: commitJson(this.url, found.repo, found.sha) };
  }

  private getBranch(ctx: Context): Reply {
    const repo = this.ctxRepo(ctx);
    const name = ctx.params.branch ?? '';
    const sha = repo.branches.get(name);
    if (!sha) return reject(404, 'Branch not found', `unknown branch ${name}`);
    const links = { html: `https://github.com/${repo.fullName}/tree/${name}`, self: `${this.url}/repos/${repo.fullName}/branches/${name}` };
    return { status: 200, body: { name, commit: commitJson(this.url, repo, sha), _links: links, protected: false } };
  }

  private pullsForCommit(ctx: Context): Reply {
    const found = this.resolveRef(ctx, ctx.params.commit_sha ?? '');
    if ('status' in found) return found;
    const pulls = [...found.repo.pulls.values()].filter((pr) => pr.headSha === found.sha || pr.mergeCommitSha === found.sha);
    const page = this.paginate(pulls, ctx);
    return { status: 200, body: page.items.map((pr) => pullJson(this.url, found.repo, pr)), headers: page.headers };
  }

  private listPulls(ctx: Context): Reply {
    const repo = this.ctxRepo(ctx);
    const state = ctx.query.state ?? 'open';
    // `head` is "owner:branch"; the owner part is matched loosely (forks are not modelled).
    const headRef = ctx.query.head?.split(':').pop();
    const pulls = [...repo.pulls.values()]
      .filter((pr) => state === 'all' || pr.state === state)
      .filter((pr) => !headRef || pr.headRef === headRef)
      .sort((a, b) => (ctx.query.direction === 'asc' ? a.number - b.number : b.number - a.number));
    const page = this.paginate(pulls, ctx);
    return { status: 200, body: page.items.map((pr) => pullJson(this.url, repo, pr)), headers: page.headers };
  }

  private getPull(ctx: Context): Reply {
    const repo = this.ctxRepo(ctx);
    const pr = repo.pulls.get(Number(ctx.params.pull_number));
    return pr ? { status: 200, body: pullJson(this.url, repo, pr) } : reject(404, 'Not Found', `unknown pull ${ctx.params.pull_number}`);
  }

  private checkRunFor(ctx: Context): { repo: RepoState; run: CheckRunRecord } | Reply {
    const repo = this.ctxRepo(ctx);
    const run = repo.checkRuns.find((r) => r.id === Number(ctx.params.check_run_id));
    return run ? { repo, run } : reject(404, 'Not Found', `unknown check run ${ctx.params.check_run_id}`);
  }

  private createCheckRun(ctx: Context): Reply {
    const repo = this.ctxRepo(ctx);
    const headSha = (text(ctx.body, 'head_sha') ?? '').toLowerCase();
    if (!repo.commits.has(headSha)) return reject(422, `No commit found for SHA: ${text(ctx.body, 'head_sha')}`, `unknown head_sha ${headSha}`);
    const limits = outputProblem(ctx.body.output);
    if (limits) return limits;
    const run: CheckRunRecord = {
      id: this.id(),
      name: text(ctx.body, 'name') ?? '',
      head_sha: headSha,
      status: text(ctx.body, 'status') ?? 'queued',
      conclusion: null,
      external_id: text(ctx.body, 'external_id') ?? null,
      details_url: text(ctx.body, 'details_url') ?? null,
      started_at: text(ctx.body, 'started_at') ?? timestamp(),
      completed_at: null,
      output: { title: null, summary: null, text: null, annotations: [] },
    };
    const problem = applyCompletion(run, ctx.body);
    if (problem) return problem;
    mergeOutput(run, ctx.body.output);
    repo.checkRuns.push(run);
    return { status: 201, body: checkRunJson(this.url, repo, run) };
  }

  private updateCheckRun(ctx: Context): Reply {
    const found = this.checkRunFor(ctx);
    if ('status' in found) return found;
    const limits = outputProblem(ctx.body.output);
    if (limits) return limits;
    // Work on a copy so a rejected update leaves the stored run untouched.
    const run: CheckRunRecord = { ...found.run, output: { ...found.run.output, annotations: [...found.run.output.annotations] } };
    for (const key of ['name', 'external_id', 'details_url', 'started_at', 'status'] as const) {
      const value = text(ctx.body, key);
      if (value !== undefined) run[key] = value;
    }
    const problem = applyCompletion(run, ctx.body);
    if (problem) return problem;
    mergeOutput(run, ctx.body.output);
    Object.assign(found.run, run);
    return { status: 200, body: checkRunJson(this.url, found.repo, found.run) };
  }

  private getCheckRun(ctx: Context): Reply {
    const found = this.checkRunFor(ctx);
    return 'status' in found ? found : { status: 200, body: checkRunJson(this.url, found.repo, found.run) };
  }

  private listAnnotations(ctx: Context): Reply {
    const found = this.checkRunFor(ctx);
    if ('status' in found) return found;
    const page = this.paginate(found.run.output.annotations, ctx);
    return { status: 200, body: page.items, headers: page.headers };
  }

  private checkRunsForRef(ctx: Context): Reply {
    const found = this.resolveRef(ctx, ctx.params.ref ?? '');
    if ('status' in found) return found;
    const { check_name: name, status } = ctx.query;
    let runs = found.repo.checkRuns.filter((r) => r.head_sha === found.sha && (!name || r.name === name) && (!status || r.status === status)).reverse(); // newest first
    if ((ctx.query.filter ?? 'latest') === 'latest') {
      const seen = new Set<string>();
      runs = runs.filter((r) => !seen.has(r.name) && seen.add(r.name) !== undefined);
    }
    const page = this.paginate(runs, ctx);
    return { status: 200, headers: page.headers, body: { total_count: runs.length, check_runs: page.items.map((r) => checkRunJson(this.url, found.repo, r)) } };
  }

  private dispatch(ctx: Context): Reply {
    const eventType = text(ctx.body, 'event_type') ?? '';
    const payload = ctx.body.client_payload;
    if (charCount(eventType) > DISPATCH_EVENT_TYPE_MAX_CHARS) return validationFailed('Repository', 'event_type', 'event_type is too long');
    if (isObject(payload) && Object.keys(payload).length > DISPATCH_MAX_KEYS) {
      return validationFailed('Repository', 'client_payload', `client_payload has more than ${DISPATCH_MAX_KEYS} top-level properties`);
    }
    if (payload !== undefined && Buffer.byteLength(JSON.stringify(payload), 'utf8') >= DISPATCH_PAYLOAD_LIMIT_BYTES) {
      return validationFailed('Repository', 'client_payload', 'client_payload is too large (must be under 64 KB)');
    }
    this.ctxRepo(ctx).dispatches.push({ event_type: eventType, client_payload: payload });
    return { status: 204 };
  }

  private installation(ctx: Context): Reply {
    const repo = this.ctxRepo(ctx);
    const now = timestamp();
    return {
      status: 200,
      body: {
        id: 1,
        account: userJson(repo.owner, 2, 'Organization'),
        app_id: 1,
        app_slug: 'sauce-test',
        target_id: 2,
        target_type: 'Organization',
        repository_selection: 'all',
        access_tokens_url: `${this.url}/app/installations/1/access_tokens`,
        repositories_url: `${this.url}/installation/repositories`,
        html_url: `https://github.com/organizations/${repo.owner}/settings/installations/1`,
        permissions: { checks: 'write', statuses: 'write', contents: 'write', metadata: 'read', pull_requests: 'read' },
        events: [],
        created_at: now,
        updated_at: now,
        single_file_name: null,
      },
    };
  }

  private accessToken(ctx: Context): Reply {
    const expires = timestamp(new Date(Date.now() + 3600_000));
    const permissions = isObject(ctx.body.permissions) ? ctx.body.permissions : { checks: 'write', statuses: 'write', contents: 'write', metadata: 'read' };
    return { status: 201, body: { token: 'ghs_test', expires_at: expires, permissions, repository_selection: 'all' } };
  }
}

/** Byte limits and the per-request annotation cap, which GitHub enforces beyond the description. */
function outputProblem(output: unknown): Reply | null {
  if (!isObject(output)) return null;
  for (const field of ['summary', 'text'] as const) {
    const value = text(output, field);
    if (value !== undefined && Buffer.byteLength(value, 'utf8') > CHECK_OUTPUT_MAX_BYTES) {
      return validationFailed('CheckRun', `output.${field}`, `output.${field} is too long (maximum is ${CHECK_OUTPUT_MAX_BYTES} bytes)`);
    }
  }
  const annotations = output.annotations;
  if (Array.isArray(annotations) && annotations.length > ANNOTATIONS_PER_REQUEST) {
    return validationFailed('CheckRun', 'output.annotations', `at most ${ANNOTATIONS_PER_REQUEST} annotations per request`);
  }
  return null;
}

/** A conclusion completes the run; "completed" without a conclusion is refused, as on GitHub. */
function applyCompletion(run: CheckRunRecord, body: JsonObject): Reply | null {
  const conclusion = text(body, 'conclusion');
  if (conclusion !== undefined) {
    run.conclusion = conclusion;
    run.status = 'completed';
  }
  if (run.status === 'completed') {
    if (run.conclusion === null) return validationFailed('CheckRun', 'conclusion', 'conclusion is required when status is completed');
    run.completed_at = text(body, 'completed_at') ?? run.completed_at ?? timestamp();
  }
  return null;
}

/** Title, summary and text replace; annotations accumulate across create and updates. */
function mergeOutput(run: CheckRunRecord, output: unknown): void {
  if (!isObject(output)) return;
  for (const field of ['title', 'summary', 'text'] as const) {
    const value = text(output, field);
    if (value !== undefined) run.output[field] = value;
  }
  if (Array.isArray(output.annotations)) run.output.annotations.push(...(output.annotations as unknown[]));
}

export async function startGitHubDouble(options: GitHubDoubleOptions = {}): Promise<GitHubDouble> {
  const description = loadApiDescription();
  let double: Double | null = null;
  const server = createServer((req, res) => {
    double?.serve(req, res).catch((e: unknown) => {
      double?.violations.push(`the double failed to answer ${req.method} ${req.url}: ${String(e)}`);
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json; charset=utf-8' });
      res.end('{"message":"GitHub double failed"}');
    });
  });
  double = new Double(description, server, {
    requireAuth: options.requireAuth ?? true,
    allowUnknownBodyFields: options.allowUnknownBodyFields ?? false,
    permissions: options.permissions === undefined ? readmeWorkflowPermissions() : options.permissions,
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  double.url = `http://127.0.0.1:${port}`;
  return double;
}
