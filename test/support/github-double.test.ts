import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { Octokit } from '@octokit/rest';
import { createAppAuth } from '@octokit/auth-app';
import { generateKeyPairSync } from 'node:crypto';
import { ROUTE_PERMISSIONS, permits, startGitHubDouble, type GitHubDouble } from './github-double.js';
import { loadApiDescription } from './openapi.js';
import { readmeWorkflowPermissions } from './readme-workflow.js';

const SHA = 'a'.repeat(40);
const SHA2 = `${'b'.repeat(39)}c`;
const REPO = 'acme/shop';
const silent = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };

let gh: GitHubDouble;
let octokit: Octokit;

/** The HTTP status of an Octokit call, whether it resolved or threw a RequestError. */
async function statusOf(call: Promise<{ status: number }>): Promise<number> {
  try {
    return (await call).status;
  } catch (e) {
    return (e as { status?: number }).status ?? -1;
  }
}

/** Raw request, for bodies Octokit's typings would not let us write. */
async function send(method: string, path: string, body?: unknown, headers: Record<string, string> = { authorization: 'token t' }): Promise<Response> {
  const init: RequestInit = { method, headers: { 'content-type': 'application/json', ...headers } };
  if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body);
  return fetch(`${gh.url}${path}`, init);
}

beforeAll(async () => {
  gh = await startGitHubDouble();
  octokit = new Octokit({ baseUrl: gh.url, auth: 'ghs_test', log: silent });
});
afterAll(async () => gh.close());
beforeEach(() => {
  gh.reset();
  gh.addCommit(REPO, SHA);
  gh.setBranch(REPO, 'feature/login', SHA2);
});

describe('openapi description', () => {
  const api = loadApiDescription();

  it('loads and indexes every operation', () => {
    expect(api.loadInfo.operations).toBeGreaterThan(1000);
    expect(api.operation('POST /repos/{owner}/{repo}/statuses/{sha}')).toBeDefined();
  });

  it('prefers literal segments and lets multi-segment parameters span slashes', () => {
    expect(api.match('GET', '/repos/o/r/commits/feature/x/status')?.operation.template).toBe('/repos/{owner}/{repo}/commits/{ref}/status');
    expect(api.match('GET', '/repos/o/r/commits/feature%2Fx/check-runs')?.pathParams.ref).toBe('feature/x');
    expect(api.match('GET', '/repos/o/r/commits/abc/pulls')?.operation.template).toBe('/repos/{owner}/{repo}/commits/{commit_sha}/pulls');
    expect(api.match('GET', '/repos/o/r/branches/a/b')?.pathParams.branch).toBe('a/b');
    expect(api.match('POST', '/nope')).toBeNull();
  });

  const check = (method: string, path: string, body?: unknown, query: Record<string, string> = {}) => api.check({ method, path, query, body });

  it.each([
    ['an unknown path', 'POST', '/repos/o/r/statusez/x', {}, /not in the API description/],
    ['a wrong method', 'PUT', `/repos/o/r/statuses/${SHA}`, {}, /exists only for POST/],
    ['a missing body', 'POST', `/repos/o/r/statuses/${SHA}`, undefined, /a request body is required/],
    [
      'a value outside an enum',
      'POST',
      `/repos/o/r/statuses/${SHA}`,
      { state: 'ok' },
      /body\.state must be equal to one of the allowed values.*"success".*\(got "ok"\)/,
    ],
    ['a wrong type', 'POST', `/repos/o/r/statuses/${SHA}`, { state: 'success', context: 7 }, /body\.context must be string/],
    ['a misspelt field', 'POST', `/repos/o/r/statuses/${SHA}`, { state: 'success', target_uri: 'x' }, /unknown field "target_uri"/],
    ['missing required fields', 'POST', '/repos/o/r/check-runs', {}, /required property 'name'[\s\S]*required property 'head_sha'/],
    [
      'a nested enum',
      'POST',
      '/repos/o/r/check-runs',
      {
        name: 'n',
        head_sha: SHA,
        output: { title: 't', summary: 's', annotations: [{ path: 'a', start_line: 1, end_line: 1, annotation_level: 'info', message: 'm' }] },
      },
      /body\.output\.annotations\[0\]\.annotation_level/,
    ],
    [
      'a bad date-time',
      'POST',
      '/repos/o/r/check-runs',
      { name: 'n', head_sha: SHA, started_at: 'yesterday' },
      /body\.started_at must match format "date-time"/,
    ],
    ['a conditional requirement (anyOf)', 'PATCH', '/repos/o/r/check-runs/5', { status: 'completed' }, /required property 'conclusion'/],
    ['a bad path parameter', 'GET', '/repos/o/r/check-runs/abc', undefined, /path parameter "check_run_id" must be integer/],
    ['a body on a body-less operation', 'GET', '/repos/o/r', { x: 1 }, /takes no request body/],
  ])('rejects %s', (_label, method, path, body, problem) => {
    const result = check(method, path, body);
    expect(result.kind).not.toBe('ok');
    expect(result.problems.join('\n')).toMatch(problem);
  });

  it('checks declared query parameters but ignores unknown ones', () => {
    expect(check('GET', '/repos/o/r/pulls', undefined, { state: 'merged' }).problems.join()).toMatch(/query parameter "state" must be equal to one of/);
    expect(check('GET', '/repos/o/r/pulls', undefined, { state: 'all', per_page: '5', whatever: 'x' }).kind).toBe('ok');
    expect(check('GET', '/repos/o/r/pulls', undefined, { per_page: 'many' }).problems.join()).toMatch(/"per_page" must be integer/);
  });

  it('accepts valid requests, including OpenAPI nullable fields', () => {
    expect(check('POST', `/repos/o/r/statuses/${SHA}`, { state: 'success', target_url: null, description: null, context: 'c' }).kind).toBe('ok');
    expect(check('PATCH', '/repos/o/r/check-runs/5', { status: 'completed', conclusion: 'success', output: { summary: 's' } }).kind).toBe('ok');
    expect(check('POST', '/repos/o/r/dispatches', { event_type: 'e', client_payload: { any: { nested: true } } }).kind).toBe('ok');
  });

  it('can be told to accept unknown body fields', () => {
    const body = { state: 'success', target_uri: 'x' };
    expect(api.check({ method: 'POST', path: `/repos/o/r/statuses/${SHA}`, query: {}, body }, { allowUnknownBodyFields: true }).kind).toBe('ok');
  });
});

describe('commit statuses', () => {
  it('creates, lists newest first and combines per context', async () => {
    const res = await octokit.rest.repos.createCommitStatus({
      owner: 'acme',
      repo: 'shop',
      sha: SHA,
      state: 'pending',
      context: 'sauce/a',
      description: 'running',
    });
    expect(res.status).toBe(201);
    expect(res.data).toMatchObject({ state: 'pending', context: 'sauce/a', description: 'running', target_url: null });
    await octokit.rest.repos.createCommitStatus({ owner: 'acme', repo: 'shop', sha: SHA, state: 'success', context: 'sauce/a' });
    await octokit.rest.repos.createCommitStatus({ owner: 'acme', repo: 'shop', sha: SHA, state: 'success', context: 'sauce/b', target_url: 'https://x.test/' });

    expect(gh.statuses(REPO, SHA).map((s) => `${s.context}:${s.state}`)).toEqual(['sauce/a:pending', 'sauce/a:success', 'sauce/b:success']);
    const list = await octokit.rest.repos.listCommitStatusesForRef({ owner: 'acme', repo: 'shop', ref: SHA, per_page: 2 });
    expect(list.data.map((s) => s.state)).toEqual(['success', 'success']);
    expect(list.headers.link).toMatch(/rel="next"/);
    const all = await octokit.paginate(octokit.rest.repos.listCommitStatusesForRef, { owner: 'acme', repo: 'shop', ref: SHA, per_page: 2 });
    expect(all).toHaveLength(3);

    const combined = await octokit.rest.repos.getCombinedStatusForRef({ owner: 'acme', repo: 'shop', ref: SHA });
    expect(combined.data).toMatchObject({ state: 'success', total_count: 2, sha: SHA });
    await octokit.rest.repos.createCommitStatus({ owner: 'acme', repo: 'shop', sha: SHA, state: 'failure', context: 'sauce/b' });
    expect((await octokit.rest.repos.getCombinedStatusForRef({ owner: 'acme', repo: 'shop', ref: SHA })).data.state).toBe('failure');
    expect((await octokit.rest.repos.getCombinedStatusForRef({ owner: 'acme', repo: 'shop', ref: 'feature/login' })).data).toMatchObject({
      state: 'pending',
      total_count: 0,
    });
    expect(gh.violations).toEqual([]);
  });

  it('records a state outside the enum as a violation and answers 422', async () => {
    const res = await send('POST', `/repos/acme/shop/statuses/${SHA}`, { state: 'ok' });
    expect(res.status).toBe(422);
    expect(gh.violations).toHaveLength(1);
    expect(gh.violations[0]).toMatch(/^POST \/repos\/\{owner\}\/\{repo\}\/statuses\/\{sha\}: body\.state/);
    expect(gh.statuses(REPO, SHA)).toEqual([]);
  });

  it('rejects what GitHub rejects beyond the description: unknown SHA, 141-char description', async () => {
    expect(await statusOf(octokit.rest.repos.createCommitStatus({ owner: 'acme', repo: 'shop', sha: 'f'.repeat(40), state: 'success' }))).toBe(422);
    expect(
      await statusOf(octokit.rest.repos.createCommitStatus({ owner: 'acme', repo: 'shop', sha: SHA, state: 'success', description: 'é'.repeat(141) })),
    ).toBe(422);
    expect(
      await statusOf(octokit.rest.repos.createCommitStatus({ owner: 'acme', repo: 'shop', sha: SHA, state: 'success', description: 'é'.repeat(140) })),
    ).toBe(201);
    expect(gh.rejections).toEqual([expect.stringMatching(/unknown commit/), expect.stringMatching(/description is too long/)]);
    expect(gh.violations).toEqual([]);
  });
});

describe('commits, branches and pulls', () => {
  beforeEach(() => {
    gh.addPull(REPO, { number: 7, headSha: SHA2, headRef: 'feature/login', mergeCommitSha: SHA });
    gh.addPull(REPO, { number: 3, headSha: SHA, headRef: 'old', mergeCommitSha: null, state: 'closed' });
  });

  it('resolves full SHAs, unique short SHAs and branch names', async () => {
    const get = (ref: string) => octokit.rest.repos.getCommit({ owner: 'acme', repo: 'shop', ref });
    expect((await get(SHA)).data.sha).toBe(SHA);
    expect((await get('aaaaaaa')).data.sha).toBe(SHA);
    expect((await get('feature/login')).data.sha).toBe(SHA2);
    expect(await statusOf(get('aaa'))).toBe(422);
    expect(await statusOf(get('nope'))).toBe(422);
    const branch = await octokit.rest.repos.getBranch({ owner: 'acme', repo: 'shop', branch: 'feature/login' });
    expect(branch.data).toMatchObject({ name: 'feature/login', commit: { sha: SHA2 } });
    expect(await statusOf(octokit.rest.repos.getBranch({ owner: 'acme', repo: 'shop', branch: 'gone' }))).toBe(404);
  });

  it('finds pulls by head or merge commit, by state and by head', async () => {
    const forCommit = await octokit.rest.repos.listPullRequestsAssociatedWithCommit({ owner: 'acme', repo: 'shop', commit_sha: SHA });
    expect(forCommit.data.map((p) => p.number).sort()).toEqual([3, 7]);
    expect((await octokit.rest.pulls.list({ owner: 'acme', repo: 'shop' })).data.map((p) => p.number)).toEqual([7]);
    expect((await octokit.rest.pulls.list({ owner: 'acme', repo: 'shop', state: 'all' })).data.map((p) => p.number)).toEqual([7, 3]);
    expect((await octokit.rest.pulls.list({ owner: 'acme', repo: 'shop', head: 'acme:old', state: 'closed' })).data.map((p) => p.number)).toEqual([3]);
    const pr = await octokit.rest.pulls.get({ owner: 'acme', repo: 'shop', pull_number: 7 });
    expect(pr.data).toMatchObject({ number: 7, state: 'open', head: { sha: SHA2, ref: 'feature/login' }, merge_commit_sha: SHA });
    expect(await statusOf(octokit.rest.pulls.get({ owner: 'acme', repo: 'shop', pull_number: 99 }))).toBe(404);
    expect(gh.violations).toEqual([]);
  });
});

describe('check runs', () => {
  const annotation = (i: number) => ({ path: `f${i}.ts`, start_line: 1, end_line: 1, annotation_level: 'failure' as const, message: `m${i}` });

  it('creates, updates (appending annotations) and lists', async () => {
    const created = await octokit.rest.checks.create({
      owner: 'acme',
      repo: 'shop',
      name: 'Sauce',
      head_sha: SHA,
      status: 'in_progress',
      external_id: 'job-1',
      output: { title: 'Running', summary: 's', annotations: [annotation(1)] },
    });
    expect(created.status).toBe(201);
    expect(created.data).toMatchObject({ name: 'Sauce', status: 'in_progress', conclusion: null, output: { annotations_count: 1 } });
    const id = created.data.id;
    const updated = await octokit.rest.checks.update({
      owner: 'acme',
      repo: 'shop',
      check_run_id: id,
      conclusion: 'failure',
      output: { title: 'Done', summary: 'final', annotations: [annotation(2)] },
    });
    expect(updated.data).toMatchObject({ status: 'completed', conclusion: 'failure', output: { title: 'Done', annotations_count: 2 } });
    expect(updated.data.completed_at).toMatch(/Z$/);
    const [run] = gh.checkRuns(REPO);
    expect(run?.output).toMatchObject({ title: 'Done', summary: 'final', text: null, annotations: [annotation(1), annotation(2)] });
    expect((await octokit.rest.checks.listAnnotations({ owner: 'acme', repo: 'shop', check_run_id: id })).data).toHaveLength(2);

    await octokit.rest.checks.create({ owner: 'acme', repo: 'shop', name: 'Sauce', head_sha: SHA, status: 'queued' });
    await octokit.rest.checks.create({ owner: 'acme', repo: 'shop', name: 'Other', head_sha: SHA });
    const latest = await octokit.rest.checks.listForRef({ owner: 'acme', repo: 'shop', ref: SHA });
    expect(latest.data.total_count).toBe(2);
    const named = await octokit.rest.checks.listForRef({ owner: 'acme', repo: 'shop', ref: SHA, check_name: 'Sauce', filter: 'all' });
    expect(named.data.check_runs.map((r) => r.status)).toEqual(['queued', 'completed']);
    expect((await octokit.rest.checks.listForRef({ owner: 'acme', repo: 'shop', ref: SHA, status: 'completed', filter: 'all' })).data.total_count).toBe(1);
    expect((await octokit.rest.checks.get({ owner: 'acme', repo: 'shop', check_run_id: id })).data.id).toBe(id);
    expect(await statusOf(octokit.rest.checks.get({ owner: 'acme', repo: 'shop', check_run_id: 424242 }))).toBe(404);
    expect(gh.violations).toEqual([]);
  });

  it.each([
    ['without name and head_sha', { output: undefined }, /required property 'name'/],
    [
      'with annotation_level "info"',
      { name: 'n', head_sha: SHA, output: { title: 't', summary: 's', annotations: [{ ...annotation(1), annotation_level: 'info' }] } },
      /annotation_level must be equal to one of/,
    ],
    [
      'with 51 annotations',
      { name: 'n', head_sha: SHA, output: { title: 't', summary: 's', annotations: Array.from({ length: 51 }, (_, i) => annotation(i)) } },
      /must NOT have more than 50 items/,
    ],
    ['with a conclusion outside the enum', { name: 'n', head_sha: SHA, conclusion: 'passed' }, /body\.conclusion must be equal to one of/],
  ])('catches a check run %s', async (_label, body, problem) => {
    const res = await send('POST', '/repos/acme/shop/check-runs', body);
    expect(res.status).toBe(422);
    expect(gh.violations.join('\n')).toMatch(problem);
    expect(gh.checkRuns(REPO)).toEqual([]);
  });

  it('refuses what GitHub refuses beyond the description', async () => {
    const big = 'é'.repeat(40_000); // 40,000 chars passes the description's maxLength; 80,000 bytes does not pass GitHub
    expect(await statusOf(octokit.rest.checks.create({ owner: 'acme', repo: 'shop', name: 'n', head_sha: SHA, output: { title: 't', summary: big } }))).toBe(
      422,
    );
    expect(await statusOf(octokit.rest.checks.create({ owner: 'acme', repo: 'shop', name: 'n', head_sha: 'f'.repeat(40) }))).toBe(422);
    expect(await statusOf(octokit.rest.checks.create({ owner: 'acme', repo: 'shop', name: 'n', head_sha: SHA, status: 'completed' }))).toBe(422);
    expect(gh.rejections).toHaveLength(3);
    expect(gh.violations).toEqual([]);
    const { data } = await octokit.rest.checks.create({ owner: 'acme', repo: 'shop', name: 'n', head_sha: SHA });
    const patch = await send('PATCH', `/repos/acme/shop/check-runs/${data.id}`, { status: 'completed' });
    expect(patch.status).toBe(422); // the description's anyOf says so: a violation
    expect(gh.violations.join()).toMatch(/conclusion/);
    expect(gh.checkRuns(REPO)[0]?.status).toBe('queued');
  });
});

describe("the token's permissions", () => {
  it("default to the README workflow's permissions block", async () => {
    const readme = readmeWorkflowPermissions();
    for (const route of Object.keys(ROUTE_PERMISSIONS)) {
      const [scope, level] = ROUTE_PERMISSIONS[route]!;
      const have = readme[scope] ?? 'none';
      expect([route, permits(readme, route)]).toEqual([route, have === 'write' || (level === 'read' && have === 'read')]);
    }
    expect(gh.description.operation('GET /repos/{owner}/{repo}/commits/{ref}')).toBeDefined();
  });

  it.each(Object.entries(ROUTE_PERMISSIONS))('%s needs %p (write implies read; a scope left out is none)', (route, [scope, level]) => {
    expect(gh.description.operation(route)).toBeDefined();
    expect(permits({}, route)).toBe(false);
    expect(permits({ [scope]: 'none' }, route)).toBe(false);
    expect(permits({ [scope]: 'read' }, route)).toBe(level === 'read');
    expect(permits({ [scope]: 'write' }, route)).toBe(true);
    expect(permits({ metadata: 'read', actions: 'write' }, route)).toBe(false);
    expect(permits(null, route)).toBe(true);
  });

  it('routes not in the table are not checked (the relay dispatches with its own token)', () => {
    expect(permits({}, 'POST /repos/{owner}/{repo}/dispatches')).toBe(true);
    expect(permits({}, 'GET /repos/{owner}/{repo}')).toBe(true);
  });

  it('answers a call the token may not make 403 "Resource not accessible by integration", as GitHub does, and changes nothing', async () => {
    gh.setPermissions({ checks: 'read' });
    const res = await send('POST', `/repos/acme/shop/statuses/${SHA}`, { state: 'success', context: 'c' });
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ message: 'Resource not accessible by integration', status: '403' });
    expect(await statusOf(octokit.rest.repos.getCommit({ owner: 'acme', repo: 'shop', ref: SHA }))).toBe(403);
    expect(await statusOf(octokit.rest.checks.listForRef({ owner: 'acme', repo: 'shop', ref: SHA }))).toBe(200);
    expect(await statusOf(octokit.rest.checks.create({ owner: 'acme', repo: 'shop', name: 'n', head_sha: SHA }))).toBe(403);
    expect(gh.statuses(REPO, SHA)).toEqual([]);
    expect(gh.checkRuns(REPO)).toEqual([]);
    expect(gh.rejections).toEqual([
      'POST /repos/{owner}/{repo}/statuses/{sha}: the token lacks statuses: write',
      'GET /repos/{owner}/{repo}/commits/{ref}: the token lacks contents: read',
      'POST /repos/{owner}/{repo}/check-runs: the token lacks checks: write',
    ]);
    expect(gh.violations).toEqual([]);
    gh.setPermissions(null);
    expect(await statusOf(octokit.rest.repos.getCommit({ owner: 'acme', repo: 'shop', ref: SHA }))).toBe(200);
    gh.reset();
    gh.addCommit(REPO, SHA);
    expect(await statusOf(octokit.rest.repos.createCommitStatus({ owner: 'acme', repo: 'shop', sha: SHA, state: 'success' }))).toBe(201);
  });

  it('can start with every call allowed', async () => {
    const open = await startGitHubDouble({ permissions: null });
    try {
      open.addCommit(REPO, SHA);
      const res = await fetch(`${open.url}/repos/acme/shop/commits/${SHA}/pulls`, { headers: { authorization: 'token t' } });
      expect(res.status).toBe(200);
    } finally {
      await open.close();
    }
  });
});

describe('repository_dispatch', () => {
  it('records event_type and client_payload and answers 204', async () => {
    const res = await octokit.rest.repos.createDispatchEvent({ owner: 'acme', repo: 'shop', event_type: 'sauce-job', client_payload: { job: 'j1' } });
    expect(res.status).toBe(204);
    expect(gh.dispatches(REPO)).toEqual([{ event_type: 'sauce-job', client_payload: { job: 'j1' } }]);
  });

  it('catches too many keys and a long event_type as violations, an oversize payload as a rejection', async () => {
    const keys = Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`k${i}`, i]));
    expect((await send('POST', '/repos/acme/shop/dispatches', { event_type: 'e', client_payload: keys })).status).toBe(422);
    expect((await send('POST', '/repos/acme/shop/dispatches', { event_type: 'e'.repeat(101) })).status).toBe(422);
    expect(gh.violations).toHaveLength(2);
    const atLimit = { blob: 'x'.repeat(65_536 - '{"blob":""}'.length) }; // serialises to exactly 65,536 bytes
    expect((await send('POST', '/repos/acme/shop/dispatches', { event_type: 'e', client_payload: atLimit })).status).toBe(422);
    const underLimit = { blob: 'x'.repeat(65_535 - '{"blob":""}'.length) };
    expect((await send('POST', '/repos/acme/shop/dispatches', { event_type: 'e', client_payload: underLimit })).status).toBe(204);
    expect(gh.rejections).toEqual([expect.stringMatching(/too large/)]);
    expect(gh.dispatches(REPO)).toHaveLength(1);
  });
});

describe('routing, auth and scripting', () => {
  it('answers an unknown path 404 and an unimplemented described one 501, both as violations', async () => {
    expect((await send('POST', '/repos/acme/shop/statusez', { state: 'success' })).status).toBe(404);
    expect((await octokit.request('GET /repos/{owner}/{repo}/issues', { owner: 'acme', repo: 'shop' }).catch((e: { status: number }) => e)).status).toBe(501);
    expect(gh.violations).toEqual([
      expect.stringMatching(/statusez: not in the API description/),
      expect.stringMatching(/issues: not implemented by the double/),
    ]);
    expect(gh.requests.map((r) => r.route)).toEqual(['POST /repos/acme/shop/statusez', 'GET /repos/{owner}/{repo}/issues']);
  });

  it('flags a body that is not JSON', async () => {
    expect((await send('POST', '/repos/acme/shop/dispatches', '{"event_type":')).status).toBe(422);
    expect(gh.violations.join()).toMatch(/not valid JSON/);
  });

  it('sends rate-limit headers and requires authorization', async () => {
    const res = await send('GET', '/repos/acme/shop', undefined, {});
    expect(res.status).toBe(401);
    for (const name of ['x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset', 'x-ratelimit-used']) expect(res.headers.get(name)).toMatch(/^\d+$/);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    const open = await startGitHubDouble({ requireAuth: false });
    try {
      expect((await fetch(`${open.url}/rate_limit`)).status).toBe(200);
    } finally {
      await open.close();
    }
  });

  it('serves the GitHub App installation flow to @octokit/auth-app, and wants a JWT there', async () => {
    const { privateKey } = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    });
    const app = new Octokit({ baseUrl: gh.url, authStrategy: createAppAuth, auth: { appId: 1, privateKey }, log: silent });
    const installation = await app.rest.apps.getRepoInstallation({ owner: 'acme', repo: 'shop' });
    expect(installation.data.id).toBe(1);
    const asInstallation = new Octokit({ baseUrl: gh.url, authStrategy: createAppAuth, auth: { appId: 1, privateKey, installationId: 1 }, log: silent });
    await asInstallation.rest.repos.createDispatchEvent({ owner: 'acme', repo: 'shop', event_type: 'e' });
    expect(gh.requests.at(-1)?.headers.authorization).toBe('token ghs_test');
    expect(gh.countRequests((r) => r.route === 'POST /app/installations/{installation_id}/access_tokens')).toBe(1);
    expect(await statusOf(octokit.rest.apps.getRepoInstallation({ owner: 'acme', repo: 'shop' }))).toBe(401);
    expect(gh.violations).toEqual([]);
  });

  it('plays failNext answers in order, then resumes normal handling', async () => {
    gh.failNext('POST /repos/{owner}/{repo}/dispatches', [
      { status: 502, body: { message: 'bad gateway' } },
      { status: 403, headers: { 'x-ratelimit-remaining': '0' }, delayMs: 20 },
    ]);
    const call = () => statusOf(octokit.rest.repos.createDispatchEvent({ owner: 'acme', repo: 'shop', event_type: 'e' }));
    expect([await call(), await call(), await call()]).toEqual([502, 403, 204]);
    expect(gh.requests.map((r) => r.status)).toEqual([502, 403, 204]);
    expect(gh.dispatches(REPO)).toHaveLength(1);
    expect(() => gh.failNext('POST /repos/{owner}/{repo}/dispatch', [])).toThrow(/not a route/);
  });

  it('can answer an error after acting on the request (a response lost on the way back)', async () => {
    gh.failNext('POST /repos/{owner}/{repo}/check-runs', [{ status: 502, body: { message: 'Bad Gateway' }, afterHandling: true }]);
    expect(await statusOf(octokit.rest.checks.create({ owner: 'acme', repo: 'shop', name: 'n', head_sha: SHA }))).toBe(502);
    expect(gh.checkRuns(REPO)).toHaveLength(1);
    expect(gh.requests.map((r) => r.status)).toEqual([502]);
  });

  it('lets an interceptor override answers', async () => {
    gh.setInterceptor((req) => (req.method === 'GET' ? { status: 500, body: { message: 'boom' } } : undefined));
    expect(await statusOf(octokit.rest.repos.get({ owner: 'acme', repo: 'shop' }))).toBe(500);
    expect(await statusOf(octokit.rest.repos.createDispatchEvent({ owner: 'acme', repo: 'shop', event_type: 'e' }))).toBe(204);
    gh.setInterceptor(null);
    expect(await statusOf(octokit.rest.repos.get({ owner: 'acme', repo: 'shop' }))).toBe(200);
  });

  it('reset clears requests, violations and state in place', async () => {
    const requests = gh.requests;
    await send('POST', '/nowhere', {});
    gh.reset();
    expect(requests).toHaveLength(0);
    expect(gh.violations).toHaveLength(0);
    expect(await statusOf(octokit.rest.repos.getCommit({ owner: 'acme', repo: 'shop', ref: SHA }))).toBe(422);
  });
});
