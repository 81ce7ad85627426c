/**
 * Pure: the outbox's rows as both stores read them (sqlite-store.ts, postgres-store.ts; snake_case
 * columns, times as epoch ms) and the store's records they become.
 */
import type { EventState, StoredEvent, VisualWatch } from './store.js';

/** An event row joined with its body (each store reads the body its own way). */
export interface EventRecordRow {
  id: string;
  route: string;
  repo: string;
  event_type: string;
  body: string;
  extra: string | null;
  body_hash: string;
  received_at: number;
  state: EventState;
  attempts: number;
  next_attempt_at: number;
  last_error: string | null;
  requeued_at: number | null;
}

export function toEvent(row: EventRecordRow): StoredEvent {
  const event: StoredEvent = {
    id: row.id,
    route: row.route,
    repo: row.repo,
    eventType: row.event_type,
    body: row.body,
    bodyHash: row.body_hash,
    receivedAt: row.received_at,
    state: row.state,
    attempts: row.attempts,
    nextAttemptAt: row.next_attempt_at,
    lastError: row.last_error,
    extra: row.extra,
  };
  return row.requeued_at === null ? event : { ...event, requeuedAt: row.requeued_at };
}

export interface WatchRow {
  route: string;
  build_id: string;
  repo: string;
  event_type: string;
  body: string;
  extra: string | null;
  data_center: string | null;
  first_seen_at: number;
  next_check_at: number;
  expires_at: number;
  checks: number;
  last_error: string | null;
}

export function toWatch(row: WatchRow): VisualWatch {
  return {
    route: row.route,
    buildId: row.build_id,
    repo: row.repo,
    eventType: row.event_type,
    body: row.body,
    extra: row.extra,
    dataCenter: row.data_center,
    firstSeenAt: row.first_seen_at,
    nextCheckAt: row.next_check_at,
    expiresAt: row.expires_at,
    checks: row.checks,
    lastError: row.last_error,
  };
}
