/**
 * Payload text must never become a workflow command in the runner log. The runner reads a line as a
 * command when, after leading whitespace, it starts with `::` or `##[`; a Sauce tag holding a
 * newline and `::error title=forged::…` would otherwise forge an annotation, `::add-mask::` would
 * hide text and `::stop-commands::` would switch the Action's own commands off.
 *
 * The committed bundle runs with every string field of job and Visual events holding such text, in
 * dry-run and against the GitHub double; its stdout and stderr are read as the runner reads them.
 */
import { describe, expect, test } from '@jest/globals';
import { logText } from '../../src/action/log.js';
import type { GitHubDouble } from '../support/github-double.js';
import { REPO, SHA, envelope, fixture, runAction, type RunResult, useGitHubDouble } from './harness.js';

let double: GitHubDouble;
useGitHubDouble((d) => (double = d));

/** Every way to start a new line (or a command) that a payload string might try. */
const FORGERIES = [
  '\n::error title=forged::x',
  '\n::error::forged',
  '\n::add-mask::secret',
  '\n::stop-commands::tok',
  '\r\n##[error]x',
  '\r::warning file=a.js,line=1::forged',
  '\n   ::notice title=forged::indented',
  '%0A::error title=forged::x',
  '%0D%0A::add-mask::secret',
  '\u2028::error title=forged::x',
  '\u2029##[warning]x',
  '\u0085::error title=forged::x',
  '\v::error title=forged::x',
  '\f::error title=forged::x',
];
const INJECTED = FORGERIES.join('');

/**
 * A batch that reaches every log message carrying payload text: a failed job written with every
 * per-job name, an unresolvable commit, another repository's job, an invalid status, a Visual build
 * written and one without a commit. `t(field)` is the text put in each string field.
 */
function batch(t: (field: string) => string): Record<string, unknown>[] {
  const job = fixture('job-vdc-failed-boolean.json');
  const visual = fixture('visual-unapproved.json');
  const jobStrings = (prefix: string) => ({
    id: `${prefix}${t('id')}`,
    name: t('name'),
    browser_name: t('browser_name'),
    browser_version: t('browser_version'),
    os_name: t('os_name'),
    os_version: t('os_version'),
    device: t('device'),
    error: t('error'),
    exception: t('exception'),
    branch_name: t('branch_name'),
    build: t('build'),
    owner: t('owner'),
    team_name: t('team_name'),
    app: t('app'),
    automation_backend: t('automation_backend'),
    creation_time: t('creation_time'),
    tags: [t('tag'), `ci:ref:${t('ci:ref')}`, `ci:url:${t('ci:url')}`],
  });
  return [
    { ...job, ...jobStrings('written'), commit_id: SHA },
    { ...job, ...jobStrings('nocommit'), commit_id: t('commit_id'), tags: [`ci:ssha:${t('ci:ssha')}`, `ci:ref:${t('ci:ref')}`] },
    { ...job, ...jobStrings('foreign'), tags: [`ci:repo:other/repo${t('ci:repo')}`] },
    { ...job, ...jobStrings('invalid'), status: `FAILED${t('status')}`, data_type: `vdc${t('data_type')}` },
    {
      ...visual,
      build_id: `written${t('build_id')}`,
      build_name: `shop sha:${SHA} ${t('build_name')}`,
      build_url: `https://app.saucelabs.com/visual/builds/1${t('build_url')}`,
      project: t('project'),
      branch: t('branch'),
      data_center: t('data_center'),
      org_id: t('org_id'),
      user_id: t('user_id'),
      creator_id: t('creator_id'),
      team_ids: [t('team_ids')],
    },
    { ...visual, build_id: `nocommit${t('build_id')}`, build_name: t('build_name'), branch: t('branch'), project: `other${t('project')}` },
  ];
}

interface Command {
  readonly line: string;
  readonly name: string;
  readonly properties: string;
}

/** Workflow commands as the runner finds them: `::name props::data` or `##[name]data`, after leading whitespace. */
function commands(r: RunResult): Command[] {
  const out: Command[] = [];
  for (const line of `${r.stdout}\n${r.stderr}`.split(/\r\n|\r|\n/)) {
    const trimmed = line.trimStart();
    if (trimmed.startsWith('##[')) out.push({ line, name: `##[${/^##\[(\w*)/.exec(trimmed)?.[1] ?? ''}]`, properties: '' });
    else if (trimmed.startsWith('::')) {
      const m = /^::([^\s:]*)(?:\s([^:]*))?::/.exec(trimmed);
      out.push({ line, name: m?.[1] ?? '(unparsed)', properties: m?.[2] ?? '' });
    }
  }
  return out;
}

describe('logText', () => {
  test.each([
    ['a newline', 'tag a\n::error title=forged::x', 'tag a\\n::error title=forged::x'],
    ['CR LF', 'a\r\n##[error]x', 'a\\r\\n##[error]x'],
    ['U+2028 and U+2029', 'a\u2028b\u2029c', 'a\\u2028b\\u2029c'],
    ['NEL, VT, FF, tab', 'a\u0085b\vc\fd\te', 'a\\u0085b\\u000bc\\u000cd\\te'],
    ['NUL and ESC', 'a\u0000b\u001b[31mc', 'a\\u0000b\\u001b[31mc'],
    ['a bidi override and a zero-width space', 'a\u202Eb\u200Bc', 'a\\u202eb\\u200bc'],
    ['a tag character', 'a\u{E0041}b', 'a\\u{e0041}b'],
    ['a message that starts like a command', '::add-mask::x', '\\::add-mask::x'],
    ['a message that starts like a command after spaces', '  ##[error]x', '  \\##[error]x'],
    ['%0A stays text', 'a%0A::error::x', 'a%0A::error::x'],
    ['plain text is unchanged', 'Skipped Sauce job 1: its ci:repo tag is a/b (ünïcödé 😀)', 'Skipped Sauce job 1: its ci:repo tag is a/b (ünïcödé 😀)'],
  ])('%s', (_what, input, want) => {
    expect(logText(input)).toBe(want);
    expect(logText(input)).not.toMatch(/[\n\r\u2028\u2029\u0085\v\f]/);
  });
});

describe('no payload text becomes a workflow command', () => {
  const runBoth = async (inputs: Record<string, string>) => {
    const clean = await runAction({ apiUrl: double.url, clientPayload: envelope(batch((f) => ` plain ${f} `)), inputs });
    double.reset();
    double.addCommit(REPO, SHA);
    const hostile = await runAction({ apiUrl: double.url, clientPayload: envelope(batch((f) => ` ${f}${INJECTED} `)), inputs });
    return { clean, hostile };
  };

  test.each<[string, Record<string, string>]>([
    ['dry-run', { 'dry-run': 'true', 'github-token': '' }],
    ['against the GitHub double', { 'job-check-runs': 'all', 'job-statuses': 'true' }],
  ])('%s', async (_mode, inputs) => {
    const { clean, hostile } = await runBoth(inputs);
    // The same run without the forgeries: the same commands, in the same order, and nothing else.
    const want = commands(clean).map((c) => c.name);
    expect(want).toEqual(expect.arrayContaining(['error', 'warning']));
    const got = commands(hostile);
    expect(got.map((c) => c.name)).toEqual(want);
    for (const c of got) {
      expect(['error', 'warning']).toContain(c.name);
      expect(c.properties).toBe('');
      expect(c.line).toMatch(/^::(error|warning)::/);
    }
    // The payload text is there, inert: on lines of the Action's own, never at a line start.
    expect(hostile.stdout).toContain('::error title=forged::x');
    expect(hostile.code).toBe(clean.code);
    if (inputs['dry-run']) expect(hostile.stdout).toMatch(/\[dry-run\] would resolve .*\\n::error title=forged::x/);
    else expect(double.checkRuns(REPO).length).toBeGreaterThan(0);
  });

  test('a payload input that is not JSON', async () => {
    const r = await runAction({
      apiUrl: double.url,
      eventName: 'workflow_dispatch',
      inputs: { payload: `x${INJECTED}` },
    });
    expect(r.code).toBe(1);
    expect(commands(r).map((c) => c.line)).toEqual([expect.stringMatching(/^::error::payload input: payload input is not valid JSON/)]);
  });
});
