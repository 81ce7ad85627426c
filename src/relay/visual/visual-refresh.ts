/**
 * Visual refresh: the relay re-reads Visual builds that await review from Sauce's API and turns a
 * change (a reviewer approved or rejected, or the diffs finished computing) into a new Visual event,
 * stored and dispatched like a webhook. Without it a PR would wait on "changes await review" until
 * someone re-ran something, because Sauce sends the build webhook once.
 *
 * - On by Sauce credentials (`SAUCE_USERNAME`, `SAUCE_ACCESS_KEY`); needs the relay's own store.
 * - A stored Visual webhook whose status is still open (QUEUED, RUNNING, UNAPPROVED) starts a watch,
 *   due at once: the first read happens as soon as the webhook is stored. A decided webhook ends
 *   the watch, except REJECTED or ERRORED with diffs to list: those are read once, for the list.
 * - Each due watch is claimed with a lease (several relays on one database never re-read a build
 *   twice at once), read with one GraphQL request, and rescheduled: every interval for the first
 *   hour, then less often, until the build is decided, gone, or the watch expires (default 3 days).
 * - When the build changed, or no list was sent yet, and its status is one whose check run lists
 *   diffs (UNAPPROVED, REJECTED, ERRORED), the diffs that are not EQUAL are read too: one more
 *   request, paginated and bounded (DIFF_READ_LIMITS: 100 diffs, 3 requests). A failed read of the
 *   diffs only leaves the list out.
 * - The new event is the last body with `status` and `summary` from the API; the list and the
 *   relay's verdicts go beside it, in the event's `extra` (src/sauce/visual-notes.ts), sized so the
 *   entry fits one dispatch. Its receive time is now, so the Action's "later receipt wins" takes it
 *   over the webhook.
 * - A build still QUEUED or RUNNING `stuckAfterMs` after its first webhook gets the relay's "stuck"
 *   verdict (GitHub: error); a watch that expires on an open build leaves a last word.
 * - Credentials go only to `https://api.<data center>.saucelabs.com` (or `SAUCE_API_URL`, set by
 *   the operator), never to a host a payload names; they are never logged.
 */
import { createHash } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import type { VisualEvent } from '../../sauce/event.js';
import { envelopeEntry, STORED_ID_PLACEHOLDER } from '../../sauce/envelope.js';
import type { Region } from '../../sauce/urls.js';
import {
  DIFF_READ_LIMITS,
  VISUAL_BUILD_QUERY,
  addDiffPages,
  finishDiffRead,
  nextDiffPages,
  parseVisualBuildResponse,
  parseVisualDiffsResponse,
  startDiffRead,
  visualApiOrigin,
  visualDiffsRequest,
  visualStatusIsOpen,
  visualStatusIsUnfinished,
  visualStatusListsDiffs,
  type DiffReadLimits,
  type VisualBuildRead,
} from '../../sauce/visual-api.js';
import { fitNotes, notesText, notesToWire, parseVisualNotesText, type VisualDiffList, type VisualNotes } from '../../sauce/visual-notes.js';
import type { VisualSummary } from '../../sauce/event.js';
import type { VisualRefreshConfig } from '../config/index.js';
import type { Logger } from '../logger.js';
import type { RelayMetrics } from '../metrics.js';
import type { EventStore, VisualCheck, VisualCheckOutcome, VisualWatch, VisualWatchStore } from '../outbox/store.js';
import { fetchWithTimeout } from '../outbox/timed-fetch.js';
import { afterStatusRead, lastWord, nextCheckAt, stuckVerdict } from './refresh-plan.js';

export interface VisualRefresherOptions {
  readonly config: VisualRefreshConfig;
  readonly store: EventStore & VisualWatchStore;
  readonly logger: Logger;
  readonly metrics?: RelayMetrics;
  /** Region of each route, for builds whose `data_center` is missing or malformed. */
  readonly regionOf: (route: string) => Region;
  /** A refreshed event was stored: wake the dispatcher. */
  readonly onStored?: (id: string, bytes: number) => void;
  /** Per API request. Default 10 s. */
  readonly timeoutMs?: number;
  /** The clock (epoch ms). Default Date.now; tests drive it. */
  readonly now?: () => number;
  /** Bounds of one read of the diffs. Default DIFF_READ_LIMITS. */
  readonly diffLimits?: DiffReadLimits;
}

/** A Visual webhook the handler has just stored. */
export interface StoredVisual {
  readonly route: string;
  readonly repo: string;
  readonly eventType: string;
  readonly body: string;
  readonly event: VisualEvent;
  readonly receivedAt: number;
}

type CheckOutcome = VisualCheckOutcome;

const CLAIM_LIMIT = 20;

type Answer = { readonly kind: 'json'; readonly json: unknown } | { readonly kind: 'error'; readonly reason: string };
type DiffsRead = { readonly kind: 'ok'; readonly diffs: VisualDiffList | null } | { readonly kind: 'error'; readonly reason: string };

export class VisualRefresher {
  private readonly o: VisualRefresherOptions;
  /** How often to look for due watches: the interval, at most 10 s. */
  private readonly pollMs: number;
  private readonly timeoutMs: number;
  /** A claimed watch is not claimable again for this long, unless rescheduled sooner. */
  private readonly leaseMs: number;
  private readonly authorization: string;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  /** A webhook arrived during a pass: run another one right after it. */
  private again = false;
  private stopped = false;
  /** Aborts a read in flight on stop, so SIGTERM never waits out a slow Sauce API. */
  private readonly stopping = new AbortController();

  constructor(options: VisualRefresherOptions) {
    this.o = options;
    this.pollMs = Math.max(10, Math.min(options.config.intervalMs, 10_000));
    this.timeoutMs = options.timeoutMs ?? 10_000;
    // A pass reads its claimed watches one after another, each with a status read and up to
    // maxRequests reads of the diffs, every one up to timeoutMs: the lease outlasts the slowest pass,
    // so no other relay on the same store claims a watch this one is still reading.
    const requestsPerWatch = 1 + (options.diffLimits ?? DIFF_READ_LIMITS).maxRequests;
    this.leaseMs = Math.max(60_000, CLAIM_LIMIT * requestsPerWatch * this.timeoutMs + this.timeoutMs);
    this.authorization = `Basic ${Buffer.from(`${options.config.username}:${options.config.accessKey}`).toString('base64')}`;
    this.now = options.now ?? Date.now;
    // fetchWithTimeout listens on this signal until each request's deadline passes (it keeps its
    // timer after a success to cut a stalled body): one listener per request of the last timeoutMs,
    // a bounded number, not a leak. Without this, Node warns past 10 (20 watches a pass, a few requests each).
    setMaxListeners(0, this.stopping.signal);
  }

  start(): void {
    if (this.timer || this.stopped) return;
    const { intervalMs, watchForMs, stuckAfterMs } = this.o.config;
    this.o.logger.info({ intervalMs, watchForMs, stuckAfterMs }, 'visual refresh started');
    this.timer = setInterval(() => void this.tick(), this.pollMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopping.abort();
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    while (this.running) await this.running;
  }

  /**
   * Start, move or end the watch of a stored Visual webhook; a watched build is due at once, and a
   * started refresher reads it now (the first read, so the first check run can list the diffs).
   * Failures are logged, not thrown: the event itself is stored.
   */
  async track(stored: StoredVisual): Promise<void> {
    const { event } = stored;
    try {
      if (!visualStatusIsOpen(event.status) && !hasDiffsToList(event.status, event.summary)) {
        await this.o.store.endVisualWatch(stored.route, event.buildId);
        return;
      }
      await this.o.store.watchVisual({
        route: stored.route,
        buildId: event.buildId,
        repo: stored.repo,
        eventType: stored.eventType,
        body: stored.body,
        dataCenter: event.dataCenter,
        firstSeenAt: stored.receivedAt,
        nextCheckAt: stored.receivedAt,
        expiresAt: stored.receivedAt + this.o.config.watchForMs,
      });
    } catch (error) {
      this.o.logger.warn({ route: stored.route, buildId: event.buildId, err: errorText(error) }, 'could not record the Visual build for refresh');
      return;
    }
    if (this.timer) this.kick();
  }

  /** A pass now; when one is running, another right after it (it may have claimed before this watch was due). */
  private kick(): void {
    if (this.running) this.again = true;
    else void this.tick();
  }

  /** One pass over the due watches (the timer calls this; tests may too). */
  tick(): Promise<void> {
    if (this.running) return this.running;
    this.running = (async () => {
      do {
        this.again = false;
        await this.pass();
      } while (this.again && !this.stopped);
    })().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async pass(): Promise<void> {
    if (this.stopped) return;
    let due: VisualWatch[];
    try {
      due = await this.o.store.claimVisualWatches(this.now(), this.leaseMs, CLAIM_LIMIT);
    } catch (error) {
      this.o.logger.warn({ err: errorText(error) }, 'visual refresh: store unavailable');
      return;
    }
    for (const watch of due) {
      if (this.stopped) return;
      const outcome = await this.check(watch).catch((error: unknown) => {
        this.o.logger.warn({ route: watch.route, buildId: watch.buildId, err: errorText(error) }, 'visual refresh failed');
        return 'error' as const;
      });
      this.o.metrics?.visualRefresh.inc({ outcome });
    }
  }

  private async check(watch: VisualWatch): Promise<CheckOutcome> {
    const { store, logger, config } = this.o;
    const now = this.now();
    const log = { route: watch.route, buildId: watch.buildId, repo: watch.repo };
    // What the console shows of this re-read, written with the watch's end or reschedule.
    const seen = (outcome: CheckOutcome, rest: Partial<VisualCheck> = {}): VisualCheck => ({
      at: now,
      outcome,
      status: null,
      summary: null,
      error: null,
      eventId: null,
      ...rest,
    });
    if (now >= watch.expiresAt) {
      const word = lastWord(watch, config.watchForMs, now);
      // Stored first: if this throws, the watch stays and the next pass says it again.
      const id = word ? await this.store(watch, watch.body, this.fit(watch, watch.body, word, now), now) : null;
      await store.endVisualWatch(watch.route, watch.buildId, seen('expired', { eventId: id }));
      logger.info({ ...log, lastWord: word !== null }, 'visual build still open; refresh period over, no longer watched');
      return 'expired';
    }
    const read = await this.read(watch);
    if (read.kind === 'not_found') {
      await store.endVisualWatch(watch.route, watch.buildId, seen('not_found', { error: 'Sauce has no such build for these credentials' }));
      logger.warn(log, 'visual refresh: Sauce has no such build for these credentials; no longer watched');
      return 'not_found';
    }
    if (read.kind === 'error') logger.warn({ ...log, reason: read.reason }, 'visual refresh: Sauce API read failed; will try again');
    const after = afterStatusRead(watch, read.kind === 'found' ? read.build : null);
    let diffs: VisualDiffList | null;
    if (after.diffs === 'read') {
      const list = await this.readDiffs(watch, read.kind === 'found' ? read.build.summary : null, now);
      if (list.kind === 'error') logger.warn({ ...log, reason: list.reason }, 'visual refresh: could not read the diffs; the event goes without their list');
      diffs = list.kind === 'ok' ? list.diffs : null;
    } else {
      diffs = after.diffs;
    }
    const stuck = stuckVerdict(after.status, watch, config.stuckAfterMs, now, read.kind === 'found');
    const extra = this.fit(watch, after.body, { diffs, stuck, watchEnded: null }, now);
    const changed = after.bodyChanged || extra !== watch.extra;
    let id: string | null = null;
    if (changed) {
      id = await this.store(watch, after.body, extra, now);
      logger.info({ ...log, id, status: after.status, diffs: diffs?.items.length ?? null, stuck: stuck !== null }, 'visual build changed; event stored');
      if (stuck && parseVisualNotesText(watch.extra).stuck === null)
        logger.warn({ ...log, status: after.status, stuckAfterMs: config.stuckAfterMs }, 'visual build did not finish in time; reported as stuck');
    }
    const open = after.status !== null && visualStatusIsOpen(after.status);
    const outcome: CheckOutcome = read.kind === 'error' ? 'error' : changed ? 'changed' : open ? 'unchanged' : 'decided';
    const check = seen(
      outcome,
      read.kind === 'found' ? { status: read.build.status, summary: read.build.summary, eventId: id } : { error: read.reason, eventId: id },
    );
    if (read.kind === 'error' || open) {
      const next = nextCheckAt(
        watch,
        { intervalMs: config.intervalMs, stuckAfterMs: config.stuckAfterMs, stuck: stuck !== null, unfinished: visualStatusIsUnfinished(after.status) },
        now,
      );
      await store.rescheduleVisualWatch(watch.route, watch.buildId, next, {
        error: read.kind === 'error' ? read.reason : null,
        ...(changed ? { body: after.body, extra } : {}),
        check,
      });
    } else {
      await store.endVisualWatch(watch.route, watch.buildId, check);
    }
    return outcome;
  }

  /**
   * Store the build's event like a webhook, with the relay's notes as its `extra`. No dedup
   * (window 0): a build can return to an earlier state (approved, then un-approved), and that body,
   * byte for byte an earlier one, must still reach GitHub.
   */
  private async store(watch: VisualWatch, body: string, extra: string | null, now: number): Promise<string> {
    const bodyHash = createHash('sha256').update(body).digest('hex');
    const result = await this.o.store.insert({ route: watch.route, repo: watch.repo, eventType: watch.eventType, body, bodyHash, receivedAt: now, extra }, 0);
    if (result.kind === 'stored') {
      this.o.metrics?.stored.inc({ route: watch.route });
      this.o.onStored?.(result.id, Buffer.byteLength(body) + Buffer.byteLength(extra ?? ''));
    }
    return result.id;
  }

  /**
   * The notes as stored `extra` text, cut so the event's envelope entry fits one dispatch (the
   * dispatcher's own builder decides): diffs from the end first, never the verdicts. Notes must not
   * make the relay shorten Sauce's body, unless the body is shortened anyway.
   */
  private fit(watch: VisualWatch, body: string, notes: VisualNotes, now: number): string | null {
    const payload = JSON.parse(body) as unknown;
    const meta = { id: STORED_ID_PLACEHOLDER, received_at: new Date(now).toISOString(), route: watch.route };
    const bare = envelopeEntry(payload, meta);
    const cutAnyway = !bare.ok || bare.truncated.length > 0;
    const fits = (n: VisualNotes): boolean => {
      const wire = notesToWire(n);
      const entry = envelopeEntry(payload, wire ? { ...meta, relay: wire } : meta);
      return entry.ok && (cutAnyway || entry.truncated.length === 0);
    };
    const fitted = fitNotes(notes, fits);
    return fitted === null ? null : notesText(fitted);
  }

  /** The build's status and counts; any failure (network, HTTP, shape) is an `error` to retry. */
  private async read(watch: VisualWatch): Promise<Exclude<VisualBuildRead, { kind: 'invalid' }> | { kind: 'error'; reason: string }> {
    const answer = await this.graphql(watch, { query: VISUAL_BUILD_QUERY, variables: { id: watch.buildId } });
    if (answer.kind === 'error') return answer;
    const parsed = parseVisualBuildResponse(answer.json);
    if (parsed.kind === 'invalid') return { kind: 'error', reason: parsed.reason };
    return parsed;
  }

  /** The diffs that are not EQUAL, page by page within the limits; null when the summary counts none. */
  private async readDiffs(watch: VisualWatch, summary: VisualSummary | null, now: number): Promise<DiffsRead> {
    if (summary === null) return { kind: 'ok', diffs: null };
    const limits = this.o.diffLimits ?? DIFF_READ_LIMITS;
    let state = startDiffRead(summary);
    if (state.progress.size === 0) return { kind: 'ok', diffs: null };
    for (let pages = nextDiffPages(state, limits); pages !== null; pages = nextDiffPages(state, limits)) {
      const answer = await this.graphql(watch, visualDiffsRequest(watch.buildId, pages, limits.pageSize));
      if (answer.kind === 'error') return answer;
      const parsed = parseVisualDiffsResponse(
        answer.json,
        pages.map((p) => p.status),
      );
      if (parsed.kind === 'invalid') return { kind: 'error', reason: parsed.reason };
      if (parsed.kind === 'not_found') return { kind: 'error', reason: 'the build is gone' };
      state = addDiffPages(state, parsed.pages);
    }
    return { kind: 'ok', diffs: finishDiffRead(state, now, limits) };
  }

  /** One GraphQL request to the build's API host, with the credentials; failures as reasons. */
  private async graphql(watch: VisualWatch, request: { query: string; variables: Record<string, unknown> }): Promise<Answer> {
    const origin = this.o.config.apiUrl ?? visualApiOrigin(watch.dataCenter, this.o.regionOf(watch.route));
    let response: Response;
    try {
      response = await fetchWithTimeout(
        `${origin.replace(/\/+$/, '')}/v1/visual/graphql`,
        {
          method: 'POST',
          headers: { authorization: this.authorization, 'content-type': 'application/json', accept: 'application/json' },
          body: JSON.stringify(request),
        },
        this.timeoutMs,
        this.stopping.signal,
      );
    } catch (error) {
      return { kind: 'error', reason: `network: ${errorText(error)}` };
    }
    if (response.status === 401 || response.status === 403) {
      await response.body?.cancel();
      return { kind: 'error', reason: `HTTP ${response.status}: Sauce refused SAUCE_USERNAME/SAUCE_ACCESS_KEY` };
    }
    if (!response.ok) {
      await response.body?.cancel();
      return { kind: 'error', reason: `HTTP ${response.status}` };
    }
    try {
      return { kind: 'json', json: await response.json() };
    } catch {
      return { kind: 'error', reason: 'answer is not JSON' };
    }
  }
}

/** A decided webhook worth one read: its check run lists diffs and its summary counts some. */
function hasDiffsToList(status: VisualEvent['status'], summary: VisualSummary): boolean {
  return visualStatusListsDiffs(status) && startDiffRead(summary).progress.size > 0;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
