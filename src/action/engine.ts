/**
 * The engine: events in, statuses and check runs out, through an `Api`. Everything it decides
 * comes from the pure modules (commit, mapping, state, render); this file only orders the calls
 * and keeps them few: each ref is resolved once, open PRs are listed once, check runs are read
 * once per commit, and a whole batch for one build is one aggregate write.
 */
import { annotationMessage, annotationTitle, checkTitle, chunk, contextName, externalId, statusDescription } from '../github/limits.js';
import type { JobEvent, VisualEvent } from '../sauce/event.js';
import { NO_NOTES, type VisualNotes } from '../sauce/visual-notes.js';
import { jobUrl, safeSauceUrl } from '../sauce/urls.js';
import { commitCandidates, missingCommitMessage, stableLabel, type Candidate } from '../sauce/commit.js';
import { GitHubApiError } from './errors.js';
import type { Annotation, Api, CheckRun, CheckRunBody } from './github.js';
import type { ActionInputs } from './inputs.js';
import { formatSpan, jobOutcome, jobResult, visualRecordOutcome, worstState, type CommitState, type Conclusion } from './mapping.js';
import type { IncomingEvent, TruncatedField } from './payload.js';
import { renderAggregate, renderJob, renderVisual } from './render.js';
import { decodeState, encodeState, jobsContain, mergeJobs, mergeVisual, visualBuildsOldestFirst, type JobRecord, type VisualRecord } from './state.js';

export interface Log {
  info(message: string): void;
  warning(message: string): void;
}

export interface EngineDeps {
  readonly api: Api;
  readonly inputs: ActionInputs;
  /** owner/repo of the workflow. */
  readonly repository: string;
  readonly log: Log;
  readonly sleep?: (ms: number) => Promise<void>;
}

export interface TargetReport {
  readonly kind: 'jobs' | 'visual' | 'job';
  readonly sha: string;
  readonly name: string;
  readonly state: CommitState;
  readonly conclusion: Conclusion | null;
  readonly description: string;
  readonly checkRunId: number | null;
  /** GitHub did not show this yet, so it needs a write (false for a duplicate delivery). */
  readonly wouldWrite: boolean;
  /** A write was sent: `wouldWrite`, and not a dry run. */
  readonly written: boolean;
  /** The check run summary markdown, reused for the job summary. */
  readonly summary: string;
}

export interface EngineReport {
  readonly targets: readonly TargetReport[];
  /** Events whose commit could not be found, with the warning text. */
  readonly unresolved: readonly { readonly index: number; readonly message: string }[];
  /** Events left out on purpose (another repository's). */
  readonly skipped: readonly { readonly index: number; readonly message: string }[];
  /** Commits written to, in order of first appearance. */
  readonly shas: readonly string[];
  readonly warnings: readonly string[];
}

const ANNOTATION_PATH = '.github';

/** Every annotation this Action writes: on the repository, not a line of code; title and message within GitHub's limits. */
function annotation(level: Annotation['annotation_level'], title: string, message: string): Annotation {
  return { path: ANNOTATION_PATH, start_line: 1, end_line: 1, annotation_level: level, title: annotationTitle(title), message: annotationMessage(message) };
}

/** The failure annotation of a failed or errored job (on its own check run and on the aggregate). */
function failureAnnotation(j: JobRecord, message: string): Annotation {
  return annotation('failure', `${jobOutcome(jobResult(j.status, j.passed)).description}: ${j.name ?? j.id}`, message);
}
const defaultSleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function browserLabel(e: JobEvent): string | null {
  if (!e.browserName) return null;
  return e.browserVersion ? `${e.browserName} ${e.browserVersion}` : e.browserName;
}
function osLabel(e: JobEvent): string | null {
  if (!e.osName) return null;
  return e.osVersion ? `${e.osName} ${e.osVersion}` : e.osName;
}

export function toJobRecord(e: JobEvent, receivedAt: number | null, truncated: readonly TruncatedField[] = []): JobRecord {
  return {
    id: e.id,
    family: e.family,
    status: e.status,
    passed: e.passed,
    name: e.name,
    browser: browserLabel(e),
    os: osLabel(e),
    device: e.device,
    durationSec: e.durationSec,
    modifiedAt: e.modifiedAt,
    receivedAt,
    checkRunId: null,
    annotated: false,
    truncated,
  };
}

export function toVisualRecord(e: VisualEvent, receivedAt: number | null, notes: VisualNotes = NO_NOTES): VisualRecord {
  return {
    buildId: e.buildId,
    buildName: e.buildName,
    buildUrl: safeSauceUrl(e.buildUrl),
    project: e.project,
    branch: e.branch,
    status: e.status,
    summary: e.summary,
    receivedAt,
    notes,
  };
}

/**
 * The name part for events without a Sauce build (or Visual project and build name). A build's
 * label never stands in for "no build": a build literally named "jobs" is `… / jobs`, and jobs
 * without a build are `… / (no build)` (before, both were `… / jobs` and shared one aggregate).
 */
export const NO_BUILD_LABEL = '(no build)';

/** The Sauce build as a name part, with the commit cut out so the name is stable across commits; null without a build. */
export function jobBuildLabel(e: JobEvent): string | null {
  const shortShas = [e.sauceTags.shortSha, e.commitId && /^[0-9a-f]{7,40}$/i.test(e.commitId) ? e.commitId.slice(0, 7) : null];
  return stableLabel(e.build, shortShas);
}

export function aggregateName(inputs: Pick<ActionInputs, 'checkName' | 'contextPrefix'>, buildLabel: string | null): string {
  return contextName(inputs.checkName.replaceAll('{prefix}', inputs.contextPrefix).replaceAll('{build}', buildLabel ?? NO_BUILD_LABEL));
}

export function jobCheckName(inputs: Pick<ActionInputs, 'contextPrefix'>, buildLabel: string | null, r: JobRecord): string {
  const where = [r.device ?? r.browser, r.os].filter((x): x is string => !!x).join(', ');
  return contextName(`${inputs.contextPrefix} / ${buildLabel ?? NO_BUILD_LABEL} / ${r.name ?? r.id}${where ? ` (${where})` : ''}`);
}

export function visualName(inputs: Pick<ActionInputs, 'contextPrefix'>, e: Pick<VisualEvent, 'project' | 'buildName'>): string {
  const label = stableLabel(e.project) === null ? (stableLabel(e.buildName) ?? NO_BUILD_LABEL) : e.project;
  return contextName(`${inputs.contextPrefix} Visual / ${label}`);
}

/**
 * Check runs of one commit, read once and all at once: one call (a page per 100 runs) covers the
 * aggregate, Visual and every per-job run name, instead of one filtered list per name.
 */
class CheckRunIndex {
  private readonly byName = new Map<string, CheckRun[]>();
  private loaded = false;
  constructor(
    private readonly api: Api,
    private readonly sha: string,
  ) {}

  async load(): Promise<void> {
    if (this.loaded) return;
    const runs = await this.api.listCheckRuns(this.sha);
    for (const r of runs) this.byName.set(r.name, [...(this.byName.get(r.name) ?? []), r]);
    this.loaded = true;
  }

  get(name: string): CheckRun[] {
    return this.byName.get(name) ?? [];
  }

  /**
   * True when a check run on the commit (any app's: usually the CI workflow that ran the tests)
   * names an open PR whose head is this commit. Such a commit is where the PR shows statuses, so
   * it is not a temporary merge commit and needs no PR lookup.
   */
  isOpenPullHead(): boolean {
    for (const runs of this.byName.values()) {
      for (const r of runs) if (r.pull_requests?.some((pr) => pr.head.sha.toLowerCase() === this.sha.toLowerCase())) return true;
    }
    return false;
  }

  remember(run: CheckRun): void {
    const list = this.byName.get(run.name) ?? [];
    if (!list.some((r) => r.id === run.id)) this.byName.set(run.name, [...list, run]);
  }
}

function newest(runs: readonly CheckRun[]): CheckRun | null {
  return runs.reduce<CheckRun | null>((best, r) => (best === null || r.id > best.id ? r : best), null);
}

function jobsOf(run: CheckRun | null): JobRecord[] {
  const s = run ? decodeState(run.output?.text) : null;
  return s?.kind === 'jobs' ? [...s.jobs] : [];
}

function visualOf(run: CheckRun | null): VisualRecord | null {
  const s = run ? decodeState(run.output?.text) : null;
  return s?.kind === 'visual' ? s.build : null;
}

interface Resolved {
  readonly sha: string;
  readonly via: Candidate;
}

export async function runEngine(events: readonly IncomingEvent[], deps: EngineDeps): Promise<EngineReport> {
  const { api, inputs, log } = deps;
  const sleep = deps.sleep ?? defaultSleep;
  const targets: TargetReport[] = [];
  const unresolved: { index: number; message: string }[] = [];
  const skipped: { index: number; message: string }[] = [];
  const warnings: string[] = [];
  const repoLower = deps.repository.toLowerCase();

  // 1. Resolve every event's commit; each distinct ref costs one call at most.
  const cache = new Map<string, Promise<string | null>>();
  const resolveCandidate = (c: Candidate): Promise<string | null> => {
    const key = `${c.kind}:${c.value}`;
    let p = cache.get(key);
    if (!p) {
      p =
        c.kind === 'sha'
          ? Promise.resolve(c.value)
          : c.kind === 'pull'
            ? api.pullHead(Number(c.value)).then((pr) => pr?.sha.toLowerCase() ?? null)
            : api.resolveCommit(c.value);
      cache.set(key, p);
    }
    return p;
  };
  let merges: Promise<Map<string, { head: string; number: number }>> | null = null;
  const nameOf = (ev: IncomingEvent): string => (ev.event.kind === 'job' ? aggregateName(inputs, jobBuildLabel(ev.event)) : visualName(inputs, ev.event));

  const located: { ev: IncomingEvent; sha: string; via: Candidate }[] = [];
  for (const ev of events) {
    const e = ev.event;
    if (e.kind === 'job' && e.sauceTags.repo && e.sauceTags.repo.toLowerCase() !== repoLower) {
      const message = `Skipped Sauce job ${e.id}: its ci:repo tag is ${e.sauceTags.repo}, this workflow runs in ${deps.repository}.`;
      skipped.push({ index: ev.index, message });
      log.info(message);
      continue;
    }
    const candidates = commitCandidates(e, inputs.sha);
    let found: Resolved | null = null;
    for (const c of candidates) {
      const sha = await resolveCandidate(c);
      if (sha) {
        found = { sha, via: c };
        break;
      }
    }
    if (!found) {
      unresolved.push({ index: ev.index, message: missingCommitMessage(e, candidates) });
      continue;
    }
    located.push({ ev, sha: found.sha, via: found.via });
  }

  // 2. Read the check runs of each commit once. GitHub answering 422/404 means it does not know
  //    the commit (a typo, another repository's commit): reported like a missing commit.
  const indexes = new Map<string, CheckRunIndex | null>();
  const indexFor = async (sha: string): Promise<CheckRunIndex | null> => {
    if (!indexes.has(sha)) {
      const index = new CheckRunIndex(api, sha);
      try {
        await index.load();
        indexes.set(sha, index);
      } catch (error) {
        if (!(error instanceof GitHubApiError) || (error.status !== 422 && error.status !== 404)) throw error;
        indexes.set(sha, null);
      }
    }
    return indexes.get(sha) ?? null;
  };

  // 3. A pull_request run's temporary merge commit → the PR head, where the status shows. No lookup
  //    for a commit that already carries one of our check runs (an earlier run settled it) or whose
  //    check runs show it is an open PR's head. Open PRs are listed once per run.
  for (const sha of [...new Set(located.map((l) => l.sha))]) {
    const movable = located.filter((l) => l.sha === sha && l.via.kind !== 'branch' && l.via.kind !== 'pull');
    if (movable.length === 0) continue;
    const index = await indexFor(sha);
    if (index && (movable.some((l) => index.get(nameOf(l.ev)).length > 0) || index.isOpenPullHead())) continue;
    merges ??= api.openPullMerges();
    const pr = (await merges).get(sha);
    if (!pr) continue;
    log.info(`${sha} is the merge commit of open PR #${pr.number}; writing to its head ${pr.head} instead.`);
    for (const l of movable) l.sha = pr.head;
  }

  // 4. Per commit, group by aggregate name (jobs) or Visual context, and write.
  const shas: string[] = [];
  for (const sha of [...new Set(located.map((l) => l.sha))]) {
    const hereLocated = located.filter((l) => l.sha === sha);
    const index = await indexFor(sha);
    if (index === null) {
      for (const l of hereLocated) {
        unresolved.push({
          index: l.ev.index,
          message: `Commit ${sha} (from ${l.via.source}) is not in ${deps.repository}, so nothing was written for this event. ${missingCommitMessage(l.ev.event, [])}`,
        });
      }
      continue;
    }
    shas.push(sha);
    const jobGroups = new Map<string, { label: string | null; events: IncomingEvent[] }>();
    const visualGroups = new Map<string, IncomingEvent[]>();
    for (const { ev } of hereLocated) {
      const name = nameOf(ev);
      if (ev.event.kind === 'job') {
        const g = jobGroups.get(name) ?? { label: jobBuildLabel(ev.event), events: [] };
        g.events.push(ev);
        jobGroups.set(name, g);
      } else {
        visualGroups.set(name, [...(visualGroups.get(name) ?? []), ev]);
      }
    }
    for (const [name, g] of jobGroups) targets.push(...(await processJobs(sha, name, g.label, g.events, index, deps, sleep, warnings)));
    // One Visual context can carry several builds (a re-run on the same commit): each is written to
    // its own check run, oldest first, so the status ends on the newest build.
    for (const [name, evs] of visualGroups) {
      for (const build of visualBuildsOldestFirst(evs, (ev) => toVisualRecord(ev.event as VisualEvent, ev.receivedAt, ev.notes))) {
        targets.push(await processVisual(sha, name, build, index, deps, sleep, warnings));
      }
    }
  }

  for (const w of warnings) log.warning(w);
  return { targets, unresolved, skipped, shas, warnings };
}

/** Write `body` to the newest run of `runs` (or create it), with annotations 50 per request. */
async function writeRun(api: Api, sha: string, runs: readonly CheckRun[], body: CheckRunBody, annotations: readonly Annotation[]): Promise<CheckRun> {
  const groups = chunk(annotations);
  const first = groups.shift();
  const withFirst: CheckRunBody = { ...body, output: { ...body.output, ...(first ? { annotations: first } : {}) } };
  const target = newest(runs);
  const run = target ? await api.updateCheckRun(target.id, withFirst) : await api.createCheckRun(sha, withFirst);
  for (const g of groups) await api.updateCheckRun(run.id, { output: { title: body.output.title, summary: body.output.summary, annotations: g } });
  return { ...run, name: run.name || body.name };
}

/**
 * Write, wait, read back, and if a concurrent run's write hides ours, merge and write once more.
 * `contains(run, ours)` says whether a run read back already holds everything we wrote.
 */
async function writeConfirmed<S>(
  api: Api,
  sha: string,
  name: string,
  runs: readonly CheckRun[],
  ours: S,
  opts: {
    readonly render: (state: S) => CheckRunBody;
    readonly stateOf: (runs: readonly CheckRun[]) => S;
    readonly merge: (base: S, ours: S) => S;
    readonly contains: (run: CheckRun | null, ours: S) => boolean;
    readonly annotations: readonly Annotation[];
    readonly delayMs: number;
    readonly sleep: (ms: number) => Promise<void>;
  },
): Promise<{ run: CheckRun; state: S; confirmed: boolean }> {
  let state = opts.merge(opts.stateOf(runs), ours);
  let run = await writeRun(api, sha, runs, opts.render(state), opts.annotations);
  if (api.dryRun) return { run, state, confirmed: true };
  for (let attempt = 0; attempt < 2; attempt++) {
    await opts.sleep(opts.delayMs);
    const fresh = await api.listCheckRuns(sha, name);
    const canonical = newest(fresh);
    const union = opts.merge(opts.stateOf(fresh), state);
    if (canonical && opts.contains(canonical, union)) return { run: canonical, state: union, confirmed: true };
    if (attempt === 1) break;
    state = union;
    run = await writeRun(api, sha, fresh, opts.render(state), []);
  }
  return { run, state, confirmed: false };
}

async function processJobs(
  sha: string,
  name: string,
  label: string | null,
  events: readonly IncomingEvent[],
  index: CheckRunIndex,
  deps: EngineDeps,
  sleep: (ms: number) => Promise<void>,
  warnings: string[],
): Promise<TargetReport[]> {
  const { api, inputs } = deps;
  const out: TargetReport[] = [];
  const urlOf = (id: string): string => jobUrl(inputs.region, id);
  const stateOf = (runs: readonly CheckRun[]): JobRecord[] => [
    ...mergeJobs(
      [],
      runs.flatMap((r) => jobsOf(r)),
    ).jobs,
  ];

  // The latest incoming record per job, and the event it came from (for error text).
  const incoming = mergeJobs(
    [],
    events.map((ev) => toJobRecord(ev.event as JobEvent, ev.receivedAt, ev.truncated)),
  ).jobs;
  const detail = new Map<string, JobEvent>();
  for (const ev of events) {
    const e = ev.event as JobEvent;
    const rec = incoming.find((r) => r.id === e.id);
    if (rec && rec.status === e.status && rec.modifiedAt === e.modifiedAt && rec.passed === e.passed) detail.set(e.id, e);
  }

  const existing = index.get(name);
  const stored = stateOf(existing);
  const merged = mergeJobs(stored, incoming);
  const changed = new Set(merged.changed);
  const render = (jobs: readonly JobRecord[]): CheckRunBody => {
    const view = renderAggregate(jobs, { build: label, jobUrl: urlOf });
    return {
      name,
      external_id: externalId(`sauce-jobs:${label ?? NO_BUILD_LABEL}`),
      status: 'completed',
      conclusion: view.outcome.conclusion,
      output: { title: checkTitle(view.title), summary: view.summary, text: encodeState({ kind: 'jobs', jobs }) },
    };
  };

  if (changed.size === 0 && existing.length > 0) {
    const view = renderAggregate(merged.jobs, { build: label, jobUrl: urlOf });
    const run = newest(existing);
    out.push({
      kind: 'jobs',
      sha,
      name,
      state: view.outcome.state,
      conclusion: view.outcome.conclusion,
      description: view.outcome.description,
      checkRunId: run?.id ?? null,
      wouldWrite: false,
      written: false,
      summary: view.summary,
    });
    return out;
  }

  // Per-job check runs for jobs whose result this batch changed.
  const ours: JobRecord[] = [];
  const jobRunNames = new Map<string, string>();
  const wanted = merged.jobs.filter((j) => {
    if (!changed.has(j.id)) return false;
    const failing = ['failed', 'errored'].includes(jobResult(j.status, j.passed));
    return inputs.jobCheckRuns === 'all' || (inputs.jobCheckRuns === 'failed' && (failing || j.checkRunId !== null));
  });
  for (const j of wanted) jobRunNames.set(j.id, jobCheckName(inputs, label, j));

  for (const j of merged.jobs) {
    if (!changed.has(j.id)) continue;
    let rec = j;
    const result = jobResult(j.status, j.passed);
    const outcome = jobOutcome(result);
    const failing = result === 'failed' || result === 'errored';
    const e = detail.get(j.id) ?? null;
    if (jobRunNames.has(j.id)) {
      const runName = jobRunNames.get(j.id)!;
      const view = renderJob({
        record: j,
        error: e?.error ?? null,
        exception: e?.exception ?? null,
        build: label,
        url: urlOf(j.id),
      });
      const prior = j.checkRunId !== null ? [{ id: j.checkRunId, name: runName }] : index.get(runName).filter((r) => r.external_id === `sauce-job:${j.id}`);
      const annotations: Annotation[] =
        failing && prior.length === 0
          ? [failureAnnotation(j, [e?.error, e?.exception].filter(Boolean).join('\n\n') || `Sauce job ${outcome.description}. ${urlOf(j.id)}`)]
          : [];
      const run = await writeRun(
        api,
        sha,
        prior,
        {
          name: runName,
          external_id: `sauce-job:${j.id}`,
          status: 'completed',
          conclusion: outcome.conclusion,
          output: { title: checkTitle(view.title), summary: view.summary },
        },
        annotations,
      );
      index.remember(run);
      out.push({
        kind: 'job',
        sha,
        name: runName,
        state: outcome.state,
        conclusion: outcome.conclusion,
        description: outcome.description,
        checkRunId: run.id > 0 ? run.id : null,
        wouldWrite: true,
        written: !api.dryRun,
        summary: view.summary,
      });
      if (run.id > 0) rec = { ...rec, checkRunId: run.id };
    }
    ours.push(rec);
  }

  // The aggregate: failure annotations once per job, then write, read back, confirm.
  const annotations: Annotation[] = [];
  const annotatedOurs = ours.map((j) => {
    const result = jobResult(j.status, j.passed);
    if ((result === 'failed' || result === 'errored') && !j.annotated) {
      const e = detail.get(j.id);
      annotations.push(failureAnnotation(j, `${[j.browser ?? j.device, j.os].filter(Boolean).join(', ')} — ${urlOf(j.id)}${e?.error ? `\n${e.error}` : ''}`));
      return { ...j, annotated: true };
    }
    return j;
  });

  const { run, state, confirmed } = await writeConfirmed(api, sha, name, existing, annotatedOurs, {
    render,
    stateOf,
    merge: (base, add) => [...mergeJobs(base, add).jobs],
    contains: (r, want) => jobsContain(jobsOf(r), want),
    annotations,
    delayMs: inputs.confirmDelayMs,
    sleep,
  });
  if (!confirmed)
    warnings.push(
      `Check run "${name}" on ${sha} was changed by a concurrent run twice while this run wrote it; the next event for this commit will merge again.`,
    );
  const view = renderAggregate(state, { build: label, jobUrl: urlOf });
  const o = view.outcome;
  await api.createStatus(sha, {
    context: name,
    state: o.state,
    description: statusDescription(o.description),
    ...(run.html_url ? { target_url: run.html_url } : {}),
  });
  if (inputs.jobStatuses) {
    for (const j of ours) {
      const jo = jobOutcome(jobResult(j.status, j.passed));
      await api.createStatus(sha, {
        context: jobCheckName(inputs, label, j),
        state: jo.state,
        description: statusDescription(`${jo.description}: ${j.name ?? j.id}`),
        target_url: urlOf(j.id),
      });
    }
  }
  out.unshift({
    kind: 'jobs',
    sha,
    name,
    state: o.state,
    conclusion: o.conclusion,
    description: o.description,
    checkRunId: run.id > 0 ? run.id : null,
    wouldWrite: true,
    written: !api.dryRun,
    summary: view.summary,
  });
  return out;
}

/** The events of one Visual build on one status context: its check run, then the status. */
async function processVisual(
  sha: string,
  name: string,
  events: readonly IncomingEvent[],
  index: CheckRunIndex,
  deps: EngineDeps,
  sleep: (ms: number) => Promise<void>,
  warnings: string[],
): Promise<TargetReport> {
  const { api, inputs } = deps;
  const opts = { pendingState: inputs.visualPendingState, emptyPasses: inputs.visualEmptyPasses };
  const latest = mergeVisual(
    null,
    events.map((ev) => toVisualRecord(ev.event as VisualEvent, ev.receivedAt, ev.notes)),
  ).build!;
  const externalId = `sauce-visual:${latest.buildId}`;
  const mine = (runs: readonly CheckRun[]): CheckRun[] => runs.filter((r) => r.external_id === externalId || visualOf(r)?.buildId === latest.buildId);
  const stateOf = (runs: readonly CheckRun[]): VisualRecord | null =>
    mergeVisual(
      null,
      mine(runs)
        .map((r) => visualOf(r))
        .filter((v): v is VisualRecord => v !== null),
    ).build;
  const existing = mine(index.get(name));
  const stored = stateOf(existing);
  const merged = mergeVisual(stored, [latest]);
  const build = merged.build!;
  const render = (v: VisualRecord): CheckRunBody => {
    const o = visualRecordOutcome(v, opts);
    const view = renderVisual(v, o);
    return {
      name,
      external_id: externalId,
      status: o.checkStatus,
      ...(o.conclusion ? { conclusion: o.conclusion } : {}),
      output: { title: checkTitle(view.title), summary: view.summary, text: encodeState({ kind: 'visual', build: v }) },
    };
  };
  if (!merged.changed && existing.length > 0) {
    const o = visualRecordOutcome(build, opts);
    return {
      kind: 'visual',
      sha,
      name,
      state: o.state,
      conclusion: o.conclusion,
      description: o.description,
      checkRunId: newest(existing)?.id ?? null,
      wouldWrite: false,
      written: false,
      summary: renderVisual(build, o).summary,
    };
  }
  const o = visualRecordOutcome(build, opts);
  const s = build.summary;
  const annotations: Annotation[] = [];
  const note = (level: Annotation['annotation_level'], title: string, message: string): void => {
    annotations.push(annotation(level, title, `${message}${build.buildUrl ? ` ${build.buildUrl}` : ''}`));
  };
  if (o.conclusion === 'timed_out' && build.notes.stuck) {
    note(
      'failure',
      o.description,
      `The relay's verdict: Sauce still reports ${build.status} ${formatSpan(build.notes.stuck.afterMs)} after the first webhook. Re-run the tests, or finish the build (finishBuild):`,
    );
  } else if (o.checkStatus === 'completed') {
    if (s.unapproved > 0)
      note(
        inputs.visualPendingState === 'failure' ? 'failure' : 'warning',
        `${s.unapproved} visual change${s.unapproved === 1 ? '' : 's'} await review`,
        'Review them in Sauce Visual:',
      );
    if (s.rejected > 0) note('failure', `${s.rejected} visual change${s.rejected === 1 ? '' : 's'} rejected`, 'Rejected in Sauce Visual:');
    if (s.errored > 0) note('failure', `${s.errored} snapshot${s.errored === 1 ? '' : 's'} errored`, 'Errored in Sauce Visual:');
  }
  const result = await writeConfirmed<VisualRecord>(api, sha, name, existing, build, {
    render,
    stateOf: (runs) => stateOf(runs) ?? build,
    merge: (base, add) => mergeVisual(base, [add]).build ?? add,
    contains: (r, want) => {
      const have = visualOf(r);
      return have !== null && !mergeVisual(have, [want]).changed;
    },
    annotations,
    delayMs: inputs.confirmDelayMs,
    sleep,
  });
  if (!result.confirmed) warnings.push(`Check run "${name}" on ${sha} was changed by a concurrent run twice while this run wrote it.`);
  const fo = visualRecordOutcome(result.state, opts);
  await api.createStatus(sha, {
    context: name,
    state: fo.state,
    description: statusDescription(fo.description),
    ...(result.state.buildUrl ? { target_url: result.state.buildUrl } : {}),
  });
  return {
    kind: 'visual',
    sha,
    name,
    state: fo.state,
    conclusion: fo.conclusion,
    description: fo.description,
    checkRunId: result.run.id > 0 ? result.run.id : null,
    wouldWrite: true,
    written: !api.dryRun,
    summary: renderVisual(result.state, fo).summary,
  };
}

/** The aggregate state over everything this run reported (worst first). */
export function overallState(targets: readonly TargetReport[]): CommitState | null {
  return worstState(targets.filter((t) => t.kind !== 'job').map((t) => t.state));
}
