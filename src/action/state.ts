/**
 * The state this action keeps on GitHub, so that every run can recompute the whole picture from
 * what is already there plus its own events (no other storage).
 *
 * Each check run this action writes carries a hidden block at the end of `output.text`:
 *
 *     <!-- sauce-labs-bridge:state
 *     {"v":1,"kind":"jobs","jobs":[{"i":"<job id>","s":"FAILED","p":false,"t":1756821917000,...}]}
 *     -->
 *
 * An HTML comment renders as nothing. Inside JSON strings `-`, `<` and `>` are written as
 * `\u002d`, `\u003c`, `\u003e`, so no payload text can close the comment or inject markup.
 * The aggregate check run keeps one record per job (latest by `modification_time`); a Visual
 * check run keeps its build's latest state. Records merge with `mergeJobs`/`mergeVisual`: each
 * keeps the greatest record in a total order (`compareJobs`, `compareVisual`), so merging is
 * commutative and associative and the union of several copies (duplicate check runs from a race,
 * the read-back after a write, events in any order) converges to the same result.
 */
import { z } from 'zod';
import { JOB_FAMILIES, JOB_STATUSES, VISUAL_STATUSES, type JobFamily, type JobStatus, type VisualStatus } from '../sauce/schema.js';
import type { VisualSummary } from '../sauce/event.js';
import { CHECK_OUTPUT_MAX_BYTES, utf8Bytes } from '../github/limits.js';
import { NO_NOTES, fitNotes, notesText, notesToWire, parseVisualNotes, type VisualNotes } from '../sauce/visual-notes.js';
import { jobFinality, visualFinality } from './mapping.js';
import type { TruncatedField } from './payload.js';

export interface JobRecord {
  readonly id: string;
  readonly family: JobFamily;
  readonly status: JobStatus;
  readonly passed: boolean | null;
  readonly name: string | null;
  /** Browser and version, e.g. `chrome 128`, or null. */
  readonly browser: string | null;
  /** OS and version. */
  readonly os: string | null;
  readonly device: string | null;
  readonly durationSec: number | null;
  /** `modification_time`, epoch ms. */
  readonly modifiedAt: number | null;
  /** Relay receive time, epoch ms (a tie-breaker only). */
  readonly receivedAt: number | null;
  /** The per-job check run, once created. */
  readonly checkRunId: number | null;
  /** A failure annotation was already sent for this job (annotations append, never replace). */
  readonly annotated: boolean;
  /** Text fields of this record's event that the relay cut to fit one dispatch. */
  readonly truncated: readonly TruncatedField[];
}

export interface VisualRecord {
  readonly buildId: string;
  readonly buildName: string | null;
  /** Only ever a Sauce Labs URL (checked before it is stored). */
  readonly buildUrl: string | null;
  readonly project: string | null;
  readonly branch: string | null;
  readonly status: VisualStatus;
  readonly summary: VisualSummary;
  readonly receivedAt: number | null;
  /** What the relay said beside the event (the diffs, its verdicts), never Sauce's word. */
  readonly notes: VisualNotes;
}

export interface JobsState {
  readonly kind: 'jobs';
  readonly jobs: readonly JobRecord[];
}
export interface VisualState {
  readonly kind: 'visual';
  readonly build: VisualRecord;
}
export type StoredState = JobsState | VisualState;

const MARK_OPEN = '<!-- sauce-labs-bridge:state';
const MARK_CLOSE = '-->';

const nullableString = z
  .string()
  .nullable()
  .optional()
  .transform((v) => v ?? null);
const nullableNumber = z
  .number()
  .nullable()
  .optional()
  .transform((v) => v ?? null);

const wireJob = z.object({
  i: z.string().min(1),
  f: z
    .enum(JOB_FAMILIES)
    .optional()
    .transform((v) => v ?? 'vdc'),
  s: z.enum(JOB_STATUSES),
  p: z
    .boolean()
    .nullable()
    .optional()
    .transform((v) => v ?? null),
  n: nullableString,
  b: nullableString,
  o: nullableString,
  dv: nullableString,
  d: nullableNumber,
  t: nullableNumber,
  r: nullableNumber,
  c: nullableNumber,
  a: z.literal(1).optional(),
  x: z
    .array(z.object({ f: z.string().min(1), b: z.number().int().nonnegative() }))
    .optional()
    .transform((v) => (v ?? []).map((t) => ({ field: t.f, bytes: t.b }))),
});

const count = z.number().int().nonnegative();
const wireVisual = z.object({
  id: z.string().min(1),
  bn: nullableString,
  u: nullableString,
  pr: nullableString,
  br: nullableString,
  s: z.enum(VISUAL_STATUSES),
  c: z.object({ errored: count, approved: count, equal: count, rejected: count, unapproved: count, queued: count }),
  r: nullableNumber,
  /** The relay's notes, in their envelope form (read leniently). */
  n: z.unknown().optional(),
});

const wireState = z.discriminatedUnion('kind', [
  z.object({ v: z.literal(1), kind: z.literal('jobs'), jobs: z.array(wireJob) }),
  z.object({ v: z.literal(1), kind: z.literal('visual'), build: wireVisual }),
]);

function jobToWire(j: JobRecord, minimal: boolean): Record<string, unknown> {
  const w: Record<string, unknown> = { i: j.id, f: j.family, s: j.status, p: j.passed, t: j.modifiedAt };
  if (!minimal) {
    if (j.name !== null) w['n'] = j.name;
    if (j.browser !== null) w['b'] = j.browser;
    if (j.os !== null) w['o'] = j.os;
    if (j.device !== null) w['dv'] = j.device;
    if (j.truncated.length > 0) w['x'] = j.truncated.map((t) => ({ f: t.field, b: t.bytes }));
  }
  if (j.durationSec !== null) w['d'] = j.durationSec;
  if (j.receivedAt !== null) w['r'] = j.receivedAt;
  if (j.checkRunId !== null) w['c'] = j.checkRunId;
  if (j.annotated) w['a'] = 1;
  return w;
}

/** Escape `-`, `<`, `>` inside JSON string literals so the text can sit in an HTML comment. */
function commentSafeJson(value: unknown): string {
  return JSON.stringify(value).replace(/"(?:[^"\\]|\\.)*"/g, (lit) => lit.replace(/-/g, '\\u002d').replace(/</g, '\\u003c').replace(/>/g, '\\u003e'));
}

export function encodeState(state: StoredState, maxBytes: number = CHECK_OUTPUT_MAX_BYTES): string {
  const wrap = (json: string): string => `${MARK_OPEN}\n${json}\n${MARK_CLOSE}`;
  if (state.kind === 'visual') {
    const b = state.build;
    const encode = (notes: VisualNotes): string => {
      const n = notesToWire(notes);
      return wrap(
        commentSafeJson({
          v: 1,
          kind: 'visual',
          build: {
            id: b.buildId,
            bn: b.buildName,
            u: b.buildUrl,
            pr: b.project,
            br: b.branch,
            s: b.status,
            c: b.summary,
            r: b.receivedAt,
            ...(n ? { n } : {}),
          },
        }),
      );
    };
    // The list of diffs is what can be long: as many as fit (escaping can make a name 6x larger).
    return encode(fitNotes(b.notes, (notes) => utf8Bytes(encode(notes)) <= maxBytes) ?? NO_NOTES);
  }
  const jobs = [...state.jobs].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const full = wrap(commentSafeJson({ v: 1, kind: 'jobs', jobs: jobs.map((j) => jobToWire(j, false)) }));
  if (utf8Bytes(full) <= maxBytes) return full;
  // Too many jobs for the full form: keep what the aggregate needs (names are lost from the table).
  const minimal = wrap(commentSafeJson({ v: 1, kind: 'jobs', jobs: jobs.map((j) => jobToWire(j, true)) }));
  if (utf8Bytes(minimal) <= maxBytes) return minimal;
  throw new RangeError(`${jobs.length} jobs do not fit the ${maxBytes}-byte state block of one check run`);
}

/** The state in a check run's `output.text`, or null when absent or unreadable. */
export function decodeState(text: string | null | undefined): StoredState | null {
  if (!text) return null;
  const start = text.lastIndexOf(MARK_OPEN);
  if (start < 0) return null;
  const end = text.indexOf(MARK_CLOSE, start + MARK_OPEN.length);
  if (end < 0) return null;
  let json: unknown;
  try {
    json = JSON.parse(text.slice(start + MARK_OPEN.length, end));
  } catch {
    return null;
  }
  const parsed = wireState.safeParse(json);
  if (!parsed.success) return null;
  const w = parsed.data;
  if (w.kind === 'visual') {
    const b = w.build;
    return {
      kind: 'visual',
      build: {
        buildId: b.id,
        buildName: b.bn,
        buildUrl: b.u,
        project: b.pr,
        branch: b.br,
        status: b.s,
        summary: b.c,
        receivedAt: b.r,
        notes: parseVisualNotes(b.n),
      },
    };
  }
  return {
    kind: 'jobs',
    jobs: w.jobs.map((j) => ({
      id: j.i,
      family: j.f,
      status: j.s,
      passed: j.p,
      name: j.n,
      browser: j.b,
      os: j.o,
      device: j.dv,
      durationSec: j.d,
      modifiedAt: j.t,
      receivedAt: j.r,
      checkRunId: j.c,
      annotated: j.a === 1,
      truncated: j.x,
    })),
  };
}

/** The fields that make a job's result; delivery metadata is not content. */
function jobContentEqual(a: JobRecord, b: JobRecord): boolean {
  return (
    a.status === b.status &&
    a.passed === b.passed &&
    a.modifiedAt === b.modifiedAt &&
    a.durationSec === b.durationSec &&
    a.name === b.name &&
    a.browser === b.browser &&
    a.os === b.os &&
    a.device === b.device
  );
}

/** Compare numbers where null (unknown) is below every number. */
function compareNullable(a: number | null, b: number | null): number {
  return (a ?? -Infinity) - (b ?? -Infinity) || 0;
}

/** Text order by UTF-16 code units (not locale), so every machine sorts alike. */
function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Every field of a job record but its id and bookkeeping, as one comparable text. */
function jobContentKey(j: JobRecord): string {
  return JSON.stringify([j.status, j.passed, j.durationSec, j.name, j.browser, j.os, j.device, j.family, j.truncated]);
}

/**
 * A total order on the records of one job: the greater one is the later state. Later
 * `modification_time` first, then the more final status, then the one with a duration, then the
 * later relay receive time (unknown is earliest), then, with nothing left to tell them apart, the
 * smaller content text. Records equal in this order differ at most in bookkeeping.
 */
export function compareJobs(a: JobRecord, b: JobRecord): number {
  return (
    compareNullable(a.modifiedAt, b.modifiedAt) ||
    jobFinality(a.status, a.passed) - jobFinality(b.status, b.passed) ||
    Number(a.durationSec !== null) - Number(b.durationSec !== null) ||
    compareNullable(a.receivedAt, b.receivedAt) ||
    compareText(jobContentKey(b), jobContentKey(a))
  );
}

/** Should `next` replace `current` for the same job? Only a later state with other content does. */
export function jobSupersedes(current: JobRecord, next: JobRecord): boolean {
  return !jobContentEqual(current, next) && compareJobs(next, current) > 0;
}

export interface JobsMerge {
  readonly jobs: readonly JobRecord[];
  /** Ids whose result changed compared with `base`. */
  readonly changed: readonly string[];
}

/** Merge `incoming` into `base`: one record per job id, the latest wins, bookkeeping is kept. */
export function mergeJobs(base: readonly JobRecord[], incoming: readonly JobRecord[]): JobsMerge {
  const byId = new Map<string, JobRecord>();
  for (const j of base) {
    const have = byId.get(j.id);
    byId.set(j.id, have ? combineJob(have, j) : j);
  }
  const changed = new Set<string>();
  for (const j of incoming) {
    const have = byId.get(j.id);
    const next = have ? combineJob(have, j) : j;
    if (!have || !jobContentEqual(have, next)) changed.add(j.id);
    byId.set(j.id, next);
  }
  const jobs = [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return { jobs, changed: [...changed].sort() };
}

/**
 * The later of two records of one job (`compareJobs`), with the bookkeeping of both: the newest
 * per-job check run id, annotated when either was. Commutative and associative, so the result
 * does not depend on the order records arrive in.
 */
function combineJob(a: JobRecord, b: JobRecord): JobRecord {
  const winner = compareJobs(b, a) > 0 ? b : a;
  const ids = [a.checkRunId, b.checkRunId].filter((id): id is number => id !== null);
  return {
    ...winner,
    checkRunId: ids.length > 0 ? Math.max(...ids) : null,
    annotated: a.annotated || b.annotated,
  };
}

/** True when `outer` already holds everything in `inner` (nothing of `inner` would change it). */
export function jobsContain(outer: readonly JobRecord[], inner: readonly JobRecord[]): boolean {
  return mergeJobs(outer, inner).changed.length === 0;
}

function visualContentEqual(a: VisualRecord, b: VisualRecord): boolean {
  return (
    a.buildId === b.buildId && a.status === b.status && JSON.stringify(a.summary) === JSON.stringify(b.summary) && notesText(a.notes) === notesText(b.notes)
  );
}

/**
 * Among final states with no receive time to order them: a reviewed build (APPROVED, REJECTED)
 * comes after a compared one (UNAPPROVED, EQUAL, EMPTY, ERRORED); RUNNING after QUEUED.
 */
const VISUAL_LIFECYCLE: Readonly<Record<VisualStatus, number>> = {
  QUEUED: 0,
  RUNNING: 1,
  EQUAL: 2,
  EMPTY: 2,
  UNAPPROVED: 2,
  ERRORED: 2,
  APPROVED: 3,
  REJECTED: 3,
};
/** Last resort between states of one lifecycle step: the worse one for the merge gate wins. */
const VISUAL_SEVERITY: Readonly<Record<VisualStatus, number>> = {
  QUEUED: 0,
  RUNNING: 1,
  EQUAL: 2,
  EMPTY: 3,
  APPROVED: 4,
  UNAPPROVED: 5,
  ERRORED: 6,
  REJECTED: 7,
};
const SUMMARY_FIELDS = ['errored', 'rejected', 'unapproved', 'queued', 'approved', 'equal'] as const;

/**
 * A total order on Visual records: the greater one is the state to show. A final state first
 * (QUEUED/RUNNING never replace it), then the later relay receive time (unknown is earliest), then
 * the later lifecycle step, the worse status, the larger counts, and every other field, so that
 * only identical records compare equal. Merging by it is commutative and associative.
 */
export function compareVisual(a: VisualRecord, b: VisualRecord): number {
  return (
    visualFinality(a.status) - visualFinality(b.status) ||
    compareNullable(a.receivedAt, b.receivedAt) ||
    VISUAL_LIFECYCLE[a.status] - VISUAL_LIFECYCLE[b.status] ||
    VISUAL_SEVERITY[a.status] - VISUAL_SEVERITY[b.status] ||
    SUMMARY_FIELDS.reduce((d, f) => d || a.summary[f] - b.summary[f], 0) ||
    compareText(
      JSON.stringify([a.buildId, a.buildName, a.buildUrl, a.project, a.branch, notesText(a.notes)]),
      JSON.stringify([b.buildId, b.buildName, b.buildUrl, b.project, b.branch, notesText(b.notes)]),
    )
  );
}

/** Should `next` replace `current`? Only a greater state with other content (status, counts, the relay's notes) does. */
export function visualSupersedes(current: VisualRecord, next: VisualRecord): boolean {
  return !visualContentEqual(current, next) && compareVisual(next, current) > 0;
}

/** The greatest of `base` and `incoming` (`compareVisual`); changed when its content differs from `base`. */
export function mergeVisual(base: VisualRecord | null, incoming: readonly VisualRecord[]): { build: VisualRecord | null; changed: boolean } {
  let cur = base;
  for (const v of incoming) {
    if (cur === null || compareVisual(v, cur) > 0) cur = v;
  }
  const changed = cur !== null && (base === null || !visualContentEqual(base, cur));
  return { build: cur, changed };
}

/**
 * Items (events) of one Visual status context grouped by build, oldest build first: a build is as
 * new as its latest receive time (unknown is oldest), ties in build id order. The engine writes
 * the builds in this order, so the context ends on the newest build whatever the arrival order.
 */
export function visualBuildsOldestFirst<T>(items: readonly T[], recordOf: (item: T) => VisualRecord): T[][] {
  const byBuild = new Map<string, T[]>();
  for (const item of items) {
    const id = recordOf(item).buildId;
    byBuild.set(id, [...(byBuild.get(id) ?? []), item]);
  }
  const latest = (group: readonly T[]): number | null =>
    group.reduce<number | null>((m, item) => {
      const t = recordOf(item).receivedAt;
      return t !== null && (m === null || t > m) ? t : m;
    }, null);
  return [...byBuild.entries()].sort(([ia, ga], [ib, gb]) => compareNullable(latest(ga), latest(gb)) || compareText(ia, ib)).map(([, group]) => group);
}
