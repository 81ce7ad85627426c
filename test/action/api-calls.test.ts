/**
 * API calls per event, counted at the double: one job event stays within 4-5 calls, and a
 * 100-event batch for one build costs far less than 100 single events.
 */
import { expect, test } from '@jest/globals';
import type { GitHubDouble } from '../support/github-double.js';
import { REPO, SHA, envelope, fixture, runAction, useGitHubDouble } from './harness.js';

let double: GitHubDouble;
useGitHubDouble((d) => (double = d));

const routes = (): string[] => double.requests.map((r) => r.route);

/** 50 jobs of one build, each sending COMPLETE then its final event (every 5th fails), shuffled. */
function batch(): Record<string, unknown>[] {
  const base = fixture('job-vdc-passed.json');
  const events: Record<string, unknown>[] = [];
  for (let i = 0; i < 50; i++) {
    const id = i.toString(16).padStart(32, '0');
    const fails = i % 5 === 0;
    events.push({ ...base, id, name: `test ${i}`, status: 'COMPLETE', passed: null, duration_sec: null, modification_time: '2025-09-02T14:05:15Z' });
    events.push({ ...base, id, name: `test ${i}`, status: fails ? 'FAILED' : 'PASSED', passed: fails ? 0 : 1, error: fails ? `assertion ${i}` : '' });
  }
  // Deterministic shuffle so finals sometimes come before their COMPLETE.
  return events
    .map((e, i) => ({ e, k: (i * 37) % 101 }))
    .sort((a, b) => a.k - b.k)
    .map((x) => x.e);
}

test('one job event: at most 5 calls the first time, 4 for a later event of the commit, 2 for a duplicate', async () => {
  const first = await runAction({ apiUrl: double.url, clientPayload: envelope([fixture('job-vdc-complete-passed-null.json')]) });
  expect(first.code).toBe(0);
  const firstRoutes = routes();
  const n1 = double.requests.length;
  double.requests.length = 0;
  const later = await runAction({ apiUrl: double.url, clientPayload: envelope([fixture('job-vdc-passed.json')]) });
  expect(later.code).toBe(0);
  const n2 = double.requests.length;
  const laterRoutes = routes();
  double.requests.length = 0;
  await runAction({ apiUrl: double.url, clientPayload: envelope([fixture('job-vdc-passed.json')]) });
  const n3 = double.requests.length;
  console.log(
    `Wall time of one run (confirm-delay-ms 20): ${first.ms} ms. API calls, one job event: first ${n1} [${firstRoutes.join(', ')}]; later ${n2} [${laterRoutes.join(', ')}]; duplicate ${n3}`,
  );
  expect(n1).toBeLessThanOrEqual(5);
  expect(n2).toBeLessThanOrEqual(4);
  expect(n3).toBeLessThanOrEqual(2);
});

test("the first event on an open PR's head, where the CI workflow's own check run shows the PR: 4 calls, no PR lookup", async () => {
  double.addPull(REPO, { number: 12, headSha: SHA, headRef: 'feature/login', mergeCommitSha: null });
  double.addForeignCheckRun(REPO, 'e2e (chrome)', SHA);
  const r = await runAction({ apiUrl: double.url, clientPayload: envelope([fixture('job-vdc-passed.json')]) });
  expect(r.code).toBe(0);
  console.log(`API calls, first job event on a PR head with the CI's check run: ${double.requests.length} [${routes().join(', ')}]`);
  expect(routes()).toEqual([
    'GET /repos/{owner}/{repo}/commits/{ref}/check-runs',
    'POST /repos/{owner}/{repo}/check-runs',
    'GET /repos/{owner}/{repo}/commits/{ref}/check-runs',
    'POST /repos/{owner}/{repo}/statuses/{sha}',
  ]);
});

test.each([
  ['no open PR has it as head (a branch push, or a merge commit)', null],
  ['an open PR has it as its temporary merge commit', 'merge'],
] as const)('a commit with check runs but %s: the PR lookup still runs', async (_name, kind) => {
  const HEAD = 'aaaabbbbccccddddeeeeffff0000111122223333';
  double.addCommit(REPO, HEAD);
  if (kind === 'merge') double.addPull(REPO, { number: 7, headSha: HEAD, headRef: 'feature/login', mergeCommitSha: SHA });
  double.addForeignCheckRun(REPO, 'some other app', SHA);
  const r = await runAction({ apiUrl: double.url, clientPayload: envelope([fixture('job-vdc-passed.json')]) });
  expect(r.code).toBe(0);
  expect(routes()).toContain('GET /repos/{owner}/{repo}/pulls');
  expect(r.outputs.sha).toBe(kind === 'merge' ? HEAD : SHA);
});

test('a 100-event batch for one build averages well under 2.5 calls per event', async () => {
  const events = batch();
  expect(events).toHaveLength(100);
  const r = await runAction({ apiUrl: double.url, clientPayload: envelope(events) });
  expect(r.code).toBe(0);
  const n = double.requests.length;
  const byRoute = new Map<string, number>();
  for (const route of routes()) byRoute.set(route, (byRoute.get(route) ?? 0) + 1);
  console.log(
    `API calls, 100-event batch (50 jobs, 10 failing): ${n} = ${(n / 100).toFixed(2)}/event; ${[...byRoute].map(([k, v]) => `${v}× ${k}`).join('; ')}`,
  );
  expect(n / 100).toBeLessThanOrEqual(2.5);
  const agg = double.checkRuns(REPO).find((c) => c.name === 'Sauce Labs / shop-web #1234')!;
  expect(agg.output.summary).toContain('50 Sauce Labs jobs: 10 failed, 40 passed');
  expect(agg.output.annotations).toHaveLength(10);
  expect(double.checkRuns(REPO)).toHaveLength(11);
  // Lookups are shared: one open-PR listing, no per-event resolution.
  expect(byRoute.get('GET /repos/{owner}/{repo}/pulls')).toBe(1);
});
