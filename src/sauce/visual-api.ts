/**
 * Re-reading a Sauce Visual build from Sauce's GraphQL API, as pure functions.
 *
 * Why: Sauce sends the "Build completed" webhook once. When a reviewer later approves or rejects
 * the changes in the Sauce UI, no webhook is known to follow, so the PR would keep waiting. The
 * relay watches builds that still await review and re-reads them here (the shell is
 * src/relay/visual-refresh.ts); a changed status becomes a new Visual event for the Action.
 */
import { z } from 'zod';
import { VISUAL_STATUSES, type VisualStatus } from './schema.js';
import type { VisualSummary } from './event.js';
import { DEFAULT_REGION, type Region } from './urls.js';

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

const count = z.number().int().nonnegative();
const responseSchema = z.object({
  data: z
    .object({
      build: z
        .object({
          status: z.enum(VISUAL_STATUSES),
          errored: count,
          approved: count,
          equal: count,
          rejected: count,
          unapproved: count,
          queued: count,
        })
        .nullable(),
    })
    .nullable()
    .optional(),
  errors: z.array(z.object({ message: z.string() }).loose()).optional(),
});

/** Read the GraphQL answer to VISUAL_BUILD_QUERY. */
export function parseVisualBuildResponse(json: unknown): VisualBuildRead {
  const parsed = responseSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return { kind: 'invalid', reason: `${issue.path.join('.') || '(root)'}: ${issue.message}` };
  }
  const { data, errors } = parsed.data;
  if (errors && errors.length > 0) return { kind: 'invalid', reason: `GraphQL error: ${errors[0]!.message.slice(0, 200)}` };
  if (!data) return { kind: 'invalid', reason: 'no data in the answer' };
  if (data.build === null) return { kind: 'not_found' };
  const { status, ...summary } = data.build;
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
