/**
 * What the delivery console reads and acts through. Every type here is also the console's JSON API
 * (`/api/…`): the records are sent as they are, with times as epoch milliseconds.
 *
 * Two layers:
 * - `DeliverySource` is what the console calls (list, one delivery, the three actions, a change
 *   marker). `createDeliverySource` (deliveries.ts) builds one from a store's `console` part and
 *   its `requeue` (the CLI's `outbox retry` too); tests may give the console any other implementation.
 * - `ConsoleStore` is the part of a durable store that only the console uses, held as the store's
 *   `console` field (sqlite-console.ts, postgres-console.ts): its own rows, raw, filtered only by what SQL can
 *   filter (route, repository, state or code, position). The display fields (kind, name, Sauce
 *   status, commit) are derived from the stored body by the pure module derive.ts, never in SQL.
 *   Refused requests are recorded into the store by the `RequestRecorder` (requests.ts), in
 *   batches off the request path, so every relay on a shared database shows them all.
 *
 * Order: newest first by (`receivedAt` descending, then `id` descending, compared as strings of
 * UTF-16 code units, i.e. byte order for ASCII ids). A store must sort the same way (PostgreSQL:
 * `ORDER BY received_at DESC, id DESC` on a uuid, or on text `COLLATE "C"`), so one cursor walks
 * stored events and refused requests together.
 */
import type { CandidateKind } from '../../sauce/commit.js';
import type { FieldIssue, SauceFamily } from '../../sauce/event.js';
import type { JobStatus, VisualStatus } from '../../sauce/schema.js';
import type { FilterCode, RejectReason, RequestCode } from '../metrics.js';
import type { DispatchAttempt, EventState, VisualCheck, VisualCheckOutcome } from '../outbox/store.js';

// ---------------------------------------------------------------------------------------------
// Display fields, derived from a body by derive.ts

/** One way to find the commit, as the Action tries them (src/sauce/commit.ts `commitCandidates`), in order. */
export interface CommitCandidate {
  readonly kind: CandidateKind;
  /** A full SHA (lower case), a short SHA, a ref or branch name; for `pull`, the PR number. */
  readonly value: string;
  /** Where it was found: `commit_id`, `build_name`, `tag ci:ssha`, `branch_name`… */
  readonly source: string;
}

/** What the console shows of a Sauce event. */
export interface EventFacts {
  /** `vdc` virtual device job, `rdc` real device job, `visual` Visual build. */
  readonly kind: SauceFamily;
  /** The job id or the Visual build id. */
  readonly sauceId: string;
  /** The job name, or the Visual build name. */
  readonly name: string | null;
  /** A job's `build` (null for a Visual build, whose name is `name`). */
  readonly build: string | null;
  readonly status: JobStatus | VisualStatus;
  /** A job's pass/fail (null when it reported none, and for Visual builds). */
  readonly passed: boolean | null;
  readonly branch: string | null;
  /** The first commit candidate, the one the Action tries first; null when there is none. */
  readonly commit: CommitCandidate | null;
  /** The first 7 characters of the first full or short SHA among the candidates; null when none. */
  readonly shortSha: string | null;
}

// ---------------------------------------------------------------------------------------------
// Dispatch attempts and Visual refresh history: rows the stores keep (src/relay/outbox/store.ts)

export type { DispatchAttempt, VisualCheck, VisualCheckOutcome };

// ---------------------------------------------------------------------------------------------
// Refused requests (recorded by requests.ts into the store: metadata only, never a body or a whole signature)

export type { RequestCode };

export interface RequestRecord {
  /** `req-<process>-<n>`: never the id of a stored event. */
  readonly id: string;
  readonly receivedAt: number;
  /** The route the path named; null when none did (404). */
  readonly route: string | null;
  /** The target repository, when routing got that far (a duplicate's). */
  readonly repo: string | null;
  /** The HTTP status the relay answered. */
  readonly status: number;
  readonly code: RequestCode;
  /** For people: the reason the answer gave or logged. At most 500 characters. */
  readonly reason: string;
  /** Body bytes read (for `too_large`, as many as were read before refusing). */
  readonly bytes: number;
  /** The peer address (the proxy's forwarded one when the server trusts it); null when unknown. */
  readonly source: string | null;
  /** At most the first 8 characters of `saucelabs-sign`, then `…`; null when there was none. */
  readonly signature: string | null;
  /** `invalid_event`: the fields at fault (at most 20). */
  readonly issues: readonly FieldIssue[];
  /** When the body parsed as a Sauce event (filtered, stale, duplicate): what it was. */
  readonly event: EventFacts | null;
  /** `duplicate`: the stored event the body duplicates. */
  readonly duplicateOf: string | null;
}

// ---------------------------------------------------------------------------------------------
// The list and the detail

export type OutcomeState = 'stored' | 'retrying' | 'dispatched' | 'dead' | 'duplicate' | 'filtered' | 'refused';
export const OUTCOME_STATES = ['stored', 'retrying', 'dispatched', 'dead', 'duplicate', 'filtered', 'refused'] as const satisfies readonly OutcomeState[];

/** What happened to a delivery. */
export type DeliveryOutcome =
  /** Stored, waiting for its first dispatch. */
  | { readonly state: 'stored' }
  | { readonly state: 'retrying'; readonly attempts: number; readonly nextAttemptAt: number; readonly lastError: string | null }
  | {
      readonly state: 'dispatched';
      /** When GitHub accepted it; null when the store did not record it. */
      readonly at: number | null;
      readonly dispatchId: string | null;
      /** GitHub's answer to that dispatch (null when not recorded). */
      readonly status: number | null;
      readonly message: string | null;
    }
  | { readonly state: 'dead'; readonly attempts: number; readonly reason: string }
  | { readonly state: 'duplicate'; readonly of: string | null }
  | { readonly state: 'filtered'; readonly code: FilterCode; readonly reason: string }
  | { readonly state: 'refused'; readonly code: RejectReason; readonly status: number; readonly reason: string };

/** One row of the list: a stored event (`type: 'event'`) or a request that stored none (`type: 'request'`). */
export interface DeliverySummary {
  readonly type: 'event' | 'request';
  readonly id: string;
  readonly receivedAt: number;
  readonly route: string | null;
  readonly repo: string | null;
  /** Null for a request whose body was not (or not read as) a Sauce event. */
  readonly event: EventFacts | null;
  readonly outcome: DeliveryOutcome;
}

export interface EventDetail {
  readonly type: 'event';
  readonly summary: DeliverySummary;
  readonly eventType: string;
  /** The body exactly as received (the bytes the signature was checked over, as UTF-8). */
  readonly body: string;
  /** The body pretty-printed (2 spaces); null when it is not JSON. */
  readonly pretty: string | null;
  /** The relay's own facts stored beside the body (JSON object text), if any. */
  readonly extra: string | null;
  /** Every commit candidate, in the order the Action tries them; it takes the first that resolves. */
  readonly commits: readonly CommitCandidate[];
  /** Oldest first. */
  readonly attempts: readonly DispatchAttempt[];
  /** For a Visual build: its refresh re-reads, oldest first; null for jobs. */
  readonly visual: readonly VisualCheck[] | null;
  readonly requeuedAt: number | null;
}

export interface RequestDetail {
  readonly type: 'request';
  readonly summary: DeliverySummary;
  readonly request: RequestRecord;
}

export type DeliveryDetail = EventDetail | RequestDetail;

/** Filters of the list; each null (or absent) = any. */
export interface DeliveryQuery {
  readonly outcome?: OutcomeState | null;
  readonly route?: string | null;
  /** `owner/repo`, compared case-insensitively. */
  readonly repo?: string | null;
  readonly kind?: SauceFamily | null;
  /** Case-insensitive text in the job or build name (or the Sauce id). */
  readonly text?: string | null;
  /** From a previous page's `next`; null = the newest. */
  readonly cursor?: string | null;
  /** Items per page (1-200). */
  readonly limit: number;
}

export interface DeliveryPage {
  readonly items: readonly DeliverySummary[];
  /** The cursor of the next (older) page; null at the end. */
  readonly next: string | null;
  /** The change marker when the page was read (see `DeliverySource.marker`). */
  readonly marker: string;
}

/** What an action did. `count`: events requeued or sent again. */
export type ActionResult =
  | { readonly ok: true; readonly count: number }
  | {
      readonly ok: false;
      /**
       * - `not_found`: no stored event has that id (a refused request cannot be requeued)
       * - `not_dead`: requeue needs a dead event
       * - `not_delivered`: send-again needs a dispatched event
       */
      readonly code: 'not_found' | 'not_dead' | 'not_delivered';
      readonly message: string;
    };

/** The console's view of the relay's deliveries. */
export interface DeliverySource {
  list(query: DeliveryQuery): Promise<DeliveryPage>;
  get(id: string): Promise<DeliveryDetail | null>;
  /** Put a dead event back in the queue, due now. */
  requeue(id: string): Promise<ActionResult>;
  /** Requeue every dead event of a route (count 0 when there is none). */
  requeueRoute(route: string): Promise<ActionResult>;
  /** Put a dispatched event back in the queue, due now: the Action writes its results again. */
  resend(id: string): Promise<ActionResult>;
  /**
   * A cheap value that changes whenever the list would (an event stored or changing state, a request
   * recorded): the page polls it and re-reads only when it moved. Opaque.
   */
  marker(): Promise<string>;
}

// ---------------------------------------------------------------------------------------------
// What a store implements (sqlite-console.ts, postgres-console.ts)

/** A list position: (receivedAt, id) of the last item seen. Items strictly older come next. */
export interface Position {
  readonly receivedAt: number;
  readonly id: string;
}

/** A stored event as the console needs it: the store's row, raw. */
export interface EventRow {
  readonly id: string;
  readonly route: string;
  readonly repo: string;
  readonly eventType: string;
  readonly body: string;
  readonly extra: string | null;
  readonly receivedAt: number;
  readonly state: EventState;
  /** Dispatch attempts counted by the store (failed ones). */
  readonly attempts: number;
  readonly nextAttemptAt: number;
  readonly lastError: string | null;
  readonly requeuedAt: number | null;
  /** The latest dispatch attempt, if the store recorded any: the list shows its answer. */
  readonly lastAttempt: DispatchAttempt | null;
}

export interface EventRowDetail extends EventRow {
  /** Oldest first (the latest MAX_ATTEMPTS_KEPT). */
  readonly attemptHistory: readonly DispatchAttempt[];
}

export interface EventRowQuery {
  /** Rows strictly after this position (older); null = from the newest. */
  readonly after: Position | null;
  readonly limit: number;
  readonly route: string | null;
  /** Compared case-insensitively. */
  readonly repo: string | null;
  /** Null = every state. */
  readonly states: readonly EventState[] | null;
  /** With `states` ['pending']: only rows with no attempt yet (true) or with some (false); null = both. */
  readonly attempted: boolean | null;
}

export interface RequestRowQuery {
  /** Records strictly after this position (older); null = from the newest. */
  readonly after: Position | null;
  readonly limit: number;
  readonly route: string | null;
  /** Compared case-insensitively. */
  readonly repo: string | null;
  /** Null = every code. */
  readonly codes: readonly RequestCode[] | null;
  /** Only records received at or after this (epoch ms): older ones are past their age, pruned or not yet. */
  readonly since: number;
}

/** How long and how many refused requests a store keeps (`recordRequests` prunes to it). */
export interface RequestRetention {
  readonly now: number;
  /** Records received before `now - maxAgeMs` go. */
  readonly maxAgeMs: number;
  /** Only the latest `maxCount` records stay. */
  readonly maxCount: number;
}

export interface ConsoleStore {
  /** Rows matching the query, newest first (see the order above). */
  listEvents(query: EventRowQuery): Promise<EventRow[]>;
  getEvent(id: string): Promise<EventRowDetail | null>;
  /** A Visual build's re-reads on a route, oldest first: the latest `limit`. */
  listVisualChecks(route: string, buildId: string, limit: number): Promise<VisualCheck[]>;
  /** Every dead event of the route back in the queue, due `now`; how many. */
  requeueDead(route: string, now: number): Promise<number>;
  /** A delivered event back in the queue, due `now` (attempts from 0). False when no delivered event has that id. */
  resend(id: string, now: number): Promise<boolean>;
  /** Keep these refused requests (one transaction), then prune to `retention`. */
  recordRequests(records: readonly RequestRecord[], retention: RequestRetention): Promise<void>;
  /** Refused requests matching the query, newest first (the same order as events). */
  listRequests(query: RequestRowQuery): Promise<RequestRecord[]>;
  getRequest(id: string): Promise<RequestRecord | null>;
  /**
   * Changes whenever an event is added, changes state or is deleted, an attempt or a Visual
   * re-read is recorded, or a refused request is. Opaque, cheap (no scan of the events).
   */
  changeMarker(): Promise<string>;
}

/** A store that keeps the console's data: its `console` part, beside its own `requeue`. */
export interface StoreWithConsole {
  readonly console: ConsoleStore;
  /** A dead event back in the queue, due `now`. False when no dead event has that id. */
  requeue(id: string, now: number): Promise<boolean>;
}
