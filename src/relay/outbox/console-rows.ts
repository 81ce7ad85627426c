/**
 * Pure: the delivery console's rows as both stores keep them (sqlite-console.ts, postgres-console.ts)
 * and back. Text columns that hold JSON (a refused request's issues and event facts, a Visual
 * re-read's summary) are parsed defensively: a row that does not read is shown with less, never a
 * failed page.
 */
import type { EventRow, RequestCode, RequestRecord } from '../console/source.js';
import { keptMessage } from '../../github/answers.js';
import type { FieldIssue, VisualSummary } from '../../sauce/event.js';
import type { DispatchAttempt, VisualCheck, VisualCheckOutcome } from './store.js';
import type { EventRecordRow } from './store-rows.js';

function parsed<T>(text: string | null): T | null {
  if (text === null) return null;
  try {
    return JSON.parse(text) as T;
  } catch {
    return null;
  }
}

/** An attempt row, whatever the column names' case: both stores select these aliases. */
export interface AttemptRow {
  at: number;
  dispatch_id: string;
  events: number;
  status: number | null;
  message: string;
  result: DispatchAttempt['result'];
  code: DispatchAttempt['code'];
}

export function toAttempt(row: AttemptRow): DispatchAttempt {
  return { at: row.at, dispatchId: row.dispatch_id, events: row.events, status: row.status, message: row.message, result: row.result, code: row.code };
}

/** The attempt a mark records, cut to what the table keeps (the message as `keptMessage` keeps GitHub's). */
export function attemptColumns(a: DispatchAttempt): AttemptRow {
  return {
    at: a.at,
    dispatch_id: a.dispatchId.slice(0, 64),
    events: a.events,
    status: a.status,
    message: keptMessage(a.message),
    result: a.result,
    code: a.code,
  };
}

/** An event row as the console reads it: the store's row without the dedup hash. */
export type EventConsoleRow = Omit<EventRecordRow, 'body_hash'>;

export function toEventRow(row: EventConsoleRow, lastAttempt: DispatchAttempt | null): EventRow {
  return {
    id: row.id,
    route: row.route,
    repo: row.repo,
    eventType: row.event_type,
    body: row.body,
    extra: row.extra,
    receivedAt: row.received_at,
    state: row.state,
    attempts: row.attempts,
    nextAttemptAt: row.next_attempt_at,
    lastError: row.last_error,
    requeuedAt: row.requeued_at,
    lastAttempt,
  };
}

export interface CheckRow {
  at: number;
  outcome: VisualCheckOutcome;
  status: VisualCheck['status'];
  summary: string | null;
  error: string | null;
  event_id: string | null;
}

export function toCheck(row: CheckRow): VisualCheck {
  return { at: row.at, outcome: row.outcome, status: row.status, summary: parsed<VisualSummary>(row.summary), error: row.error, eventId: row.event_id };
}

export function checkColumns(c: VisualCheck): CheckRow {
  return {
    at: c.at,
    outcome: c.outcome,
    status: c.status,
    summary: c.summary === null ? null : JSON.stringify(c.summary),
    error: c.error === null ? null : c.error.slice(0, 500),
    event_id: c.eventId,
  };
}

export interface RequestRow {
  id: string;
  received_at: number;
  route: string | null;
  repo: string | null;
  status: number;
  code: RequestCode;
  reason: string;
  bytes: number;
  source: string | null;
  signature: string | null;
  issues: string;
  event: string | null;
  duplicate_of: string | null;
}

export function requestColumns(r: RequestRecord): RequestRow {
  return {
    id: r.id,
    received_at: r.receivedAt,
    route: r.route,
    repo: r.repo,
    status: r.status,
    code: r.code,
    reason: r.reason,
    bytes: r.bytes,
    source: r.source,
    signature: r.signature,
    issues: JSON.stringify(r.issues),
    event: r.event === null ? null : JSON.stringify(r.event),
    duplicate_of: r.duplicateOf,
  };
}

export function toRequest(row: RequestRow): RequestRecord {
  return {
    id: row.id,
    receivedAt: row.received_at,
    route: row.route,
    repo: row.repo,
    status: row.status,
    code: row.code,
    reason: row.reason,
    bytes: row.bytes,
    source: row.source,
    signature: row.signature,
    issues: parsed<FieldIssue[]>(row.issues) ?? [],
    event: parsed<RequestRecord['event']>(row.event),
    duplicateOf: row.duplicate_of,
  };
}
