/**
 * The Action's GitHub client against the GitHub double, in process: the retry policy is
 * @octokit/plugin-retry and @octokit/plugin-throttling (waits counted in a 1 ms unit here instead of
 * GitHub's 1 s), plus a lookup before a check run create is retried.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from '@jest/globals';
import { createOctokit, GitHubApi, type CheckRunBody } from '../../src/action/github.js';
import { GitHubApiError } from '../../src/action/errors.js';
import { startGitHubDouble, type GitHubDouble } from '../support/github-double.js';
import { REPO, SHA } from './harness.js';

let double: GitHubDouble;
beforeAll(async () => {
  double = await startGitHubDouble();
});
afterAll(async () => double.close());
beforeEach(() => {
  double.reset();
  double.addCommit(REPO, SHA);
});
afterEach(() => expect(double.violations).toEqual([]));

const api = (waitUnitMs = 1) => new GitHubApi(createOctokit('ghs_test', { baseUrl: double.url, waitUnitMs }), REPO);
const routes = () => double.requests.map((r) => `${r.route} ${r.status}`);
const body: CheckRunBody = {
  name: 'Sauce Labs / shop',
  external_id: 'sauce-jobs:shop',
  status: 'completed',
  conclusion: 'failure',
  output: {
    title: '1 failed',
    summary: 's',
    annotations: [{ path: '.github', start_line: 1, end_line: 1, annotation_level: 'failure', message: 'm' }],
  },
};
const CREATE = 'POST /repos/{owner}/{repo}/check-runs';
const LIST = 'GET /repos/{owner}/{repo}/commits/{ref}/check-runs';
const PATCH = 'PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}';
const STATUS = 'POST /repos/{owner}/{repo}/statuses/{sha}';
const SECONDARY = { message: 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.' };

describe('creating a check run is never repeated blindly', () => {
  test('a 502 on a create that DID create the run: looked up, updated, one check run (annotations sent once)', async () => {
    double.failNext(CREATE, [{ status: 502, body: { message: 'Bad Gateway' }, afterHandling: true }]);
    const run = await api().createCheckRun(SHA, body);
    expect(routes()).toEqual([`${CREATE} 502`, `${LIST} 200`, `${PATCH} 200`]);
    const runs = double.checkRuns(REPO);
    expect(runs).toHaveLength(1);
    expect(run.id).toBe(runs[0]!.id);
    expect(runs[0]).toMatchObject({ name: body.name, external_id: body.external_id, conclusion: 'failure', output: { title: '1 failed' } });
    expect(runs[0]!.output.annotations).toHaveLength(1);
  });

  test('a 502 on a create that did not create it: looked up, then created once', async () => {
    double.failNext(CREATE, [{ status: 502, body: { message: 'Bad Gateway' } }]);
    await api().createCheckRun(SHA, body);
    expect(routes()).toEqual([`${CREATE} 502`, `${LIST} 200`, `${CREATE} 201`]);
    expect(double.checkRuns(REPO)).toHaveLength(1);
    expect(double.checkRuns(REPO)[0]!.output.annotations).toHaveLength(1);
  });

  test('a run of the same name but another external_id is not mistaken for ours', async () => {
    double.addForeignCheckRun(REPO, body.name, SHA);
    double.failNext(CREATE, [{ status: 500, body: { message: 'Server Error' } }]);
    await api().createCheckRun(SHA, body);
    expect(routes()).toEqual([`${CREATE} 500`, `${LIST} 200`, `${CREATE} 201`]);
    expect(double.checkRuns(REPO).filter((r) => r.external_id === body.external_id)).toHaveLength(1);
  });

  test('every attempt created it: still one check run', async () => {
    const lost = { status: 504, body: { message: 'Gateway Timeout' }, afterHandling: true };
    double.failNext(CREATE, [lost]);
    double.failNext(PATCH, [lost]);
    await api().createCheckRun(SHA, body);
    expect(double.checkRuns(REPO)).toHaveLength(1);
    expect(double.checkRuns(REPO)[0]!.output.annotations).toHaveLength(1);
  });
});

describe('rate limits and server errors', () => {
  test('a 403 secondary rate limit without retry-after is waited out (60 units) and retried', async () => {
    double.failNext(STATUS, [{ status: 403, body: SECONDARY }]);
    const started = Date.now();
    await api(5).createStatus(SHA, { state: 'success', context: 'c', description: 'd' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(300); // 60 × 5 ms; only a lower bound
    expect(routes()).toEqual([`${STATUS} 403`, `${STATUS} 201`]);
    expect(double.statuses(REPO, SHA)).toHaveLength(1);
  });

  test('a secondary rate limit with retry-after, and a 429, are retried', async () => {
    double.failNext(STATUS, [
      { status: 403, headers: { 'retry-after': '2' }, body: SECONDARY },
      { status: 429, headers: { 'retry-after': '1' }, body: SECONDARY },
    ]);
    await api().createStatus(SHA, { state: 'success', context: 'c', description: 'd' });
    expect(routes()).toEqual([`${STATUS} 403`, `${STATUS} 429`, `${STATUS} 201`]);
  });

  test('a spent primary rate limit is waited out until its reset', async () => {
    const reset = String(Math.floor(Date.now() / 1000) + 2);
    double.failNext(LIST, [
      { status: 403, headers: { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': reset }, body: { message: 'API rate limit exceeded' } },
    ]);
    await api().listCheckRuns(SHA);
    expect(routes()).toEqual([`${LIST} 403`, `${LIST} 200`]);
  });

  test('a rate limit that asks for more than 10 minutes fails at once, saying so', async () => {
    double.failNext(STATUS, [{ status: 403, headers: { 'retry-after': '3600' }, body: SECONDARY }]);
    await expect(api().createStatus(SHA, { state: 'success', context: 'c', description: 'd' })).rejects.toThrow(
      /^GitHub API POST \/repos\/acme\/shop\/statuses\/9fceb02\w+ failed with HTTP 403: You have exceeded a secondary rate limit/,
    );
    expect(double.requests).toHaveLength(1);
  });

  test('a 5xx on a GET is retried', async () => {
    double.failNext(LIST, [
      { status: 502, body: { message: 'Bad Gateway' } },
      { status: 503, body: { message: 'Unavailable' } },
    ]);
    expect(await api().listCheckRuns(SHA)).toEqual([]);
    expect(routes()).toEqual([`${LIST} 502`, `${LIST} 503`, `${LIST} 200`]);
  });

  test('a persistent 5xx fails after 4 attempts with method, path and HTTP status', async () => {
    double.failNext(
      LIST,
      Array.from({ length: 4 }, () => ({ status: 500, body: { message: 'Server Error' } })),
    );
    const error = await api()
      .listCheckRuns(SHA)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GitHubApiError);
    expect((error as GitHubApiError).status).toBe(500);
    expect((error as Error).message).toMatch(
      /^GitHub API GET \/repos\/acme\/shop\/commits\/9fceb02\w+\/check-runs failed with HTTP 500 after 4 attempts: Server Error/,
    );
    expect(double.requests).toHaveLength(4);
  });

  test.each([
    [404, 'Not Found'],
    [422, 'Validation Failed'],
    [401, 'Bad credentials'],
  ])('a %i is final: one attempt', async (status, message) => {
    double.failNext(STATUS, [{ status, body: { message } }]);
    await expect(api().createStatus(SHA, { state: 'success', context: 'c', description: 'd' })).rejects.toThrow(`failed with HTTP ${status}: ${message}`);
    expect(double.requests).toHaveLength(1);
  });

  test('a missing permission is final and the error names the permissions the workflow needs', async () => {
    double.setPermissions({ statuses: 'write' });
    const error = await api()
      .resolveCommit('9fceb02')
      .catch((e: unknown) => e as Error);
    expect(error).toBeInstanceOf(GitHubApiError);
    expect((error as Error).message).toMatch(
      /^GitHub API GET \/repos\/acme\/shop\/commits\/9fceb02 failed with HTTP 403: Resource not accessible by integration.* \(the token lacks a permission: the workflow needs statuses: write, checks: write, pull-requests: read and contents: read\)$/,
    );
    expect(double.requests).toHaveLength(1);
  });

  test('an unknown ref resolves to null, a known one to its SHA', async () => {
    expect(await api().resolveCommit('nope')).toBeNull();
    expect(await api().resolveCommit('9fceb02')).toBe(SHA);
  });
});
