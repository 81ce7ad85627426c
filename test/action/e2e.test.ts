/**
 * End to end: the committed dist/index.js, run as the runner runs it, against the GitHub double.
 * Every test asserts that the double saw no request GitHub's API description does not allow.
 */
import { readdirSync } from 'node:fs';
import { describe, expect, test } from '@jest/globals';
import type { GitHubDouble } from '../support/github-double.js';
import { FIXTURES, REPO, SHA, envelope, fixture, runAction, useGitHubDouble } from './harness.js';

let double: GitHubDouble;
useGitHubDouble((d) => (double = d));

const run = (clientPayload: unknown, inputs: Record<string, string> = {}) => runAction({ apiUrl: double.url, clientPayload, inputs });
const latestStatus = (context: string) =>
  double
    .statuses(REPO, SHA)
    .filter((s) => s.context === context)
    .at(-1);

interface Expectation {
  readonly context: string | null;
  readonly state?: string;
  readonly conclusion?: string | null;
  readonly checkStatus?: string;
  readonly checkRuns: number;
  readonly description?: RegExp;
  readonly targetUrl?: RegExp | null;
}

const EXPECTED: Record<string, Expectation> = {
  'job-vdc-passed.json': { context: 'Sauce Labs / shop-web #1234', state: 'success', conclusion: 'success', checkRuns: 1, description: /1 passed/ },
  'job-vdc-complete-passed-null.json': {
    context: 'Sauce Labs / shop-web #1234',
    state: 'success',
    conclusion: 'neutral',
    checkRuns: 1,
    description: /without pass\/fail/,
  },
  'job-vdc-failed-boolean.json': { context: 'Sauce Labs / shop-web #1234', state: 'failure', conclusion: 'failure', checkRuns: 2, description: /1 failed/ },
  'job-vdc-errored.json': { context: 'Sauce Labs / shop-web #1234', state: 'error', conclusion: 'failure', checkRuns: 2, description: /1 errored/ },
  'job-rdc-failed-tags.json': { context: 'Sauce Labs / android-nightly-881', state: 'failure', conclusion: 'failure', checkRuns: 2, description: /1 failed/ },
  'job-vdc-saucectl-sha-in-build.json': { context: 'Sauce Labs / shop', state: 'failure', conclusion: 'failure', checkRuns: 2 },
  'visual-approved.json': {
    context: 'Sauce Labs Visual / shop-web',
    state: 'success',
    conclusion: 'success',
    checkRuns: 1,
    description: /All 3 changes approved/,
    targetUrl: /^https:\/\/app\.saucelabs\.com\/visual\/builds\//,
  },
  'visual-empty.json': { context: 'Sauce Labs Visual / shop-web', state: 'success', conclusion: 'neutral', checkRuns: 1, description: /No snapshots/ },
  'visual-errored.json': { context: 'Sauce Labs Visual / shop-web', state: 'error', conclusion: 'failure', checkRuns: 1, description: /errored/ },
  'visual-queued.json': {
    context: 'Sauce Labs Visual / shop-web',
    state: 'pending',
    conclusion: null,
    checkStatus: 'in_progress',
    checkRuns: 1,
    description: /Comparing snapshots/,
  },
  'visual-rejected.json': { context: 'Sauce Labs Visual / shop-web', state: 'failure', conclusion: 'failure', checkRuns: 1, description: /2 changes rejected/ },
  'visual-unapproved.json': {
    context: 'Sauce Labs Visual / shop-web',
    state: 'pending',
    conclusion: 'neutral',
    checkRuns: 1,
    description: /3 visual changes await review/,
  },
  'visual-equal-eu-no-branch.json': { context: null, checkRuns: 0 },
};

describe('every fixture, one repository_dispatch each', () => {
  test('the table covers every fixture file', () => {
    const files = readdirSync(FIXTURES)
      .filter((f) => f.endsWith('.json'))
      .sort();
    expect(Object.keys(EXPECTED).sort()).toEqual(files);
  });

  test.each(Object.entries(EXPECTED))('%s', async (file, want) => {
    const r = await run(envelope([fixture(file)], () => ({ id: `evt-${file}`, received_at: '2026-01-01T00:00:00Z', route: 'default' })));
    expect(r.code).toBe(0);
    const runs = double.checkRuns(REPO);
    expect(runs).toHaveLength(want.checkRuns);
    if (want.context === null) {
      expect(double.statuses(REPO, SHA)).toEqual([]);
      expect(r.outputs['sha']).toBe('');
      expect(r.outputs['unresolved']).toBe('1');
      expect(r.stdout).toMatch(/::warning::No commit for Sauce Visual build .*build_name/);
      expect(r.stdout).toMatch(/SAUCE_VISUAL_BUILD_NAME/);
      expect(r.summary).toContain('No status or check run was written');
      return;
    }
    const status = latestStatus(want.context);
    expect(status?.state).toBe(want.state);
    if (want.description) expect(status?.description).toMatch(want.description);
    if (want.targetUrl) expect(status?.target_url).toMatch(want.targetUrl);
    const aggregate = runs.find((c) => c.name === want.context)!;
    expect(aggregate).toBeDefined();
    expect(aggregate.head_sha).toBe(SHA);
    expect(aggregate.conclusion).toBe(want.conclusion);
    expect(aggregate.status).toBe(want.checkStatus ?? 'completed');
    expect(r.outputs['sha']).toBe(SHA);
    expect(r.outputs['state']).toBe(want.state);
    expect(JSON.parse(r.outputs['check-run-ids']!)).toEqual(expect.arrayContaining([aggregate.id]));
    expect(JSON.parse(r.outputs['check-run-ids']!)).toHaveLength(want.checkRuns);
    expect(r.summary).toContain('## Sauce Labs results');
    expect(r.summary).toContain(want.context.replace(/#/g, '\\#'));
    // A failed job also gets its own check run with the error text and an annotation.
    if (want.checkRuns === 2) {
      const perJob = runs.find((c) => c.name !== want.context)!;
      expect(perJob.external_id).toMatch(/^sauce-job:/);
      expect(perJob.conclusion).toBe('failure');
      expect(perJob.output.annotations).toHaveLength(1);
      expect(aggregate.output.annotations).toHaveLength(1);
    }
    if (file.startsWith('job-')) {
      expect(aggregate.output.summary).toMatch(/\| Result \| Job \| Browser \/ device \| OS \| Duration \| Link \|/);
      expect(aggregate.output.summary).toMatch(/\[open\]\(https:\/\/app\.saucelabs\.com\/tests\/[0-9a-f]{32}\)/);
    } else {
      expect(aggregate.output.summary).toMatch(/\| Errored \| Approved \| Equal \| Rejected \| Unapproved \| Queued \|/);
    }
  });
});

describe('correct under real delivery', () => {
  test('the same event twice: same end state, one check run, and the second run writes nothing', async () => {
    const payload = envelope([fixture('job-vdc-failed-boolean.json')]);
    const first = await run(payload);
    expect(first.code).toBe(0);
    const after1 = JSON.stringify(double.checkRuns(REPO));
    const statuses1 = double.statuses(REPO, SHA).length;
    const before = double.requests.length;
    const second = await run(payload);
    expect(second.code).toBe(0);
    expect(JSON.stringify(double.checkRuns(REPO))).toBe(after1);
    expect(double.statuses(REPO, SHA)).toHaveLength(statuses1);
    expect(double.requests.slice(before).every((r) => r.method === 'GET')).toBe(true);
    expect(second.outputs['state']).toBe('failure');
  });

  test('an older event after a newer one does not roll the job back', async () => {
    await run(envelope([fixture('job-vdc-passed.json')]));
    await run(envelope([fixture('job-vdc-complete-passed-null.json')]));
    const agg = double.checkRuns(REPO).find((c) => c.name === 'Sauce Labs / shop-web #1234')!;
    expect(agg.conclusion).toBe('success');
    expect(agg.output.summary).toContain('✅ passed');
    expect(latestStatus('Sauce Labs / shop-web #1234')?.description).toBe('1 Sauce Labs job: 1 passed');
  });

  test('in one batch, out of order, the newest event of each job wins', async () => {
    const r = await run(envelope([fixture('job-vdc-passed.json'), fixture('job-vdc-complete-passed-null.json'), fixture('job-vdc-failed-boolean.json')]));
    expect(r.code).toBe(0);
    expect(latestStatus('Sauce Labs / shop-web #1234')?.description).toBe('2 Sauce Labs jobs: 1 failed, 1 passed');
  });

  test('two runs at once for different jobs of one commit leave a correct aggregate', async () => {
    const inputs = { 'confirm-delay-ms': '300' };
    const [a, b] = await Promise.all([run(envelope([fixture('job-vdc-passed.json')]), inputs), run(envelope([fixture('job-vdc-errored.json')]), inputs)]);
    expect(a.code).toBe(0);
    expect(b.code).toBe(0);
    const named = double.checkRuns(REPO).filter((c) => c.name === 'Sauce Labs / shop-web #1234');
    const newest = named.reduce((x, y) => (y.id > x.id ? y : x));
    expect(newest.output.summary).toContain('2 Sauce Labs jobs: 1 errored, 1 passed');
    expect(newest.conclusion).toBe('failure');
    expect(latestStatus('Sauce Labs / shop-web #1234')?.description).toBe('2 Sauce Labs jobs: 1 errored, 1 passed');
    expect(latestStatus('Sauce Labs / shop-web #1234')?.state).toBe('error');
  });

  test('a later QUEUED for the same Visual build does not overwrite its final state', async () => {
    await run(envelope([fixture('visual-unapproved.json')]));
    const r = await run(envelope([fixture('visual-queued.json')]));
    expect(r.code).toBe(0);
    const runs = double.checkRuns(REPO);
    expect(runs).toHaveLength(1);
    expect(runs[0]!.status).toBe('completed');
    expect(latestStatus('Sauce Labs Visual / shop-web')?.state).toBe('pending');
    expect(latestStatus('Sauce Labs Visual / shop-web')?.description).toMatch(/await review/);
    expect(double.statuses(REPO, SHA)).toHaveLength(1);
  });

  test('an approval after UNAPPROVED flips the same check run and status to success', async () => {
    await run(envelope([fixture('visual-unapproved.json')]), { 'visual-pending-state': 'failure' });
    expect(latestStatus('Sauce Labs Visual / shop-web')?.state).toBe('failure');
    await run(envelope([fixture('visual-approved.json')]), { 'visual-pending-state': 'failure' });
    const runs = double.checkRuns(REPO);
    expect(runs).toHaveLength(1);
    expect(runs[0]!.conclusion).toBe('success');
    expect(latestStatus('Sauce Labs Visual / shop-web')?.state).toBe('success');
  });

  test("a PR's temporary merge commit is moved to the PR head", async () => {
    const merge = 'a'.repeat(40);
    const head = 'b'.repeat(40);
    double.addCommit(REPO, merge);
    double.addCommit(REPO, head);
    double.addPull(REPO, { number: 7, headSha: head, headRef: 'feature/login', mergeCommitSha: merge });
    const r = await run(envelope([{ ...fixture('job-vdc-passed.json'), commit_id: merge }]));
    expect(r.code).toBe(0);
    expect(r.outputs['sha']).toBe(head);
    expect(double.statuses(REPO, head)).toHaveLength(1);
    expect(double.statuses(REPO, merge)).toHaveLength(0);
    expect(r.stdout).toContain('merge commit of open PR #7');
  });

  test('a raw Sauce event as client_payload (hand-made curl dispatch) works', async () => {
    const r = await run(fixture('job-vdc-passed.json'));
    expect(r.code).toBe(0);
    expect(latestStatus('Sauce Labs / shop-web #1234')?.state).toBe('success');
  });

  test('the payload input (workflow_dispatch replay) takes an array', async () => {
    const r = await runAction({
      apiUrl: double.url,
      eventName: 'workflow_dispatch',
      inputs: { payload: JSON.stringify([fixture('visual-rejected.json'), fixture('job-vdc-passed.json')]) },
    });
    expect(r.code).toBe(0);
    expect(r.outputs['state']).toBe('failure');
    expect(double.statuses(REPO, SHA)).toHaveLength(2);
  });

  test('hostile names and a foreign build_url are rendered escaped and unlinked', async () => {
    const job = {
      ...fixture('job-vdc-failed-boolean.json'),
      name: '<img src=x onerror=alert(1)> | [click](https://evil.example) `x`\n## heading',
      error: 'boom ``` </details> <script>alert(1)</script>',
    };
    const visual = { ...fixture('visual-unapproved.json'), build_url: 'https://evil.example/visual/builds/1', project: 'p|<b>x</b>' };
    const r = await run(envelope([job, visual]), { 'job-check-runs': 'all' });
    expect(r.code).toBe(0);
    // Fenced code is inert; everything outside it must carry no markup from the payload.
    const all = (
      double
        .checkRuns(REPO)
        .map((c) => c.output.summary ?? '')
        .join('\n') + r.summary
    ).replace(/(`{3,})text\n[\s\S]*?\n\1/g, '');
    expect(all).not.toMatch(/<img|<script|<b>/);
    expect(all).not.toContain('](https://evil.example');
    expect(all).not.toContain('https://evil.example/visual');
    expect(all).toContain('&lt;img src=x onerror=alert\\(1\\)&gt; \\| \\[click\\]');
    const perJob = double.checkRuns(REPO).find((c) => c.external_id?.startsWith('sauce-job:'))!;
    expect(perJob.output.summary).toContain('````text\nboom ``` </details>');
    const vis = double.checkRuns(REPO).find((c) => c.external_id?.startsWith('sauce-visual:'))!;
    expect(vis.output.summary).toContain('not a Sauce Labs URL');
    expect(double.statuses(REPO, SHA).find((s) => s.context.includes('Visual'))?.target_url).toBeNull();
  });

  test('text the relay cut is shown as cut, with its original size and the link to the full job', async () => {
    const job: Record<string, unknown> = { ...fixture('job-vdc-failed-boolean.json'), exception: `${'Traceback line\n'.repeat(100)}… [cut by the relay]` };
    const r = await run({ version: 1, events: [{ payload: job, id: 'e1', truncated: [{ field: 'exception', bytes: 71_234 }] }] });
    expect(r.code).toBe(0);
    const perJob = double.checkRuns(REPO).find((c) => c.external_id === `sauce-job:${String(job['id'])}`)!;
    expect(perJob.output.summary).toContain('✂ **Cut by the relay** so the event fits one repository_dispatch: exception (71,234 bytes) originally.');
    expect(perJob.output.summary).toContain(`[the job in Sauce Labs](https://app.saucelabs.com/tests/${String(job['id'])})`);
    const aggregate = double.checkRuns(REPO).find((c) => c.name === 'Sauce Labs / shop-web #1234')!;
    expect(aggregate.output.summary).toContain('✂ cut by the relay: exception (71,234 bytes)');
  });

  test('a transient 502 is retried; persistent 5xx fails the step with a clear error', async () => {
    double.failNext('POST /repos/{owner}/{repo}/check-runs', [{ status: 502, headers: { 'retry-after': '0' }, body: { message: 'Bad Gateway' } }]);
    const ok = await run(envelope([fixture('job-vdc-passed.json')]));
    expect(ok.code).toBe(0);
    expect(double.checkRuns(REPO)).toHaveLength(1);

    double.reset();
    double.addCommit(REPO, SHA);
    const fail = Array.from({ length: 4 }, () => ({ status: 500, headers: { 'retry-after': '0' }, body: { message: 'Server Error' } }));
    double.failNext('POST /repos/{owner}/{repo}/statuses/{sha}', fail);
    const bad = await run(envelope([fixture('job-vdc-passed.json')]));
    expect(bad.code).not.toBe(0);
    expect(bad.stdout).toMatch(/::error::GitHub API POST \/repos\/acme\/shop\/statuses\/9fceb02\w+ failed with HTTP 500 after 4 attempts/);
  });

  // The same without retry-after (the waits GitHub's defaults imply) runs in-process, with a shorter
  // wait unit, in github.test.ts.
  test('a create answered 502 after GitHub made the run, and a secondary rate limit: one check run, every write done', async () => {
    // retry-after 1: the throttling plugin reads 0 as "no hint" (60 s).
    double.failNext('POST /repos/{owner}/{repo}/check-runs', [
      { status: 502, headers: { 'retry-after': '0' }, body: { message: 'Bad Gateway' }, afterHandling: true },
    ]);
    double.failNext('POST /repos/{owner}/{repo}/statuses/{sha}', [
      { status: 403, headers: { 'retry-after': '1' }, body: { message: 'You have exceeded a secondary rate limit.' } },
    ]);
    const r = await run(envelope([fixture('job-vdc-passed.json')]));
    expect(r.code).toBe(0);
    expect(double.checkRuns(REPO)).toHaveLength(1);
    expect(latestStatus('Sauce Labs / shop-web #1234')?.state).toBe('success');
    expect(r.stdout).toMatch(/GitHub secondary rate limit on POST \/repos\/\{owner\}\/\{repo\}\/statuses\/\{sha\}: waiting 1 s, then retry 1 of 3\./);
  });

  test('an event that fails validation names the field and fails the step; the others are still written', async () => {
    const r = await run(envelope([{ ...fixture('job-vdc-passed.json'), status: 'CANCELLED' }, fixture('visual-approved.json')]));
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/::error::client_payload event #0 rejected: payload\.status:/);
    expect(latestStatus('Sauce Labs Visual / shop-web')?.state).toBe('success');
  });

  test('no commit: a warning and exit 0, or exit 1 with fail-on-missing-commit', async () => {
    const orphan = { ...fixture('job-rdc-failed-tags.json'), tags: [] };
    const warn = await run(envelope([orphan]));
    expect(warn.code).toBe(0);
    expect(warn.stdout).toMatch(/::warning::No commit for Sauce job .* Empty: commit_id, tags ci:ssha, branch_name, tags ci:ref\. .*custom-data\.commit/);
    const fail = await run(envelope([orphan]), { 'fail-on-missing-commit': 'true' });
    expect(fail.code).toBe(1);
  });

  test('a commit GitHub does not know is reported like a missing one', async () => {
    const r = await run(envelope([{ ...fixture('job-vdc-passed.json'), commit_id: 'c'.repeat(40) }]));
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/::warning::Commit c{40} \(from commit_id\) is not in acme\/shop/);
  });

  test('per-job commit statuses when job-statuses is true', async () => {
    await run(envelope([fixture('job-vdc-passed.json'), fixture('job-vdc-failed-boolean.json')]), { 'job-statuses': 'true' });
    const contexts = double.statuses(REPO, SHA).map((s) => s.context);
    expect(contexts).toContain('Sauce Labs / shop-web #1234 / login should succeed (chrome 128.0.6613.84, Windows 11)');
    expect(double.statuses(REPO, SHA).find((s) => s.context.includes('cart'))?.target_url).toBe(
      'https://app.saucelabs.com/tests/c0a1b2c3d4e5f60718293a4b5c6d7e8f',
    );
  });

  test('dry-run sends nothing, even with a token', async () => {
    const r = await run(envelope([fixture('job-vdc-failed-boolean.json')]), { 'dry-run': 'true' });
    expect(r.code).toBe(0);
    expect(double.requests).toHaveLength(0);
    expect(r.stdout).toContain('[dry-run] would create check run');
  });

  test('dry-run says what it would write, and that nothing was written', async () => {
    const r = await run(envelope([fixture('job-vdc-failed-boolean.json'), fixture('visual-approved.json')]), { 'dry-run': 'true' });
    expect(r.code).toBe(0);
    const results = JSON.parse(r.outputs['results']!) as Record<string, unknown>[];
    expect(results.map((x) => [x['kind'], x['written'], x['would_write'], x['dry_run']])).toEqual([
      ['jobs', false, true, true],
      ['job', false, true, true],
      ['visual', false, true, true],
    ]);
    expect(JSON.parse(r.outputs['check-run-ids']!)).toEqual([]);
    expect(r.summary).toContain('(dry run: nothing was written)');
    expect(r.summary).toContain('| Result | Would write |');
    expect(r.summary).not.toContain('| Written |');
    expect(r.summary.split('\n').filter((l) => l.startsWith('| ') && l.endsWith('| yes |'))).toHaveLength(3);
  });

  test('a real run reports what it wrote, and a duplicate that it needed no write', async () => {
    const payload = envelope([fixture('job-vdc-passed.json')]);
    const first = await run(payload);
    const second = await run(payload);
    const fields = (r: typeof first) =>
      (JSON.parse(r.outputs['results']!) as Record<string, unknown>[]).map((x) => [x['written'], x['would_write'], x['dry_run']]);
    expect(fields(first)).toEqual([[true, true, false]]);
    expect(fields(second)).toEqual([[false, false, false]]);
    expect(first.summary).toContain('| Result | Written |');
    expect(second.summary).toContain('| no (already up to date) |');
  });
});
