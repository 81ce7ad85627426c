import { describe, expect, test } from '@jest/globals';
import { parseSauceEvent, type JobEvent, type SauceEvent, type VisualEvent } from '../../src/sauce/event.js';
import { VISUAL_STATUSES, JOB_STATUSES } from '../../src/sauce/schema.js';
import { INPUT_DEFAULTS, parseInputs } from '../../src/action/inputs.js';
import { extractEvents, extractFromText, selectSource } from '../../src/action/payload.js';
import { classify, commitCandidates, missingCommitMessage, stableLabel } from '../../src/sauce/commit.js';
import { aggregateJobs, jobOutcome, jobResult, visualOutcome, worstState } from '../../src/action/mapping.js';
import { decodeState, encodeState, jobSupersedes, mergeJobs, mergeVisual, type JobRecord, type VisualRecord } from '../../src/action/state.js';
import { codeBlock, escapeMd, formatDuration, jobRow, link, renderAggregate, renderJob, safeHref } from '../../src/action/render.js';
import { aggregateName, jobBuildLabel, toJobRecord, visualName } from '../../src/action/engine.js';
import { fixture } from './harness.js';
import { NO_NOTES } from '../../src/sauce/visual-notes.js';

const SHA = '9fceb02d0ae598e95dc970b74767f19372d61af8';
function parse(raw: Record<string, unknown>): SauceEvent {
  const r = parseSauceEvent(raw);
  if (!r.ok) throw new Error('bad fixture');
  return r.event;
}
const JOB = (over: Record<string, unknown> = {}) => parse({ ...fixture('job-vdc-passed.json'), ...over }) as JobEvent;
const VIS = (over: Record<string, unknown> = {}) => parse({ ...fixture('visual-unapproved.json'), ...over }) as VisualEvent;

describe('inputs', () => {
  test('defaults', () => {
    const r = parseInputs(() => '');
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.inputs).toMatchObject({
      token: '',
      payload: null,
      sha: null,
      region: 'us-west-1',
      contextPrefix: 'Sauce Labs',
      checkName: '{prefix} / {build}',
      jobCheckRuns: 'failed',
      jobStatuses: false,
      visualPendingState: 'pending',
      visualEmptyPasses: true,
      failOnMissingCommit: false,
      dryRun: false,
      confirmDelayMs: 1000,
    });
  });

  test('every value, and every error named at once', () => {
    const given: Record<string, string> = {
      region: 'eu-central-1',
      'job-check-runs': 'ALL',
      'job-statuses': 'True',
      'visual-pending-state': 'failure',
      'visual-empty-passes': 'false',
      'dry-run': 'TRUE',
      sha: ' abc1234 ',
    };
    const r = parseInputs((n) => given[n] ?? '');
    expect(
      r.ok && [
        r.inputs.region,
        r.inputs.jobCheckRuns,
        r.inputs.jobStatuses,
        r.inputs.visualPendingState,
        r.inputs.visualEmptyPasses,
        r.inputs.dryRun,
        r.inputs.sha,
      ],
    ).toEqual(['eu-central-1', 'all', true, 'failure', false, true, 'abc1234']);
    const bad: Record<string, string> = {
      region: 'mars',
      'job-check-runs': 'some',
      'job-statuses': 'yes',
      'confirm-delay-ms': '-1',
    };
    const b = parseInputs((n) => bad[n] ?? '');
    expect(b.ok).toBe(false);
    if (!b.ok) expect(b.errors.map((e) => e.split(':')[0])).toEqual(['input region', 'input confirm-delay-ms', 'input job-check-runs', 'input job-statuses']);
  });

  test('every input has a default', () => {
    expect(Object.keys(INPUT_DEFAULTS).sort()).toEqual([
      'check-name',
      'confirm-delay-ms',
      'context-prefix',
      'dry-run',
      'fail-on-missing-commit',
      'github-token',
      'job-check-runs',
      'job-statuses',
      'payload',
      'region',
      'sha',
      'visual-empty-passes',
      'visual-pending-state',
    ]);
  });
});

describe('payload extraction', () => {
  const job = fixture('job-vdc-passed.json');
  test.each([
    ['envelope', { version: 1, events: [{ payload: job, id: 'a', received_at: '2026-01-01T00:00:00Z', route: 'r' }] }, 'envelope', 1],
    ['raw event', job, 'event', 1],
    ['array of raw events', [job, fixture('visual-empty.json')], 'array', 2],
    ['array of envelope items', [{ payload: job }], 'array', 1],
    ['empty envelope', { version: 1, events: [] }, 'envelope', 0],
  ] as const)('%s', (_n, value, shape, count) => {
    const r = extractEvents(value);
    expect(r.ok && [r.value.shape, r.value.events.length, r.value.rejected.length]).toEqual([shape, count, 0]);
  });

  test('relay metadata is kept', () => {
    const r = extractEvents({ version: 1, events: [{ payload: job, id: 'd1', received_at: '2026-01-01T00:00:00Z', route: 'main' }] });
    expect(r.ok && r.value.events[0]).toMatchObject({ deliveryId: 'd1', receivedAt: Date.parse('2026-01-01T00:00:00Z'), route: 'main', index: 0 });
  });

  test('fields the relay cut are carried with their original size', () => {
    const truncated = [
      { field: 'exception', bytes: 71_234 },
      { field: 'error', bytes: 70_001 },
    ];
    const r = extractEvents({ version: 1, events: [{ payload: job, id: 'd1', truncated }, { payload: job }] });
    expect(r.ok && r.value.events.map((e) => e.truncated)).toEqual([truncated, []]);
    const raw = extractEvents(job);
    expect(raw.ok && raw.value.events[0]!.truncated).toEqual([]);
  });

  test.each([
    [[{ field: 'exception', bytes: -1 }], 'truncated.0.bytes'],
    [[{ field: '', bytes: 5 }], 'truncated.0.field'],
    [[{ field: 'exception', bytes: 1.5 }], 'truncated.0.bytes'],
    [{ field: 'exception', bytes: 5 }, 'truncated'],
  ])('a malformed truncated list %p is rejected, naming %s', (truncated, field) => {
    const r = extractEvents({ version: 1, events: [{ payload: job, truncated }, { payload: job }] });
    expect(r.ok && r.value.rejected.map((x) => [x.index, x.issues[0]!.field])).toEqual([[0, field]]);
    expect(r.ok && r.value.events.map((e) => e.index)).toEqual([1]);
  });

  test('invalid items are rejected with the field named; the rest survive', () => {
    const r = extractEvents({ version: 1, events: [{ payload: { ...job, status: 'NOPE' } }, { payload: job }, { payload: 'x' }] });
    expect(r.ok && r.value.events.length).toBe(1);
    expect(r.ok && r.value.rejected.map((x) => [x.index, x.issues[0]!.field])).toEqual([
      [0, 'payload.status'],
      [2, 'payload.(root)'],
    ]);
  });

  test.each([
    [{ version: 2, events: [] }, /unsupported envelope version 2/],
    [{ version: 1, events: 'x' }, /invalid envelope: events/],
    ['text', /expected a JSON object/],
  ] as const)('bad shape %p', (value, msg) => {
    const r = extractEvents(value);
    expect(!r.ok && r.error).toMatch(msg);
  });

  test('payload input text and source selection', () => {
    expect(extractFromText('{nope').ok).toBe(false);
    expect(selectSource(JSON.stringify(job), 'workflow_dispatch', undefined).where).toBe('payload input');
    const none = selectSource(null, 'push', {});
    expect(!none.result.ok && none.result.error).toMatch(/triggered by push/);
    const empty = selectSource(null, 'repository_dispatch', {});
    expect(!empty.result.ok && empty.result.error).toMatch(/no client_payload/);
    expect(selectSource(null, 'repository_dispatch', { client_payload: job }).result.ok).toBe(true);
  });
});

describe('finding the commit: every path, in order', () => {
  test.each([
    [
      'sha input wins',
      JOB(),
      'main',
      [
        ['ref', 'main', 'input sha'],
        ['sha', SHA, 'commit_id'],
        ['branch', 'feature/login', 'branch_name'],
      ],
    ],
    [
      'commit_id full',
      JOB(),
      null,
      [
        ['sha', SHA, 'commit_id'],
        ['branch', 'feature/login', 'branch_name'],
      ],
    ],
    [
      'commit_id short',
      JOB({ commit_id: '9fceb02' }),
      null,
      [
        ['short-sha', '9fceb02', 'commit_id'],
        ['branch', 'feature/login', 'branch_name'],
      ],
    ],
    ['commit_id ref', JOB({ commit_id: 'refs/heads/main', branch_name: '' }), null, [['ref', 'refs/heads/main', 'commit_id']]],
    ['sha in build', JOB({ commit_id: '', branch_name: '', build: `shop sha-${SHA}` }), null, [['sha', SHA, 'build']]],
    ['sha in name', JOB({ commit_id: '', branch_name: '', build: '', name: `t ${SHA}` }), null, [['sha', SHA, 'name']]],
    ['ci:ssha tag', JOB({ commit_id: '', branch_name: '', tags: ['ci:ssha:9fceb02'] }), null, [['short-sha', '9fceb02', 'tag ci:ssha']]],
    ['ci:ref tag', JOB({ commit_id: '', branch_name: '', tags: ['ci:ref:feature/x'] }), null, [['branch', 'feature/x', 'tag ci:ref']]],
    ['ci:ref of a pull_request run', JOB({ commit_id: '', branch_name: '', tags: ['ci:ref:42/merge'] }), null, [['pull', '42', 'tag ci:ref']]],
    [
      'visual build_name',
      VIS(),
      null,
      [
        ['sha', SHA, 'build_name'],
        ['branch', 'feature/login', 'branch'],
      ],
    ],
    ['nothing', parse(fixture('visual-equal-eu-no-branch.json')), null, []],
  ] as const)('%s', (_n, event, shaInput, want) => {
    expect(commitCandidates(event, shaInput).map((c) => [c.kind, c.value, c.source])).toEqual(want);
  });

  test('rdc fixture: ssha then ref', () => {
    expect(commitCandidates(parse(fixture('job-rdc-failed-tags.json')), null).map((c) => c.source)).toEqual(['tag ci:ssha', 'tag ci:ref']);
  });

  test.each([
    [SHA, 'sha'],
    ['9fceb02', 'short-sha'],
    ['main', 'ref'],
    ['refs/pull/3/merge', 'pull'],
    ['deadbeefz', 'ref'],
  ] as const)('classify %s', (v, k) => {
    expect(classify(v)).toBe(k);
  });

  test('the warning names the empty fields and how to set them', () => {
    const m = missingCommitMessage(JOB({ commit_id: '', branch_name: '', tags: [], build: '' }), []);
    expect(m).toMatch(/Empty: commit_id, build, tags ci:ssha, branch_name, tags ci:ref\./);
    expect(m).toMatch(/custom-data\.commit/);
    expect(m).toMatch(/saucectl/);
    expect(missingCommitMessage(parse(fixture('visual-equal-eu-no-branch.json')), [])).toMatch(
      /Empty: build_name \(no 40-hex SHA in it\), branch\..*SAUCE_VISUAL_BUILD_NAME/,
    );
  });

  test.each([
    ['bidi override', 'shop\u202E-web', 'Sauce Labs / shop-web'],
    ['isolates and marks', '\u2066shop\u2069\u200E\u061C', 'Sauce Labs / shop'],
    ['zero-width and NUL', 's\u200Bh\u0000op', 'Sauce Labs / shop'],
    ['a newline', 'shop\nweb', 'Sauce Labs / shop web'],
  ])('names carry no invisible or control characters: %s', (_what, build, want) => {
    const label = jobBuildLabel(JOB({ build }));
    expect(aggregateName({ checkName: '{prefix} / {build}', contextPrefix: 'Sauce Labs' }, label)).toBe(want);
    expect(visualName({ contextPrefix: 'Sauce Labs' }, { project: build, buildName: null })).toBe(want.replace('Sauce Labs', 'Sauce Labs Visual'));
  });

  test('stable labels cut the SHA', () => {
    expect(stableLabel(`shop sha-${SHA}`)).toBe('shop');
    expect(stableLabel(`shop-web sha:${SHA}`)).toBe('shop-web');
    expect(stableLabel('build 9fceb02 nightly', ['9fceb02'])).toBe('build nightly');
    expect(stableLabel(SHA)).toBeNull();
    expect(jobBuildLabel(JOB({ build: '' }))).toBeNull();
    expect(jobBuildLabel(JOB({ build: 'jobs' }))).toBe('jobs');
    expect(aggregateName({ checkName: '{prefix} / {build}', contextPrefix: 'Sauce Labs' }, null)).toBe('Sauce Labs / (no build)');
    expect(aggregateName({ checkName: '{prefix} / {build}', contextPrefix: 'Sauce Labs' }, 'jobs')).toBe('Sauce Labs / jobs');
    expect(visualName({ contextPrefix: 'Sauce Labs' }, { project: null, buildName: null })).toBe('Sauce Labs Visual / (no build)');
    expect(visualName({ contextPrefix: 'Sauce Labs' }, { project: 'build', buildName: null })).toBe('Sauce Labs Visual / build');
    expect(visualName({ contextPrefix: 'Sauce Labs' }, { project: '\u202E', buildName: 'web' })).toBe('Sauce Labs Visual / web');
    expect(aggregateName({ checkName: '{prefix} / {build}', contextPrefix: 'Sauce Labs' }, 'shop')).toBe('Sauce Labs / shop');
    expect(aggregateName({ checkName: 'Sauce', contextPrefix: 'x' }, 'shop')).toBe('Sauce');
    expect(visualName({ contextPrefix: 'Sauce Labs' }, { project: null, buildName: `web sha:${SHA}` })).toBe('Sauce Labs Visual / web');
  });
});

describe('job mapping: every status × passed', () => {
  const PASSED = [true, false, null] as const;
  const want: Record<string, Record<string, [string, string, string]>> = {
    PASSED: { true: ['passed', 'success', 'success'], false: ['passed', 'success', 'success'], null: ['passed', 'success', 'success'] },
    FAILED: { true: ['failed', 'failure', 'failure'], false: ['failed', 'failure', 'failure'], null: ['failed', 'failure', 'failure'] },
    ERRORED: { true: ['errored', 'error', 'failure'], false: ['errored', 'error', 'failure'], null: ['errored', 'error', 'failure'] },
    COMPLETE: { true: ['passed', 'success', 'success'], false: ['failed', 'failure', 'failure'], null: ['no-result', 'success', 'neutral'] },
  };
  test.each(JOB_STATUSES.flatMap((s) => PASSED.map((p) => [s, p] as const)))('%s × %p', (status, passed) => {
    const result = jobResult(status, passed);
    const o = jobOutcome(result);
    expect([result, o.state, o.conclusion]).toEqual(want[status]![String(passed)]);
  });
  test('COMPLETE with passed null says so', () => {
    expect(jobOutcome('no-result').description).toBe('completed, no pass/fail reported');
  });

  test.each([
    [[], 'success', 'success', '0 Sauce Labs jobs'],
    [['passed', 'passed'], 'success', 'success', '2 Sauce Labs jobs: 2 passed'],
    [['passed', 'no-result'], 'success', 'success', '2 Sauce Labs jobs: 1 passed, 1 without pass/fail'],
    [['no-result'], 'success', 'neutral', '1 Sauce Labs job: 1 without pass/fail'],
    [['passed', 'errored'], 'error', 'failure', '2 Sauce Labs jobs: 1 errored, 1 passed'],
    [['errored', 'failed', 'passed'], 'failure', 'failure', '3 Sauce Labs jobs: 1 failed, 1 errored, 1 passed'],
  ] as const)('aggregate of %p', (results, state, conclusion, description) => {
    expect(aggregateJobs(results)).toMatchObject({ state, conclusion, description });
  });

  test('worst state', () => {
    expect(worstState(['success', 'pending', 'failure'])).toBe('failure');
    expect(worstState(['success', 'error', 'failure'])).toBe('error');
    expect(worstState([])).toBeNull();
  });
});

describe('Visual mapping: every status (facts.md table)', () => {
  const s = { errored: 0, approved: 0, equal: 41, rejected: 1, unapproved: 3, queued: 0 };
  const expected: Record<string, [string, string, string | null, RegExp]> = {
    QUEUED: ['pending', 'in_progress', null, /Comparing snapshots/],
    RUNNING: ['pending', 'in_progress', null, /Comparing snapshots/],
    UNAPPROVED: ['pending', 'completed', 'neutral', /^3 visual changes await review \(\+1 rejected\)$/],
    REJECTED: ['failure', 'completed', 'failure', /^1 change rejected$/],
    APPROVED: ['success', 'completed', 'success', /^All 4 changes approved$/],
    EQUAL: ['success', 'completed', 'success', /^No visual changes$/],
    EMPTY: ['success', 'completed', 'neutral', /^No snapshots in build$/],
    ERRORED: ['error', 'completed', 'failure', /^Visual build errored$/],
  };
  test.each(VISUAL_STATUSES.map((v) => [v]))('%s', (status) => {
    const o = visualOutcome(status, s, { pendingState: 'pending', emptyPasses: true });
    const [state, checkStatus, conclusion, desc] = expected[status]!;
    expect([o.state, o.checkStatus, o.conclusion]).toEqual([state, checkStatus, conclusion]);
    expect(o.description).toMatch(desc);
    expect(o.nextStep.length).toBeGreaterThan(0);
  });
  test('options: failure while awaiting review, EMPTY fails', () => {
    expect(visualOutcome('UNAPPROVED', s, { pendingState: 'failure', emptyPasses: true })).toMatchObject({ state: 'failure', conclusion: 'failure' });
    expect(visualOutcome('EMPTY', s, { pendingState: 'pending', emptyPasses: false })).toMatchObject({ state: 'failure', conclusion: 'failure' });
    expect(visualOutcome('UNAPPROVED', { ...s, unapproved: 3 }, { pendingState: 'pending', emptyPasses: true }).nextStep).toBe('3 changes await review');
  });
});

const rec = (over: Partial<JobRecord>): JobRecord => ({ ...toJobRecord(JOB(), null), ...over });

describe('state kept on GitHub', () => {
  test('round trip; payload text cannot close the comment', () => {
    const hostile = rec({ name: '--> <script>x</script> -- <!--', checkRunId: 5, annotated: true });
    const text = encodeState({ kind: 'jobs', jobs: [hostile] });
    expect(text.match(/-->/g)).toHaveLength(1);
    expect(text).not.toMatch(/<script/);
    expect(decodeState(`visible text\n${text}`)).toEqual({ kind: 'jobs', jobs: [hostile] });
    const v: VisualRecord = {
      buildId: 'b',
      buildName: 'n',
      buildUrl: null,
      project: null,
      branch: null,
      status: 'EQUAL',
      summary: { errored: 0, approved: 0, equal: 1, rejected: 0, unapproved: 0, queued: 0 },
      receivedAt: null,
      notes: NO_NOTES,
    };
    expect(decodeState(encodeState({ kind: 'visual', build: v }))).toEqual({ kind: 'visual', build: v });
  });
  test('the fields the relay cut survive the round trip (and are absent from the block when none)', () => {
    const cut = rec({ truncated: [{ field: 'exception', bytes: 71_234 }] });
    const text = encodeState({ kind: 'jobs', jobs: [cut, rec({ id: 'other' })] });
    expect(decodeState(text)).toEqual({ kind: 'jobs', jobs: [cut, rec({ id: 'other' })] });
    expect(text.match(/"x":/g)).toHaveLength(1);
  });

  test.each([
    [null],
    [''],
    ['no block'],
    ['<!-- sauce-labs-bridge:state\n{bad json\n-->'],
    ['<!-- sauce-labs-bridge:state\n{"v":2,"kind":"jobs","jobs":[]}\n-->'],
  ])('unreadable %p → null', (t) => {
    expect(decodeState(t)).toBeNull();
  });
  test('too many jobs fall back to the minimal form, then refuse', () => {
    const many = Array.from({ length: 300 }, (_, i) => rec({ id: `job${i}`, name: 'n'.repeat(200) }));
    const text = encodeState({ kind: 'jobs', jobs: many });
    expect(text.length).toBeLessThanOrEqual(65_535);
    expect(decodeState(text)?.kind).toBe('jobs');
    expect(() => encodeState({ kind: 'jobs', jobs: many }, 1000)).toThrow(RangeError);
  });

  const t = (iso: string) => Date.parse(iso);
  test.each([
    [
      'later modification_time wins',
      rec({ status: 'PASSED', modifiedAt: t('2025-01-01T00:00:02Z') }),
      rec({ status: 'COMPLETE', passed: null, modifiedAt: t('2025-01-01T00:00:01Z') }),
      false,
    ],
    [
      'older does not roll back',
      rec({ status: 'COMPLETE', passed: null, modifiedAt: t('2025-01-01T00:00:01Z') }),
      rec({ status: 'FAILED', modifiedAt: t('2025-01-01T00:00:02Z') }),
      true,
    ],
    ['same time: final beats COMPLETE', rec({ status: 'COMPLETE', passed: null, modifiedAt: 1 }), rec({ status: 'PASSED', modifiedAt: 1 }), true],
    ['same event: no change', rec({}), rec({ receivedAt: 99 }), false],
    ['no time beats nothing', rec({ modifiedAt: 5 }), rec({ status: 'FAILED', modifiedAt: null }), false],
  ] as const)('%s', (_n, current, next, want) => {
    expect(jobSupersedes(current, next)).toBe(want);
  });

  test('mergeJobs is order-independent and keeps bookkeeping', () => {
    const a = rec({ id: 'a', status: 'COMPLETE', passed: null, modifiedAt: 1, checkRunId: 9 });
    const a2 = rec({ id: 'a', status: 'FAILED', modifiedAt: 2 });
    const b = rec({ id: 'b' });
    const one = mergeJobs([a], [a2, b]);
    const two = mergeJobs([a2, b], [a]);
    expect(one.jobs).toEqual(two.jobs);
    expect(one.jobs.find((j) => j.id === 'a')).toMatchObject({ status: 'FAILED', checkRunId: 9 });
    expect(one.changed).toEqual(['a', 'b']);
    expect(two.changed).toEqual([]);
  });

  test('Visual: QUEUED never replaces a final state of the same build; a later final state of another build does', () => {
    const base: VisualRecord = {
      buildId: 'b1',
      buildName: null,
      buildUrl: null,
      project: null,
      branch: null,
      status: 'UNAPPROVED',
      summary: { errored: 0, approved: 0, equal: 1, rejected: 0, unapproved: 2, queued: 0 },
      receivedAt: null,
      notes: NO_NOTES,
    };
    expect(mergeVisual(base, [{ ...base, status: 'QUEUED' }])).toEqual({ build: base, changed: false });
    expect(mergeVisual(base, [{ ...base, status: 'APPROVED' }]).build?.status).toBe('APPROVED');
    expect(mergeVisual({ ...base, receivedAt: 10 }, [{ ...base, status: 'REJECTED', receivedAt: 5 }]).changed).toBe(false);
    // Another build's events are grouped apart (visualBuildsOldestFirst); merged with this one, a final state still wins.
    expect(mergeVisual({ ...base, receivedAt: 10 }, [{ ...base, buildId: 'b2', status: 'EQUAL', receivedAt: 20 }]).build?.buildId).toBe('b2');
    expect(mergeVisual(base, [{ ...base, buildId: 'b2', status: 'QUEUED' }]).build?.buildId).toBe('b1');
    expect(mergeVisual(null, []).build).toBeNull();
  });
});

describe('markdown rendering', () => {
  test.each([
    ['a|b', 'a\\|b'],
    ['`x`', '\\`x\\`'],
    ['<b>&</b>', '&lt;b&gt;&amp;&lt;/b&gt;'],
    ['[t](u)', '\\[t\\]\\(u\\)'],
    ['a\nb\r\nc', 'a b c'],
    ['*_~#!', '\\*\\_\\~\\#\\!'],
    ['https://evil.example', 'https:\u200b//evil.example'],
    ['www.evil.example', 'www\u200b.evil.example'],
    ['@team', '@\u200bteam'],
    ['back\\slash', 'back\\\\slash'],
    ['shop\u202Eweb', 'shopweb'],
    ['a\u2066b\u2069c\u200Ed\u200Fe\u061Cf', 'abcdef'],
    ['n\u0000u\u0085l\u009Fl', 'nu ll'],
    ['zero\u200Bwidth\uFEFF', 'zerowidth'],
    ['a\u2028b\u2029c', 'a b c'],
  ])('escapeMd(%p)', (input, want) => {
    expect(escapeMd(input)).toBe(want);
  });

  test('links only to Sauce Labs', () => {
    expect(link('open', 'https://app.saucelabs.com/tests/a(b)')).toBe('[open](https://app.saucelabs.com/tests/a%28b%29)');
    expect(link('open', 'https://evil.example/x')).toBe('open');
    expect(link('a]b', null)).toBe('a\\]b');
    expect(safeHref('javascript:alert(1)')).toBeNull();
  });

  test('code blocks cannot be closed by the text', () => {
    expect(codeBlock('a ```` b')).toBe('`````text\na ```` b\n`````');
    expect(codeBlock('plain')).toBe('```text\nplain\n```');
  });

  test('code blocks keep lines and tabs but lose bidi and other invisible characters', () => {
    expect(codeBlock('if (a\u202E) {\r\n\treturn\u2066 1;\u2069\u0000\n}')).toBe('```text\nif (a) {\n\treturn 1;\n}\n```');
  });

  test('a job whose text the relay cut says so, with the original size and the link to the full job', () => {
    const j = rec({ status: 'FAILED', passed: false, truncated: [{ field: 'exception', bytes: 71_234 }] });
    const url = 'https://app.saucelabs.com/tests/abc';
    const view = renderJob({ record: j, error: null, exception: 'Traceback…\n[cut by the relay]', build: null, url });
    expect(view.summary).toContain(
      '> ✂ **Cut by the relay** so the event fits one repository_dispatch: exception (71,234 bytes) originally. The full text is on [the job in Sauce Labs](https://app.saucelabs.com/tests/abc).',
    );
    expect(jobRow(j, url)).toContain('✂ cut by the relay: exception (71,234 bytes)');
    expect(renderJob({ record: rec({}), error: null, exception: null, build: null, url }).summary).not.toContain('Cut by the relay');
    expect(jobRow(rec({}), url)).not.toContain('✂');
    // The field name comes from the envelope: it is escaped like any payload text.
    expect(jobRow(rec({ truncated: [{ field: '<b>|x', bytes: 1 }] }), url)).toContain('&lt;b&gt;\\|x (1 bytes)');
  });

  test('durations', () => {
    expect([formatDuration(null), formatDuration(5), formatDuration(126), formatDuration(3700)]).toEqual(['–', '5s', '2m 6s', '1h 1m']);
  });

  test('aggregate table: failed first, cut at the byte limit with "and N more"', () => {
    const jobs = Array.from({ length: 2000 }, (_, i) =>
      rec({ id: `j${String(i).padStart(4, '0')}`, name: `test ${i} ${'x'.repeat(40)}`, status: i === 1999 ? 'FAILED' : 'PASSED' }),
    );
    const view = renderAggregate(jobs, { build: 'b', jobUrl: (id) => `https://app.saucelabs.com/tests/${id}` });
    expect(Buffer.byteLength(view.summary)).toBeLessThanOrEqual(65_535);
    expect(view.summary).toMatch(/…and \d+ more not shown/);
    expect(view.summary.split('\n').find((l) => l.startsWith('| ❌'))).toContain('test 1999');
    expect(view.outcome.description).toBe('2000 Sauce Labs jobs: 1 failed, 1999 passed');
  });
});
