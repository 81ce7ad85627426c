/** The engine against a scripted in-memory Api: paths the double cannot force deterministically. */
import { describe, expect, test } from '@jest/globals';
import { parseSauceEvent } from '../../src/sauce/event.js';
import { runEngine } from '../../src/action/engine.js';
import type { Api, CheckRun, CheckRunBody, StatusBody } from '../../src/action/github.js';
import { parseInputs } from '../../src/action/inputs.js';
import type { IncomingEvent } from '../../src/action/payload.js';
import { decodeState, encodeState } from '../../src/action/state.js';
import { SHA, fixture } from './harness.js';
import { NO_NOTES } from '../../src/sauce/visual-notes.js';

interface MemRun {
  id: number;
  name: string;
  head_sha: string;
  external_id: string | null;
  output: { title?: string | null; summary?: string | null; text?: string | null };
  conclusion: string | null;
  annotations: number;
}

class MemoryApi implements Api {
  readonly dryRun = false;
  runs: MemRun[] = [];
  statuses: (StatusBody & { sha: string })[] = [];
  calls: string[] = [];
  /** Runs once, right before the next confirm read (a concurrent writer). */
  beforeRead: (() => void) | null = null;
  private id = 100;

  async resolveCommit(ref: string) {
    this.calls.push(`resolve ${ref}`);
    return ref.startsWith('9fceb02') || ref === 'feature/login' ? SHA : null;
  }
  async pullHead() {
    return null;
  }
  async openPullMerges() {
    this.calls.push('pulls');
    return new Map();
  }
  async listCheckRuns(sha: string, name?: string): Promise<CheckRun[]> {
    this.calls.push(`list ${name ?? '*'}`);
    const hook = this.beforeRead;
    this.beforeRead = null;
    hook?.();
    return this.runs.filter((r) => r.head_sha === sha && (name === undefined || r.name === name)).map((r) => ({ ...r }));
  }
  async createCheckRun(sha: string, body: CheckRunBody) {
    this.calls.push('create');
    const run: MemRun = {
      id: ++this.id,
      name: body.name,
      head_sha: sha,
      external_id: body.external_id,
      output: { ...body.output },
      conclusion: body.conclusion ?? null,
      annotations: body.output.annotations?.length ?? 0,
    };
    this.runs.push(run);
    return { ...run };
  }
  async updateCheckRun(id: number, body: Partial<CheckRunBody>) {
    this.calls.push('update');
    const run = this.runs.find((r) => r.id === id)!;
    run.annotations += body.output?.annotations?.length ?? 0;
    if (body.output) run.output = { ...run.output, ...body.output };
    if (body.conclusion) run.conclusion = body.conclusion;
    return { ...run };
  }
  async createStatus(sha: string, body: StatusBody) {
    this.calls.push('status');
    this.statuses.push({ ...body, sha });
  }
}

const inputs = (over: Record<string, string> = {}) => {
  const r = parseInputs((n) => ({ 'confirm-delay-ms': '0', ...over })[n] ?? '');
  if (!r.ok) throw new Error(r.errors.join());
  return r.inputs;
};
const events = (raws: Record<string, unknown>[]): IncomingEvent[] =>
  raws.map((raw, index) => {
    const p = parseSauceEvent(raw);
    if (!p.ok) throw new Error('bad');
    return { index, event: p.event, deliveryId: null, receivedAt: null, route: null, truncated: [], notes: NO_NOTES };
  });
const log = { info: () => {}, warning: () => {} };
const failing = (i: number) => ({ ...fixture('job-vdc-failed-boolean.json'), id: `f${i}`, name: `t${i}` });

describe('engine', () => {
  test('120 failing jobs: annotations in requests of 50, and never twice', async () => {
    const api = new MemoryApi();
    const batch = events(Array.from({ length: 120 }, (_, i) => failing(i)));
    await runEngine(batch, { api, inputs: inputs({ 'job-check-runs': 'none' }), repository: 'acme/shop', log });
    const agg = api.runs.find((r) => r.name === 'Sauce Labs / shop-web #1234')!;
    expect(agg.annotations).toBe(120);
    expect(api.calls.filter((c) => c === 'create' || c === 'update')).toEqual(['create', 'update', 'update']);
    // A replay with one changed job adds no annotation for the jobs already annotated.
    const again = events([...Array.from({ length: 120 }, (_, i) => failing(i)), { ...fixture('job-vdc-passed.json'), id: 'new' }]);
    await runEngine(again, { api, inputs: inputs({ 'job-check-runs': 'none' }), repository: 'acme/shop', log });
    expect(agg.annotations).toBe(120);
  });

  test('a concurrent write between our write and the read-back is merged and written again', async () => {
    const api = new MemoryApi();
    await runEngine(events([fixture('job-vdc-passed.json')]), { api, inputs: inputs(), repository: 'acme/shop', log });
    const agg = api.runs[0]!;
    // Another run overwrites the aggregate with only its own job, after our write.
    let armed = 2; // the first list is the initial read; the second is our read-back
    const originalList = api.listCheckRuns.bind(api);
    api.listCheckRuns = async (sha, name) => {
      armed -= 1;
      if (armed === 0) {
        const other = decodeState(agg.output.text)!;
        if (other.kind !== 'jobs') throw new Error('x');
        const theirs = [{ ...other.jobs[0]!, id: 'other-job', name: 'other' }];
        agg.output = { ...agg.output, text: encodeState({ kind: 'jobs', jobs: theirs }) };
      }
      return originalList(sha, name);
    };
    const report = await runEngine(events([fixture('job-vdc-errored.json')]), {
      api,
      inputs: inputs({ 'job-check-runs': 'none' }),
      repository: 'acme/shop',
      log,
    });
    const state = decodeState(agg.output.text);
    // Ours, the concurrent run's, and the one it dropped by overwriting: all three survive.
    expect(state?.kind === 'jobs' && state.jobs.map((j) => j.id).sort()).toEqual([
      'eed5eb4999d840f89f67f8b6d60a2da3',
      'f1e2d3c4b5a6978812345678abcdef01',
      'other-job',
    ]);
    expect(report.targets[0]!.description).toBe('3 Sauce Labs jobs: 1 errored, 2 passed');
    expect(api.statuses.at(-1)?.description).toBe('3 Sauce Labs jobs: 1 errored, 2 passed');
    expect(report.warnings).toEqual([]);
  });

  test('a concurrent run that overwrites both read-backs: the warning, the status from what we wrote, and the next event merges again', async () => {
    const api = new MemoryApi();
    await runEngine(events([fixture('job-vdc-passed.json')]), { api, inputs: inputs(), repository: 'acme/shop', log });
    const agg = api.runs[0]!;
    const theirs = (id: string) => {
      const s = decodeState(agg.output.text);
      if (s?.kind !== 'jobs') throw new Error('x');
      agg.output = { ...agg.output, text: encodeState({ kind: 'jobs', jobs: [{ ...s.jobs[0]!, id, name: id }] }) };
    };
    // The first list is the initial read; the second and third are our two read-backs, each hidden by the other run.
    let reads = 0;
    const originalList = api.listCheckRuns.bind(api);
    api.listCheckRuns = async (sha, name) => {
      reads += 1;
      if (reads === 2) theirs('other-1');
      if (reads === 3) theirs('other-2');
      return originalList(sha, name);
    };
    const warnings: string[] = [];
    const report = await runEngine(events([fixture('job-vdc-errored.json')]), {
      api,
      inputs: inputs({ 'job-check-runs': 'none' }),
      repository: 'acme/shop',
      log: { info: () => {}, warning: (m) => warnings.push(m) },
    });
    expect(reads).toBe(3);
    const warning =
      'Check run "Sauce Labs / shop-web #1234" on 9fceb02d0ae598e95dc970b74767f19372d61af8 was changed by a concurrent run twice while this run wrote it; the next event for this commit will merge again.';
    expect(report.warnings).toEqual([warning]);
    expect(warnings).toEqual([warning]);
    // We wrote twice (the first write, then the merge with other-1); the status shows our last merge.
    expect(api.calls.filter((c) => c === 'update')).toHaveLength(2);
    expect(api.statuses.at(-1)?.description).toBe('3 Sauce Labs jobs: 1 errored, 2 passed');
    expect(report.targets[0]).toMatchObject({ written: true, description: '3 Sauce Labs jobs: 1 errored, 2 passed' });
    // The next event for the commit reads what is there now (other-2's write; this adversary drops
    // what it read, a real concurrent run merges it by its own read-back) and merges again.
    api.listCheckRuns = originalList;
    await runEngine(events([{ ...fixture('job-vdc-passed.json'), id: 'next', name: 'next' }]), { api, inputs: inputs(), repository: 'acme/shop', log });
    const state = decodeState(agg.output.text);
    expect(state?.kind === 'jobs' && state.jobs.map((j) => j.id).sort()).toEqual(['next', 'other-2']);
  });

  test('a build literally named "jobs" keeps its name; jobs without a build get their own aggregate', async () => {
    const api = new MemoryApi();
    const named = { ...fixture('job-vdc-passed.json'), id: 'named', build: 'jobs' };
    const none = { ...fixture('job-vdc-failed-boolean.json'), id: 'none', build: '' };
    const report = await runEngine(events([named, none]), { api, inputs: inputs({ 'job-check-runs': 'none' }), repository: 'acme/shop', log });
    expect(report.targets.map((t) => [t.name, t.description])).toEqual([
      ['Sauce Labs / jobs', '1 Sauce Labs job: 1 passed'],
      ['Sauce Labs / (no build)', '1 Sauce Labs job: 1 failed'],
    ]);
    const byName = (n: string) => api.runs.find((r) => r.name === n)!;
    expect(byName('Sauce Labs / jobs').output.summary).toContain('Sauce build: **jobs**');
    expect(byName('Sauce Labs / jobs').external_id).toBe('sauce-jobs:jobs');
    expect(byName('Sauce Labs / (no build)').output.summary).not.toContain('Sauce build:');
  });

  test('two Visual builds of one project in one batch: each gets its check run, the status ends on the newest, in any order', async () => {
    const visual = fixture('visual-unapproved.json');
    const older = { ...visual, build_id: 'older', status: 'APPROVED' };
    const newer = { ...visual, build_id: 'newer', status: 'QUEUED' };
    for (const order of [
      [older, newer],
      [newer, older],
    ]) {
      const api = new MemoryApi();
      const batch = events(order).map((ev) => ({ ...ev, receivedAt: (ev.event as { buildId: string }).buildId === 'newer' ? 20 : 10 }));
      const report = await runEngine(batch, { api, inputs: inputs(), repository: 'acme/shop', log });
      expect(api.runs.map((r) => r.external_id).sort()).toEqual(['sauce-visual:newer', 'sauce-visual:older']);
      expect(report.targets.map((t) => t.state)).toEqual(['success', 'pending']);
      expect(api.statuses.map((st) => st.state)).toEqual(['success', 'pending']);
    }
  });

  test('two aggregate runs with one name (a create race) are merged into the newest', async () => {
    const api = new MemoryApi();
    await runEngine(events([fixture('job-vdc-passed.json')]), { api, inputs: inputs(), repository: 'acme/shop', log });
    // Simulate the losing racer's separate run holding another job.
    const first = api.runs[0]!;
    const state = decodeState(first.output.text)!;
    if (state.kind !== 'jobs') throw new Error('x');
    api.runs.push({
      ...first,
      id: 50,
      output: { ...first.output, text: encodeState({ kind: 'jobs', jobs: [{ ...state.jobs[0]!, id: 'racer' }] }) },
      annotations: 0,
    });
    await runEngine(events([fixture('job-vdc-errored.json')]), { api, inputs: inputs({ 'job-check-runs': 'none' }), repository: 'acme/shop', log });
    const newest = api.runs.reduce((a, b) => (b.id > a.id ? b : a));
    const merged = decodeState(newest.output.text);
    expect(merged?.kind === 'jobs' && merged.jobs.map((j) => j.id).length).toBe(3);
  });

  test('refs are resolved once per run, however many events name them', async () => {
    const api = new MemoryApi();
    const rdc = fixture('job-rdc-failed-tags.json');
    await runEngine(events(Array.from({ length: 30 }, (_, i) => ({ ...rdc, id: `r${i}` }))), { api, inputs: inputs(), repository: 'acme/shop', log });
    expect(api.calls.filter((c) => c.startsWith('resolve'))).toEqual(['resolve 9fceb02']);
    expect(api.calls.filter((c) => c === 'pulls')).toHaveLength(1);
  });

  test('a job of another repository (ci:repo) is skipped', async () => {
    const api = new MemoryApi();
    const report = await runEngine(events([fixture('job-rdc-failed-tags.json')]), { api, inputs: inputs(), repository: 'acme/other', log });
    expect(report.skipped).toHaveLength(1);
    expect(api.calls).toEqual([]);
  });
});
