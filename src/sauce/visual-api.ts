/**
 * Re-reading a Sauce Visual build from Sauce's GraphQL API, as pure functions.
 *
 * Why: Sauce sends the "Build completed" webhook once. When a reviewer later approves or rejects
 * the changes in the Sauce UI, no webhook is known to follow, so the PR would keep waiting. The
 * relay watches builds that still await review and re-reads them here (the shell is
 * src/relay/visual-refresh.ts); a changed status becomes a new Visual event for the Action.
 */
import { z } from 'zod';
import { truncateChars } from '../github/limits.js';
import { VISUAL_STATUSES, type VisualStatus } from './schema.js';
import type { VisualSummary } from './event.js';
import { DEFAULT_REGION, type Region } from './urls.js';
import {
  DIFF_TEXT_MAX_CHARS,
  LISTED_DIFF_STATUSES,
  MAX_LISTED_DIFFS,
  SNAPSHOT_NAME_MAX_CHARS,
  type ListedDiffStatus,
  type VisualDiff,
  type VisualDiffList,
} from './visual-notes.js';

/** The build's status and the diff counts the webhook's `summary` carries, in one request. */
export const VISUAL_BUILD_QUERY = `query relayBuildStatus($id: UUID!) {
  build(id: $id) {
    status
    errored: diffCountExtended(input: { status: ERRORED })
    approved: diffCountExtended(input: { status: APPROVED })
    equal: diffCountExtended(input: { status: EQUAL })
    rejected: diffCountExtended(input: { status: REJECTED })
    unapproved: diffCountExtended(input: { status: UNAPPROVED })
    queued: diffCountExtended(input: { status: QUEUED })
  }
}`;

/** Statuses a reviewer or Sauce can still change: the relay keeps re-reading these builds. */
const OPEN_STATUSES: ReadonlySet<VisualStatus> = new Set<VisualStatus>(['QUEUED', 'RUNNING', 'UNAPPROVED']);

export function visualStatusIsOpen(status: VisualStatus): boolean {
  return OPEN_STATUSES.has(status);
}

/** Still comparing: the only statuses a build can be stuck in, and that never replace a final one. */
export function visualStatusIsUnfinished(status: VisualStatus | null): boolean {
  return status === 'QUEUED' || status === 'RUNNING';
}

/** A data center name that can safely become part of a Sauce hostname (e.g. `eu-central-1`). */
const DATA_CENTER = /^[a-z]{2}-[a-z]+-\d{1,2}$/;

/**
 * The Sauce REST API origin for a build: from its `data_center` when that is a well-formed region
 * name, else from the route's region. The result is always `https://api.<region>.saucelabs.com`,
 * so a payload can never send our Sauce credentials to another host.
 */
export function visualApiOrigin(dataCenter: string | null, fallback: Region = DEFAULT_REGION): string {
  const region = dataCenter !== null && DATA_CENTER.test(dataCenter) ? dataCenter : fallback;
  return `https://api.${region}.saucelabs.com`;
}

export interface VisualBuildState {
  readonly status: VisualStatus;
  readonly summary: VisualSummary;
}

export type VisualBuildRead =
  | { readonly kind: 'found'; readonly build: VisualBuildState }
  /** The API answered and has no such build (deleted, or another account's). */
  | { readonly kind: 'not_found' }
  /** The answer did not have the expected shape, or carried GraphQL errors. */
  | { readonly kind: 'invalid'; readonly reason: string };

/** A GraphQL answer whose `data.build` is the one build asked for (both queries here ask for one). */
function buildAnswerSchema<B extends z.ZodType>(build: B) {
  return z.object({
    data: z.object({ build: build.nullable() }).nullable().optional(),
    errors: z.array(z.object({ message: z.string() }).loose()).optional(),
  });
}

type BuildAnswer<B> = { readonly kind: 'build'; readonly build: B } | { readonly kind: 'not_found' } | { readonly kind: 'invalid'; readonly reason: string };

/** Pure: the build in a GraphQL answer, or why there is none (its shape, GraphQL errors, no data, no such build). */
function readBuildAnswer<B>(schema: z.ZodType<{ data?: { build: B | null } | null; errors?: { message: string }[] }>, json: unknown): BuildAnswer<B> {
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return { kind: 'invalid', reason: `${issue.path.join('.') || '(root)'}: ${issue.message}` };
  }
  const { data, errors } = parsed.data;
  if (errors && errors.length > 0) return { kind: 'invalid', reason: `GraphQL error: ${errors[0]!.message.slice(0, 200)}` };
  if (!data) return { kind: 'invalid', reason: 'no data in the answer' };
  if (data.build === null) return { kind: 'not_found' };
  return { kind: 'build', build: data.build };
}

const count = z.number().int().nonnegative();
const responseSchema = buildAnswerSchema(
  z.object({
    status: z.enum(VISUAL_STATUSES),
    errored: count,
    approved: count,
    equal: count,
    rejected: count,
    unapproved: count,
    queued: count,
  }),
);

/** Read the GraphQL answer to VISUAL_BUILD_QUERY. */
export function parseVisualBuildResponse(json: unknown): VisualBuildRead {
  const answer = readBuildAnswer(responseSchema, json);
  if (answer.kind !== 'build') return answer;
  const { status, ...summary } = answer.build;
  return { kind: 'found', build: { status, summary } };
}

const SUMMARY_KEYS = ['errored', 'approved', 'equal', 'rejected', 'unapproved', 'queued'] as const;

/**
 * The Visual event body as it would read now: the last body with `status` and `summary` taken from
 * the API, every other field (and unknown fields) kept as they were. `changed` is false when the
 * API reports what the body already says, so nothing new needs to reach GitHub.
 */
export function applyVisualBuild(lastBody: string, build: VisualBuildState): { readonly body: string; readonly changed: boolean } {
  const event = JSON.parse(lastBody) as Record<string, unknown>;
  const oldSummary = (typeof event.summary === 'object' && event.summary !== null ? event.summary : {}) as Record<string, unknown>;
  const changed = event.status !== build.status || SUMMARY_KEYS.some((k) => oldSummary[k] !== build.summary[k]);
  if (!changed) return { body: lastBody, changed: false };
  const summary: Record<string, unknown> = { ...oldSummary };
  for (const k of SUMMARY_KEYS) summary[k] = build.summary[k];
  return { body: JSON.stringify({ ...event, status: build.status, summary }), changed: true };
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/**
 * How long to wait before re-reading a build that is `ageMs` old (since the relay first saw it):
 * the base interval during the first hour, when most reviews happen; then 5× for the first day;
 * then 15×. At the 60 s default: every minute, then every 5 minutes, then every 15.
 */
export function visualRefreshDelayMs(ageMs: number, baseMs: number): number {
  if (ageMs < HOUR) return baseMs;
  if (ageMs < 24 * HOUR) return 5 * baseMs;
  return 15 * baseMs;
}

// ---------------------------------------------------------------------------------------------
// The diffs of a build: which snapshots changed, for the check run

/**
 * Build statuses whose check run lists the diffs: a reviewer has something to look at (changes
 * to review, rejected ones, errored snapshots). QUEUED and RUNNING are still comparing; APPROVED,
 * EQUAL and EMPTY leave nothing to do.
 */
const LISTED_BUILD_STATUSES: ReadonlySet<VisualStatus> = new Set<VisualStatus>(['UNAPPROVED', 'REJECTED', 'ERRORED']);

export function visualStatusListsDiffs(status: VisualStatus): boolean {
  return LISTED_BUILD_STATUSES.has(status);
}

/** The summary count of each listed diff status. */
const SUMMARY_KEY: Readonly<Record<ListedDiffStatus, keyof VisualSummary>> = {
  UNAPPROVED: 'unapproved',
  REJECTED: 'rejected',
  ERRORED: 'errored',
  QUEUED: 'queued',
  APPROVED: 'approved',
};

export interface DiffReadLimits {
  /** Diffs asked for per status and request (`first`). */
  readonly pageSize: number;
  /** Diffs listed at most (MAX_LISTED_DIFFS). */
  readonly maxItems: number;
  /** GraphQL requests per read of the diffs, pages included. */
  readonly maxRequests: number;
}

/**
 * 50 per status and page, 100 listed, 3 requests: the first request reads every status Sauce
 * counted; the two others only continue what is still short of 100 (e.g. 120 unapproved diffs).
 */
export const DIFF_READ_LIMITS: DiffReadLimits = { pageSize: 50, maxItems: MAX_LISTED_DIFFS, maxRequests: 3 };

/** One page to ask for: a status, and the cursor after which to continue (null: from the start). */
export interface DiffPageRequest {
  readonly status: ListedDiffStatus;
  readonly after: string | null;
}

const DIFF_NODE_FIELDS =
  'id status snapshot { name testName suiteName browser browserVersion device operatingSystem operatingSystemVersion viewportWidth viewportHeight error }';

const aliasOf = (status: ListedDiffStatus): string => status.toLowerCase();

/**
 * One GraphQL request for some pages of a build's diffs: one `diffs` connection per status
 * (`condition: { status }`, as Sauce's SDK does), `first` diffs after the status's cursor, with
 * `totalCount` and `pageInfo` to continue.
 */
export function visualDiffsRequest(
  buildId: string,
  pages: readonly DiffPageRequest[],
  pageSize: number,
): { readonly query: string; readonly variables: Record<string, unknown> } {
  const variables: Record<string, unknown> = { id: buildId, first: pageSize };
  const params = ['$id: UUID!', '$first: Int!'];
  const fields: string[] = [];
  for (const p of pages) {
    const alias = aliasOf(p.status);
    params.push(`$${alias}After: Cursor`);
    variables[`${alias}After`] = p.after;
    fields.push(
      `    ${alias}: diffs(first: $first, after: $${alias}After, condition: { status: ${p.status} }) {\n` +
        `      totalCount pageInfo { hasNextPage endCursor } nodes { ${DIFF_NODE_FIELDS} }\n    }`,
    );
  }
  return { query: `query relayBuildDiffs(${params.join(', ')}) {\n  build(id: $id) {\n${fields.join('\n')}\n  }\n}`, variables };
}

export interface DiffPage {
  readonly status: ListedDiffStatus;
  readonly totalCount: number;
  /** The cursor to continue after; null when this was the last page. */
  readonly next: string | null;
  readonly items: readonly VisualDiff[];
  /** Nodes that did not have the expected shape (left out of the list). */
  readonly unreadable: number;
}

export type DiffPagesRead =
  | { readonly kind: 'found'; readonly pages: readonly DiffPage[] }
  | { readonly kind: 'not_found' }
  | { readonly kind: 'invalid'; readonly reason: string };

const text = z.string().nullish();
const size = z.number().int().nullish();
const nodeSchema = z.object({
  id: z.string().min(1).max(100),
  status: z.enum(LISTED_DIFF_STATUSES),
  snapshot: z
    .object({
      name: z.string(),
      testName: text,
      suiteName: text,
      browser: text,
      browserVersion: text,
      device: text,
      operatingSystem: text,
      operatingSystemVersion: text,
      viewportWidth: size,
      viewportHeight: size,
      error: z.unknown().optional(),
    })
    .nullable(),
});
const connectionSchema = z.object({
  totalCount: z.number().int().nonnegative(),
  pageInfo: z.object({ hasNextPage: z.boolean(), endCursor: z.string().nullish() }),
  nodes: z.array(z.unknown()),
});
const diffsResponseSchema = buildAnswerSchema(z.record(z.string(), z.unknown()));

const cut = (value: string | null | undefined, max: number): string | null => (value ? truncateChars(value, max) : null);
const joined = (a: string | null | undefined, b: string | null | undefined): string | null =>
  cut([a, b].filter((x) => x).join(' ') || null, DIFF_TEXT_MAX_CHARS);

/**
 * Why Sauce calls a snapshot invalid: its `error.code` (TRUNCATED, IMAGE_TOO_LARGE, INVALID...),
 * `ERROR` for another error shape; null when valid or when only a DOM warning (`dom_code`) is set.
 */
export function snapshotInvalid(error: unknown): string | null {
  if (error === null || error === undefined) return null;
  if (typeof error === 'object' && !Array.isArray(error)) {
    const { code, dom_code: domCode } = error as Record<string, unknown>;
    if (typeof code === 'string' && code !== '') return cut(code, DIFF_TEXT_MAX_CHARS);
    if (code === undefined && domCode !== undefined) return null;
  }
  return 'ERROR';
}

/** A diff node as the list keeps it: labels joined, every text cut to its limit. */
function toVisualDiff(node: z.output<typeof nodeSchema>): VisualDiff {
  const s = node.snapshot;
  const browser = s?.browser && s.browser !== 'NONE' ? s.browser : null;
  return {
    id: node.id,
    status: node.status,
    snapshot: cut(s?.name, SNAPSHOT_NAME_MAX_CHARS),
    test: cut(s?.testName, DIFF_TEXT_MAX_CHARS),
    suite: cut(s?.suiteName, DIFF_TEXT_MAX_CHARS),
    browser: browser ? joined(browser, s?.browserVersion) : null,
    device: cut(s?.device, DIFF_TEXT_MAX_CHARS),
    os: s?.operatingSystem && s.operatingSystem !== 'UNKNOWN' ? joined(s.operatingSystem, s.operatingSystemVersion) : null,
    viewport: s?.viewportWidth && s.viewportHeight ? `${s.viewportWidth}x${s.viewportHeight}` : null,
    invalid: s ? snapshotInvalid(s.error) : null,
  };
}

/** Read the answer to `visualDiffsRequest(…, pages, …)`: one page per status asked for. */
export function parseVisualDiffsResponse(json: unknown, asked: readonly ListedDiffStatus[]): DiffPagesRead {
  const answer = readBuildAnswer(diffsResponseSchema, json);
  if (answer.kind !== 'build') return answer;
  const pages: DiffPage[] = [];
  for (const status of asked) {
    const connection = connectionSchema.safeParse(answer.build[aliasOf(status)]);
    if (!connection.success) {
      const issue = connection.error.issues[0]!;
      return { kind: 'invalid', reason: `data.build.${[aliasOf(status), ...issue.path].join('.')}: ${issue.message}` };
    }
    const c = connection.data;
    const items: VisualDiff[] = [];
    let unreadable = 0;
    for (const raw of c.nodes) {
      const node = nodeSchema.safeParse(raw);
      if (node.success) items.push(toVisualDiff(node.data));
      else unreadable += 1;
    }
    const next = c.pageInfo.hasNextPage && c.pageInfo.endCursor ? c.pageInfo.endCursor : null;
    pages.push({ status, totalCount: c.totalCount, next, items, unreadable });
  }
  return { kind: 'found', pages };
}

interface StatusProgress {
  readonly items: readonly VisualDiff[];
  readonly total: number;
  /** The cursor to continue after; `start` before the first page; null when read to the end. */
  readonly next: string | null | 'start';
}

/** A read of the diffs in progress (pure): what was read per status, and how many requests it took. */
export interface DiffReadState {
  readonly progress: ReadonlyMap<ListedDiffStatus, StatusProgress>;
  readonly requests: number;
}

/** Start reading the diffs of every listed status the build's summary counts. */
export function startDiffRead(summary: VisualSummary): DiffReadState {
  const progress = new Map<ListedDiffStatus, StatusProgress>();
  for (const s of LISTED_DIFF_STATUSES) if (summary[SUMMARY_KEY[s]] > 0) progress.set(s, { items: [], total: summary[SUMMARY_KEY[s]], next: 'start' });
  return { progress, requests: 0 };
}

/**
 * The pages to ask for next, or null when done: every status still short of its end, as long as
 * the statuses before it in review order (and it) hold fewer than `maxItems`, within `maxRequests`.
 */
export function nextDiffPages(state: DiffReadState, limits: DiffReadLimits = DIFF_READ_LIMITS): DiffPageRequest[] | null {
  if (state.requests >= limits.maxRequests) return null;
  const pages: DiffPageRequest[] = [];
  let before = 0;
  for (const s of LISTED_DIFF_STATUSES) {
    const p = state.progress.get(s);
    if (!p) continue;
    const upTo = before + p.items.length;
    if (upTo >= limits.maxItems) break;
    if (p.next !== null) pages.push({ status: s, after: p.next === 'start' ? null : p.next });
    before = upTo;
  }
  return pages.length > 0 ? pages : null;
}

/** The state after one answered request. */
export function addDiffPages(state: DiffReadState, pages: readonly DiffPage[]): DiffReadState {
  const progress = new Map(state.progress);
  for (const page of pages) {
    const p = progress.get(page.status) ?? { items: [], total: 0, next: 'start' };
    // A page that brings nothing new ends the status, whatever pageInfo says (no endless loop).
    const next = page.items.length === 0 && page.unreadable === 0 ? null : page.next;
    progress.set(page.status, { items: [...p.items, ...page.items], total: page.totalCount, next });
  }
  return { progress, requests: state.requests + 1 };
}

/** The list read: in review order, each diff once, at most `maxItems`; the totals as Sauce counted them. */
export function finishDiffRead(state: DiffReadState, readAt: number, limits: DiffReadLimits = DIFF_READ_LIMITS): VisualDiffList {
  const seen = new Set<string>();
  const items: VisualDiff[] = [];
  const totals: Partial<Record<ListedDiffStatus, number>> = {};
  for (const s of LISTED_DIFF_STATUSES) {
    const p = state.progress.get(s);
    if (!p) continue;
    totals[s] = p.total;
    for (const d of p.items) {
      if (items.length === limits.maxItems) break;
      if (seen.has(d.id)) continue;
      seen.add(d.id);
      items.push(d);
    }
  }
  return { readAt, totals, items };
}
