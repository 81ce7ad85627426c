/**
 * Sauce results → GitHub commit states and check conclusions. Pure tables.
 */
import type { VisualSummary } from '../sauce/event.js';
import type { JobStatus, VisualStatus } from '../sauce/schema.js';
import { visualStatusIsOpen, visualStatusIsUnfinished } from '../sauce/visual-api.js';
import type { VisualNotes } from '../sauce/visual-notes.js';
import type { VisualPendingState } from './inputs.js';

export type CommitState = 'error' | 'failure' | 'pending' | 'success';
/** `timed_out`: only for the relay's verdict that a Visual build never finished. */
export type Conclusion = 'success' | 'failure' | 'neutral' | 'timed_out';
export type JobResult = 'passed' | 'failed' | 'errored' | 'no-result';

/** PASSED/FAILED/ERRORED are final and win over `passed`; COMPLETE takes its result from `passed`. */
export function jobResult(status: JobStatus, passed: boolean | null): JobResult {
  switch (status) {
    case 'PASSED':
      return 'passed';
    case 'FAILED':
      return 'failed';
    case 'ERRORED':
      return 'errored';
    case 'COMPLETE':
      return passed === true ? 'passed' : passed === false ? 'failed' : 'no-result';
  }
}

export interface JobOutcome {
  readonly state: CommitState;
  readonly conclusion: Conclusion;
  /** Short word for tables. */
  readonly label: string;
  /** Commit status description. */
  readonly description: string;
}

const JOB_OUTCOMES: Record<JobResult, JobOutcome> = {
  passed: { state: 'success', conclusion: 'success', label: '✅ passed', description: 'passed' },
  failed: { state: 'failure', conclusion: 'failure', label: '❌ failed', description: 'failed' },
  errored: { state: 'error', conclusion: 'failure', label: '⚠️ errored', description: 'errored' },
  'no-result': { state: 'success', conclusion: 'neutral', label: '➖ no result', description: 'completed, no pass/fail reported' },
};

export function jobOutcome(result: JobResult): JobOutcome {
  return JOB_OUTCOMES[result];
}

/** Order in which the events of one job replace each other when their times are equal. */
export function jobFinality(status: JobStatus, passed: boolean | null): number {
  if (status === 'COMPLETE') return passed === null ? 0 : 1;
  return 2;
}

export interface AggregateCounts {
  readonly total: number;
  readonly passed: number;
  readonly failed: number;
  readonly errored: number;
  readonly noResult: number;
}

export interface AggregateOutcome {
  readonly state: CommitState;
  readonly conclusion: Conclusion;
  readonly counts: AggregateCounts;
  /** One line: commit status description and check title. */
  readonly description: string;
}

/**
 * The rollup of one Sauce build's jobs. Any failed job → failure; else any errored → error;
 * else success. The check: failure when any failed or errored, neutral when no job reported
 * pass/fail, else success. It is never pending: Sauce does not say how many jobs a build has.
 */
export function aggregateJobs(results: readonly JobResult[]): AggregateOutcome {
  const counts = {
    total: results.length,
    passed: results.filter((r) => r === 'passed').length,
    failed: results.filter((r) => r === 'failed').length,
    errored: results.filter((r) => r === 'errored').length,
    noResult: results.filter((r) => r === 'no-result').length,
  };
  const state: CommitState = counts.failed > 0 ? 'failure' : counts.errored > 0 ? 'error' : 'success';
  const conclusion: Conclusion = counts.failed + counts.errored > 0 ? 'failure' : counts.passed > 0 || counts.total === 0 ? 'success' : 'neutral';
  const parts: string[] = [];
  if (counts.failed > 0) parts.push(`${counts.failed} failed`);
  if (counts.errored > 0) parts.push(`${counts.errored} errored`);
  if (counts.passed > 0) parts.push(`${counts.passed} passed`);
  if (counts.noResult > 0) parts.push(`${counts.noResult} without pass/fail`);
  const jobs = `${counts.total} Sauce Labs job${counts.total === 1 ? '' : 's'}`;
  return { state, conclusion, counts, description: parts.length > 0 ? `${jobs}: ${parts.join(', ')}` : jobs };
}

/** Worst first: the state a set of statuses shows as. */
export function worstState(states: readonly CommitState[]): CommitState | null {
  for (const s of ['error', 'failure', 'pending', 'success'] as const) if (states.includes(s)) return s;
  return null;
}

export interface VisualOptions {
  readonly pendingState: VisualPendingState;
  readonly emptyPasses: boolean;
}

export interface VisualOutcome {
  readonly state: CommitState;
  readonly checkStatus: 'in_progress' | 'completed';
  readonly conclusion: Conclusion | null;
  readonly description: string;
  /** The one next step for the reader; the renderer appends "→ open the build" with the link. */
  readonly nextStep: string;
}

function plural(n: number, one: string, many: string = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** The table in shared/reference/facts.md. */
export function visualOutcome(status: VisualStatus, s: VisualSummary, opts: VisualOptions): VisualOutcome {
  const changes = s.approved + s.rejected + s.unapproved;
  switch (status) {
    case 'QUEUED':
    case 'RUNNING':
      return {
        state: 'pending',
        checkStatus: 'in_progress',
        conclusion: null,
        description: s.queued > 0 ? `Comparing snapshots… (${s.queued} queued)` : 'Comparing snapshots…',
        nextStep: 'Sauce Visual is still comparing snapshots',
      };
    case 'UNAPPROVED': {
      const extra = s.rejected > 0 ? ` (+${s.rejected} rejected)` : '';
      return {
        state: opts.pendingState,
        checkStatus: 'completed',
        conclusion: opts.pendingState === 'failure' ? 'failure' : 'neutral',
        description: `${plural(s.unapproved, 'visual change')} await${s.unapproved === 1 ? 's' : ''} review${extra}`,
        nextStep: `${plural(s.unapproved, 'change')} await${s.unapproved === 1 ? 's' : ''} review`,
      };
    }
    case 'REJECTED':
      return {
        state: 'failure',
        checkStatus: 'completed',
        conclusion: 'failure',
        description: `${plural(s.rejected, 'change')} rejected`,
        nextStep: `${plural(s.rejected, 'change')} rejected: fix the UI or review again`,
      };
    case 'APPROVED':
      return {
        state: 'success',
        checkStatus: 'completed',
        conclusion: 'success',
        description: `All ${plural(changes, 'change')} approved`,
        nextStep: 'Nothing to do: every change is approved',
      };
    case 'EQUAL':
      return {
        state: 'success',
        checkStatus: 'completed',
        conclusion: 'success',
        description: 'No visual changes',
        nextStep: 'Nothing to do: no visual changes',
      };
    case 'EMPTY':
      return {
        state: opts.emptyPasses ? 'success' : 'failure',
        checkStatus: 'completed',
        conclusion: opts.emptyPasses ? 'neutral' : 'failure',
        description: 'No snapshots in build',
        nextStep: 'The build has no snapshots: check that the tests take them',
      };
    case 'ERRORED':
      return {
        state: 'error',
        checkStatus: 'completed',
        conclusion: 'failure',
        description: s.errored > 0 ? `Visual build errored (${plural(s.errored, 'snapshot')} errored)` : 'Visual build errored',
        nextStep: 'The build errored: see which snapshots failed',
      };
  }
}

/**
 * A span for people: the two largest units, e.g. `2 h`, `1 h 30 min`, `3 d`, `45 s`. Below one
 * second, in milliseconds.
 */
export function formatSpan(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  const units = [
    ['d', 86_400],
    ['h', 3_600],
    ['min', 60],
    ['s', 1],
  ] as const;
  let rest = Math.round(ms / 1000);
  const parts: string[] = [];
  for (const [unit, size] of units) {
    if (parts.length === 2) break;
    const n = Math.floor(rest / size);
    rest -= n * size;
    if (n > 0) parts.push(`${n} ${unit}`);
    else if (parts.length > 0) break;
  }
  return parts.join(' ');
}

/**
 * The outcome of a Visual record: Sauce's status (`visualOutcome`), unless the relay gave its
 * "stuck" verdict on a build Sauce still calls QUEUED or RUNNING. That verdict is `error` on the
 * commit and `timed_out` on the check run, and says it is the relay's; once Sauce reports a
 * result, the record no longer carries it. A watch that ended leaves the outcome as it was and
 * says so in the description.
 */
export function visualRecordOutcome(
  v: { readonly status: VisualStatus; readonly summary: VisualSummary; readonly notes: VisualNotes },
  opts: VisualOptions,
): VisualOutcome {
  if (v.notes.stuck && visualStatusIsUnfinished(v.status)) {
    return {
      state: 'error',
      checkStatus: 'completed',
      conclusion: 'timed_out',
      description: `Visual build did not finish within ${formatSpan(v.notes.stuck.afterMs)}`,
      nextStep: 'Re-run the tests, or finish the build in Sauce (finishBuild)',
    };
  }
  const outcome = visualOutcome(v.status, v.summary, opts);
  if (v.notes.watchEnded && visualStatusIsOpen(v.status)) {
    return { ...outcome, description: `${outcome.description} (no longer refreshed)` };
  }
  return outcome;
}

/** QUEUED/RUNNING never replace a final state of the same build. */
export function visualFinality(status: VisualStatus): number {
  return visualStatusIsUnfinished(status) ? 0 : 1;
}
