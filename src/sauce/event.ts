/**
 * The one typed event the rest of the code uses. Both the relay and the Action parse
 * Sauce payloads here, once, and never look at wire field names again.
 */
import type { z } from 'zod';
import { jobEventSchema, visualEventSchema, type JobFamily, type JobStatus, type VisualStatus } from './schema.js';
import { parseSauceTags, type SauceTags } from './tags.js';
import { isRecord } from './json.js';

export interface JobEvent {
  readonly kind: 'job';
  readonly family: JobFamily;
  readonly id: string;
  readonly status: JobStatus;
  /** `null` when the test reported no pass/fail. */
  readonly passed: boolean | null;
  readonly name: string | null;
  readonly browserName: string | null;
  readonly browserVersion: string | null;
  readonly osName: string | null;
  readonly osVersion: string | null;
  readonly device: string | null;
  readonly durationSec: number | null;
  readonly error: string | null;
  readonly exception: string | null;
  readonly commitId: string | null;
  readonly branchName: string | null;
  readonly build: string | null;
  readonly tags: readonly string[];
  readonly sauceTags: SauceTags;
  readonly owner: string | null;
  readonly orgId: string | null;
  readonly teamId: string | null;
  /** Epoch milliseconds of `modification_time`, or null when absent or unparseable. */
  readonly modifiedAt: number | null;
}

export interface VisualSummary {
  readonly errored: number;
  readonly approved: number;
  readonly equal: number;
  readonly rejected: number;
  readonly unapproved: number;
  readonly queued: number;
}

export interface VisualEvent {
  readonly kind: 'visual';
  readonly buildId: string;
  readonly buildName: string | null;
  readonly buildUrl: string | null;
  readonly status: VisualStatus;
  readonly branch: string | null;
  readonly project: string | null;
  readonly summary: VisualSummary;
  readonly dataCenter: string | null;
  readonly orgId: string | null;
  readonly userId: string | null;
  readonly teamIds: readonly string[];
}

export type SauceEvent = JobEvent | VisualEvent;
export type SauceFamily = JobFamily | 'visual';

export function familyOf(event: SauceEvent): SauceFamily {
  return event.kind === 'job' ? event.family : 'visual';
}

export interface FieldIssue {
  /** Dotted path of the field at fault, e.g. `status` or `summary.unapproved`. */
  readonly field: string;
  readonly message: string;
}

export type ParseResult = { readonly ok: true; readonly event: SauceEvent } | { readonly ok: false; readonly issues: readonly FieldIssue[] };

function toIssues(error: z.ZodError): FieldIssue[] {
  return error.issues.map((issue) => ({
    field: issue.path.length > 0 ? issue.path.map(String).join('.') : '(root)',
    message: issue.message,
  }));
}

/** `YYYY-MM-DDTHH:mm:ssZ` (and any other ISO form Date accepts) to epoch ms. */
export function parseSauceTime(text: string | null): number | null {
  if (text === null) return null;
  const ms = Date.parse(text);
  return Number.isFinite(ms) ? ms : null;
}

/**
 * Decide the family from the shape: Visual builds carry `build_id` and a `summary` object,
 * job events carry `data_type`. Anything else is not a Sauce event.
 */
export function parseSauceEvent(input: unknown): ParseResult {
  if (!isRecord(input)) {
    return { ok: false, issues: [{ field: '(root)', message: 'expected a JSON object' }] };
  }
  if ('build_id' in input || 'summary' in input) {
    const parsed = visualEventSchema.safeParse(input);
    if (!parsed.success) return { ok: false, issues: toIssues(parsed.error) };
    const v = parsed.data;
    return {
      ok: true,
      event: {
        kind: 'visual',
        buildId: v.build_id,
        buildName: v.build_name,
        buildUrl: v.build_url,
        status: v.status,
        branch: v.branch,
        project: v.project,
        summary: {
          errored: v.summary.errored,
          approved: v.summary.approved,
          equal: v.summary.equal,
          rejected: v.summary.rejected,
          unapproved: v.summary.unapproved,
          queued: v.summary.queued,
        },
        dataCenter: v.data_center,
        orgId: v.org_id,
        userId: v.user_id,
        teamIds: v.team_ids,
      },
    };
  }
  if (!('data_type' in input) && !('id' in input && 'status' in input)) {
    return {
      ok: false,
      issues: [
        {
          field: '(root)',
          message: 'not a Sauce Labs event: expected a job event (data_type vdc|rdc) or a Visual build (build_id, summary)',
        },
      ],
    };
  }
  const parsed = jobEventSchema.safeParse(input);
  if (!parsed.success) return { ok: false, issues: toIssues(parsed.error) };
  const j = parsed.data;
  return {
    ok: true,
    event: {
      kind: 'job',
      family: j.data_type,
      id: j.id,
      status: j.status,
      passed: j.passed,
      name: j.name,
      browserName: j.browser_name,
      browserVersion: j.browser_version,
      osName: j.os_name,
      osVersion: j.os_version,
      device: j.device,
      durationSec: j.duration_sec,
      error: j.error,
      exception: j.exception,
      commitId: j.commit_id,
      branchName: j.branch_name,
      build: j.build,
      tags: j.tags,
      sauceTags: parseSauceTags(j.tags),
      owner: j.owner,
      orgId: j.org_id,
      teamId: j.team_id,
      modifiedAt: parseSauceTime(j.modification_time),
    },
  };
}

/** One line naming each field at fault, for logs, 422 bodies and Action errors. */
export function describeIssues(issues: readonly FieldIssue[]): string {
  return issues.map((i) => `${i.field}: ${i.message}`).join('; ');
}
