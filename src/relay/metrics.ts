/**
 * Prometheus metrics for the relay (served at GET /metrics). One registry per relay instance,
 * so tests and several relays in one process never share counters.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { RouteRefusal } from './http/route.js';
import type { StaleCode } from './http/stale.js';

export type RejectReason =
  | 'not_found'
  | 'method'
  | 'too_large'
  | 'timeout'
  | 'signature'
  | 'not_json'
  | 'invalid_event'
  | 'store_unavailable'
  | 'dispatch_failed'
  /** A request on a connection past `maxConnections` (503). */
  | 'too_many_connections'
  /** A body that did not fit in `maxBufferedBytes` (503). */
  | 'buffer_full'
  /** GET /metrics without the metrics token (401). */
  | 'metrics_token';

/** Why a valid event is answered 202 filtered (the `reason` label of sauce_relay_filtered_total). */
export type FilterCode = RouteRefusal | StaleCode;

/** Why a request stored no event: a reject reason, a filter code, or a duplicate body. */
export type RequestCode = RejectReason | FilterCode | 'duplicate';

export interface RelayMetrics {
  readonly registry: Registry;
  readonly received: Counter<'route'>;
  readonly rejected: Counter<'reason'>;
  readonly filtered: Counter<'route' | 'reason'>;
  readonly stored: Counter<'route'>;
  readonly duplicates: Counter<'route'>;
  readonly dispatched: Counter<'repo'>;
  readonly dispatchedEvents: Counter;
  readonly retries: Counter<'reason'>;
  readonly deadLettered: Counter<'reason'>;
  readonly queueDepth: Gauge;
  /** Seconds from the relay receiving an event to GitHub accepting its dispatch. */
  readonly dispatchLatency: Histogram;
  /** Visual refresh re-reads, by outcome (changed, unchanged, decided, not_found, expired, error). */
  readonly visualRefresh: Counter<'outcome'>;
  /** Refused requests the delivery console did not record: over its rate, or their write failed. */
  readonly consoleRequestsDropped: Counter;
}

export function createMetrics(options: { defaultMetrics?: boolean } = {}): RelayMetrics {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'sauce_relay_' });
  const registers = [registry];
  return {
    registry,
    received: new Counter({ name: 'sauce_relay_received_total', help: 'Webhook requests received', labelNames: ['route'], registers }),
    rejected: new Counter({ name: 'sauce_relay_rejected_total', help: 'Requests rejected, by reason', labelNames: ['reason'], registers }),
    filtered: new Counter({
      name: 'sauce_relay_filtered_total',
      help: 'Valid events not relayed, by code (stale, filtered, bad_tag, not_allowed, no_route)',
      labelNames: ['route', 'reason'],
      registers,
    }),
    stored: new Counter({ name: 'sauce_relay_stored_total', help: 'Events stored durably', labelNames: ['route'], registers }),
    duplicates: new Counter({
      name: 'sauce_relay_duplicates_total',
      help: 'Deliveries of a body already stored on the route',
      labelNames: ['route'],
      registers,
    }),
    dispatched: new Counter({ name: 'sauce_relay_dispatches_total', help: 'repository_dispatch calls GitHub accepted', labelNames: ['repo'], registers }),
    dispatchedEvents: new Counter({ name: 'sauce_relay_dispatched_events_total', help: 'Events delivered inside accepted dispatches', registers }),
    retries: new Counter({ name: 'sauce_relay_dispatch_retries_total', help: 'Dispatch attempts that will be retried', labelNames: ['reason'], registers }),
    deadLettered: new Counter({ name: 'sauce_relay_dead_lettered_total', help: 'Events given up on', labelNames: ['reason'], registers }),
    queueDepth: new Gauge({ name: 'sauce_relay_queue_depth', help: 'Events stored and not yet delivered', registers }),
    dispatchLatency: new Histogram({
      name: 'sauce_relay_dispatch_latency_seconds',
      help: 'From receipt to dispatch accepted by GitHub',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 2.5, 3, 5, 10, 30, 60, 300, 3600],
      registers,
    }),
    visualRefresh: new Counter({
      name: 'sauce_relay_visual_refresh_total',
      help: 'Visual builds re-read from the Sauce API, by outcome',
      labelNames: ['outcome'],
      registers,
    }),
    consoleRequestsDropped: new Counter({
      name: 'sauce_relay_console_requests_dropped_total',
      help: 'Refused requests the delivery console did not record (over its rate of 100 a second, or the write failed)',
      registers,
    }),
  };
}
