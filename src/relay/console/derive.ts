/**
 * Pure: what the console shows of a delivery, derived from what was stored. A body is read with the
 * one parser the relay and the Action share (`parseSauceEvent`), and the commit with the Action's
 * own candidate list (`commitCandidates`), so the console never disagrees with either. No I/O.
 */
import { commitCandidates } from '../../sauce/commit.js';
import { parseSauceEvent, type SauceEvent } from '../../sauce/event.js';
import type { FilterCode, RejectReason } from '../metrics.js';
import type {
  CommitCandidate,
  DeliveryOutcome,
  DeliveryQuery,
  DeliverySummary,
  EventFacts,
  EventRow,
  OutcomeState,
  Position,
  RequestCode,
  RequestRecord,
} from './source.js';

/** A body's JSON, or undefined when it is not JSON. */
function parseJson(body: string): unknown {
  try {
    return JSON.parse(body) as unknown;
  } catch {
    return undefined;
  }
}

function eventOf(body: string): SauceEvent | null {
  const json = parseJson(body);
  if (json === undefined) return null;
  const parsed = parseSauceEvent(json);
  return parsed.ok ? parsed.event : null;
}

/** The commit candidates of an event, in the order the Action tries them (no `sha` input: the relay does not know it). */
function commitsOfEvent(event: SauceEvent): CommitCandidate[] {
  return commitCandidates(event, null).map((c) => ({ kind: c.kind, value: c.value, source: c.source }));
}

export function commitsOf(body: string): CommitCandidate[] {
  const event = eventOf(body);
  return event ? commitsOfEvent(event) : [];
}

export function factsOfEvent(event: SauceEvent): EventFacts {
  const commits = commitsOfEvent(event);
  const sha = commits.find((c) => c.kind === 'sha' || c.kind === 'short-sha');
  const common = { commit: commits[0] ?? null, shortSha: sha ? sha.value.slice(0, 7).toLowerCase() : null };
  if (event.kind === 'job') {
    return {
      kind: event.family,
      sauceId: event.id,
      name: event.name,
      build: event.build,
      status: event.status,
      passed: event.passed,
      branch: event.branchName ?? event.sauceTags.ref,
      ...common,
    };
  }
  return { kind: 'visual', sauceId: event.buildId, name: event.buildName, build: null, status: event.status, passed: null, branch: event.branch, ...common };
}

/** The Visual build a stored body is about; null for a job (or a body that is not an event). */
export function visualBuildOf(body: string): string | null {
  const event = eventOf(body);
  return event?.kind === 'visual' ? event.buildId : null;
}

/** The display fields of a stored body; null when it is not a Sauce event (a store holds only events, so: never, in practice). */
export function factsOf(body: string): EventFacts | null {
  const event = eventOf(body);
  return event ? factsOfEvent(event) : null;
}

/** The body pretty-printed with 2 spaces; null when it is not JSON. */
export function prettyBody(body: string): string | null {
  const json = parseJson(body);
  return json === undefined ? null : JSON.stringify(json, null, 2);
}

/** What happened to a stored event, from its row. */
export function eventOutcome(row: EventRow): DeliveryOutcome {
  if (row.state === 'dead') return { state: 'dead', attempts: row.attempts, reason: row.lastError ?? 'no reason recorded' };
  if (row.state === 'delivered') {
    const sent = row.lastAttempt?.result === 'sent' ? row.lastAttempt : null;
    return { state: 'dispatched', at: sent?.at ?? null, dispatchId: sent?.dispatchId ?? null, status: sent?.status ?? null, message: sent?.message ?? null };
  }
  if (row.attempts === 0) return { state: 'stored' };
  return { state: 'retrying', attempts: row.attempts, nextAttemptAt: row.nextAttemptAt, lastError: row.lastError };
}

/** Every filter code (the keys make the compiler check the list is complete). */
const FILTER_CODES: Record<FilterCode, true> = { filtered: true, bad_tag: true, not_allowed: true, no_route: true, stale: true };

function isFilterCode(code: RequestCode): code is FilterCode {
  return Object.hasOwn(FILTER_CODES, code);
}

/** Every reject reason (the keys make the compiler check the list is complete). */
const REJECT_CODES: Record<RejectReason, true> = {
  not_found: true,
  method: true,
  too_large: true,
  timeout: true,
  signature: true,
  not_json: true,
  invalid_event: true,
  store_unavailable: true,
  dispatch_failed: true,
  too_many_connections: true,
  buffer_full: true,
  metrics_token: true,
};

/** The request codes behind an outcome filter; null = every code (no filter, or not a request outcome: see `EVENT_OUTCOMES`). */
export function requestCodesOf(outcome: OutcomeState | null | undefined): RequestCode[] | null {
  if (outcome === 'duplicate') return ['duplicate'];
  if (outcome === 'filtered') return Object.keys(FILTER_CODES) as FilterCode[];
  if (outcome === 'refused') return Object.keys(REJECT_CODES) as RejectReason[];
  return null;
}

/** What a request that stored no event came to. */
export function requestOutcome(record: RequestRecord): DeliveryOutcome {
  if (record.code === 'duplicate') return { state: 'duplicate', of: record.duplicateOf };
  if (isFilterCode(record.code)) return { state: 'filtered', code: record.code, reason: record.reason };
  return { state: 'refused', code: record.code as RejectReason, status: record.status, reason: record.reason };
}

export function eventSummary(row: EventRow): DeliverySummary {
  return { type: 'event', id: row.id, receivedAt: row.receivedAt, route: row.route, repo: row.repo, event: factsOf(row.body), outcome: eventOutcome(row) };
}

export function requestSummary(record: RequestRecord): DeliverySummary {
  return {
    type: 'request',
    id: record.id,
    receivedAt: record.receivedAt,
    route: record.route,
    repo: record.repo,
    event: record.event,
    outcome: requestOutcome(record),
  };
}

/** Outcomes only stored events have (the store states behind each: `storeFilter` in deliveries.ts). */
export const EVENT_OUTCOMES: ReadonlySet<OutcomeState> = new Set(['stored', 'retrying', 'dispatched', 'dead']);

/** Whether a summary passes the query's filters (the cursor is not a filter: see `isOlder`). */
export function matchesQuery(item: DeliverySummary, query: DeliveryQuery): boolean {
  if (query.outcome && item.outcome.state !== query.outcome) return false;
  if (query.route && item.route !== query.route) return false;
  if (query.repo && item.repo?.toLowerCase() !== query.repo.toLowerCase()) return false;
  if (query.kind && item.event?.kind !== query.kind) return false;
  const text = query.text?.trim().toLowerCase();
  if (text) {
    const e = item.event;
    if (!e) return false;
    const fields = [e.name, e.build, e.sauceId];
    if (!fields.some((f) => f?.toLowerCase().includes(text))) return false;
  }
  return true;
}

/** Newest first: negative when `a` comes before (is newer than) `b`. */
export function compareNewestFirst(a: Position, b: Position): number {
  if (a.receivedAt !== b.receivedAt) return b.receivedAt - a.receivedAt;
  if (a.id === b.id) return 0;
  return a.id < b.id ? 1 : -1;
}

/** True when `a` comes strictly after `b` in the list (older). */
export function isOlder(a: Position, b: Position): boolean {
  return compareNewestFirst(a, b) > 0;
}

export function positionOf(item: { readonly receivedAt: number; readonly id: string }): Position {
  return { receivedAt: item.receivedAt, id: item.id };
}

/** An opaque cursor: base64url of `<receivedAt>.<id>`. */
export function encodeCursor(position: Position): string {
  return Buffer.from(`${position.receivedAt}.${position.id}`, 'utf8').toString('base64url');
}

const CURSOR_RE = /^(\d{1,16})\.([\x21-\x7e]{1,64})$/;

/** The position a cursor names; null when it is not one this module made. */
export function decodeCursor(cursor: string): Position | null {
  if (!/^[A-Za-z0-9_-]{1,120}$/.test(cursor)) return null;
  const m = CURSOR_RE.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!m) return null;
  const receivedAt = Number(m[1]);
  return Number.isSafeInteger(receivedAt) ? { receivedAt, id: m[2]! } : null;
}
