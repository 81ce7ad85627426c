/**
 * The README's example workflow is what users copy: the Action must work with exactly its
 * `permissions:` (the GitHub double's default, read from README.md) and the workflow must not
 * drop queued runs.
 */
import { describe, expect, test } from '@jest/globals';
import type { GitHubDouble } from '../support/github-double.js';
import { readmeWorkflow, readmeWorkflowPermissions } from '../support/readme-workflow.js';
import { REPO, SHA, envelope, fixture, runAction, useGitHubDouble } from './harness.js';

let double: GitHubDouble;
useGitHubDouble((d) => (double = d));

const MERGE = 'a'.repeat(40);
const HEAD = 'b'.repeat(40);

/** Events that make the Action use every GitHub call it has: every way to find a commit, both families. */
function everyCall(): Record<string, unknown>[] {
  const passed = fixture('job-vdc-passed.json');
  return [
    fixture('job-rdc-failed-tags.json'), // ci:ssha short SHA → GET commits/{ref}; a failed job → per-job check run
    { ...passed, id: 'branch-only', commit_id: '', build: 'branch build' }, // branch_name → GET commits/{ref}
    { ...passed, id: 'pull-ref', commit_id: '', branch_name: '', build: 'pull build', tags: ['ci:ref:7/merge'] }, // GET pulls/{n}
    { ...passed, id: 'merge-commit', commit_id: MERGE, build: 'merge build' }, // a PR merge commit → GET pulls
    fixture('visual-unapproved.json'),
  ];
}

describe("the README workflow's permissions", () => {
  test('are what the double grants by default', () => {
    expect(readmeWorkflowPermissions()).toEqual({ statuses: 'write', checks: 'write', 'pull-requests': 'read', contents: 'read' });
  });

  test('allow every call the Action makes', async () => {
    double.addPull(REPO, { number: 7, headSha: HEAD, headRef: 'feature/pr', mergeCommitSha: MERGE });
    const r = await runAction({ apiUrl: double.url, clientPayload: envelope(everyCall()) });
    expect(r.stdout).not.toMatch(/::error::/);
    expect(r.code).toBe(0);
    expect(double.rejections).toEqual([]);
    expect(new Set(double.requests.map((q) => q.route))).toEqual(
      new Set([
        'GET /repos/{owner}/{repo}/commits/{ref}',
        'GET /repos/{owner}/{repo}/pulls/{pull_number}',
        'GET /repos/{owner}/{repo}/pulls',
        'GET /repos/{owner}/{repo}/commits/{ref}/check-runs',
        'POST /repos/{owner}/{repo}/check-runs',
        'POST /repos/{owner}/{repo}/statuses/{sha}',
      ]),
    );
    expect(JSON.parse(r.outputs['shas']!)).toEqual([SHA, HEAD]);
  });

  test('without contents: read (the README block before it was added) a short SHA cannot be resolved and the step fails', async () => {
    double.setPermissions({ statuses: 'write', checks: 'write', 'pull-requests': 'read' });
    const r = await runAction({ apiUrl: double.url, clientPayload: envelope([fixture('job-rdc-failed-tags.json')]) });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/::error::GitHub API GET \/repos\/acme\/shop\/commits\/9fceb02 failed with HTTP 403: Resource not accessible by integration/);
    expect(double.rejections).toEqual(['GET /repos/{owner}/{repo}/commits/{ref}: the token lacks contents: read']);
  });
});

describe('the README workflow runs every dispatch', () => {
  test('no concurrency group: a group keeps one pending run and cancels it for a newer one, losing its events', () => {
    const workflow = readmeWorkflow();
    expect(workflow).not.toHaveProperty('concurrency');
    for (const job of Object.values(workflow['jobs'] as Record<string, Record<string, unknown>>)) expect(job).not.toHaveProperty('concurrency');
  });
});
