/**
 * Visual refresh: the relay re-reads Visual builds that await review from Sauce's API and turns a
 * change (a reviewer approved or rejected, or the diffs finished computing) into a new Visual event,
 * stored and dispatched like a webhook. Without it a PR would wait on "changes await review" until
 * someone re-ran something, because Sauce sends the build webhook once.
 *
 * - On by Sauce credentials (`SAUCE_USERNAME`, `SAUCE_ACCESS_KEY`); needs the relay's own store.
 * - A stored Visual webhook whose status is still open (QUEUED, RUNNING, UNAPPROVED) starts a watch;
 *   a webhook with a decided status ends it.
 * - Each due watch is claimed with a lease (several relays on one database never re-read a build
 *   twice at once), read with one GraphQL request, and rescheduled: every interval for the first
 *   hour, then less often, until the build is decided, gone, or the watch expires (default 3 days).
 * - The new event is the last body with `status` and `summary` from the API. Its receive time is
 *   now, so the Action's "later receipt wins" takes it over the webhook.
 * - Credentials go only to `https://api.<data center>.saucelabs.com` (or `SAUCE_API_URL`, set by
 *   the operator), never to a host a payload names; they are never logged.
 */
import { createHash } from 'node:crypto';
import type { VisualEvent } from '../../sauce/event.js';
import type { Region } from '../../sauce/urls.js';
import {
  VISUAL_BUILD_QUERY,
  applyVisualBuild,
  parseVisualBuildResponse,
  visualApiOrigin,
  visualRefreshDelayMs,
  visualStatusIsOpen,
  type VisualBuildRead,
} from '../../sauce/visual-api.js';
import type { VisualRefreshConfig } from '../config/index.js';
import type { Logger } from '../logger.js';
import type { RelayMetrics } from '../metrics.js';
import type { EventStore, VisualWatch, VisualWatchStore } from '../outbox/store.js';
import { fetchWithTimeout } from '../outbox/timed-fetch.js';

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

type CheckOutcome = 'changed' | 'unchanged' | 'decided' | 'not_found' | 'expired' | 'error';

const CLAIM_LIMIT = 20;

export class VisualRefresher {
  private readonly o: VisualRefresherOptions;
  /** How often to look for due watches: the interval, at most 10 s. */
  private readonly pollMs: number;
  private readonly timeoutMs: number;
  /** A claimed watch is not claimable again for this long, unless rescheduled sooner. */
  private readonly leaseMs: number;
  private readonly authorization: string;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;
  /** Aborts a read in flight on stop, so SIGTERM never waits out a slow Sauce API. */
  private readonly stopping = new AbortController();

  constructor(options: VisualRefresherOptions) {
    this.o = options;
    this.pollMs = Math.max(10, Math.min(options.config.intervalMs, 10_000));
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.leaseMs = Math.max(60_000, 3 * this.timeoutMs);
    this.authorization = `Basic ${Buffer.from(`${options.config.username}:${options.config.accessKey}`).toString('base64')}`;
  }

  start(): void {
    if (this.timer || this.stopped) return;
    this.o.logger.info({ intervalMs: this.o.config.intervalMs, watchForMs: this.o.config.watchForMs }, 'visual refresh started');
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

  /** Start, move or end the watch of a stored Visual webhook. Failures are logged, not thrown: the event itself is stored. */
  async track(stored: StoredVisual): Promise<void> {
    const { event } = stored;
    try {
      if (!visualStatusIsOpen(event.status)) {
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
        nextCheckAt: stored.receivedAt + this.o.config.intervalMs,
        expiresAt: stored.receivedAt + this.o.config.watchForMs,
      });
    } catch (error) {
      this.o.logger.warn({ route: stored.route, buildId: event.buildId, err: errorText(error) }, 'could not record the Visual build for refresh');
    }
  }

  /** One pass over the due watches (the timer calls this; tests may too). */
  tick(): Promise<void> {
    if (this.running) return this.running;
    this.running = this.pass().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async pass(): Promise<void> {
    if (this.stopped) return;
    let due: VisualWatch[];
    try {
      due = await this.o.store.claimVisualWatches(Date.now(), this.leaseMs, CLAIM_LIMIT);
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
    const { store, logger } = this.o;
    const now = Date.now();
    const log = { route: watch.route, buildId: watch.buildId, repo: watch.repo };
    if (now >= watch.expiresAt) {
      await store.endVisualWatch(watch.route, watch.buildId);
      logger.info(log, 'visual build still awaits review; refresh period over, no longer watched');
      return 'expired';
    }
    const next = now + visualRefreshDelayMs(now - watch.firstSeenAt, this.o.config.intervalMs);
    const read = await this.read(watch);
    if (read.kind === 'error') {
      await store.rescheduleVisualWatch(watch.route, watch.buildId, next, { error: read.reason });
      logger.warn({ ...log, reason: read.reason }, 'visual refresh: Sauce API read failed; will try again');
      return 'error';
    }
    if (read.kind === 'not_found') {
      await store.endVisualWatch(watch.route, watch.buildId);
      logger.warn(log, 'visual refresh: Sauce has no such build for these credentials; no longer watched');
      return 'not_found';
    }
    const { body, changed } = applyVisualBuild(watch.body, read.build);
    const open = visualStatusIsOpen(read.build.status);
    if (changed) {
      // Stored first, like a webhook: if this throws, the watch keeps its old body and the next pass retries.
      // No dedup (window 0): a build can return to an earlier state (approved, then un-approved), and
      // that body, byte for byte an earlier one, must still reach GitHub.
      const bodyHash = createHash('sha256').update(body).digest('hex');
      const result = await store.insert({ route: watch.route, repo: watch.repo, eventType: watch.eventType, body, bodyHash, receivedAt: now }, 0);
      if (result.kind === 'stored') {
        this.o.metrics?.stored.inc({ route: watch.route });
        this.o.onStored?.(result.id, Buffer.byteLength(body));
      }
      logger.info({ ...log, id: result.id, status: read.build.status, result: result.kind }, 'visual build changed in Sauce; event stored');
    }
    if (open) await store.rescheduleVisualWatch(watch.route, watch.buildId, next, changed ? { body } : {});
    else await store.endVisualWatch(watch.route, watch.buildId);
    return changed ? 'changed' : open ? 'unchanged' : 'decided';
  }

  /** The API's answer; any failure (network, HTTP, shape) is an `error` to retry. */
  private async read(watch: VisualWatch): Promise<Exclude<VisualBuildRead, { kind: 'invalid' }> | { kind: 'error'; reason: string }> {
    const origin = this.o.config.apiUrl ?? visualApiOrigin(watch.dataCenter, this.o.regionOf(watch.route));
    let response: Response;
    try {
      response = await fetchWithTimeout(
        `${origin.replace(/\/+$/, '')}/v1/visual/graphql`,
        {
          method: 'POST',
          headers: { authorization: this.authorization, 'content-type': 'application/json', accept: 'application/json' },
          body: JSON.stringify({ query: VISUAL_BUILD_QUERY, variables: { id: watch.buildId } }),
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
    let json: unknown;
    try {
      json = await response.json();
    } catch {
      return { kind: 'error', reason: 'answer is not JSON' };
    }
    const parsed = parseVisualBuildResponse(json);
    if (parsed.kind === 'invalid') return { kind: 'error', reason: parsed.reason };
    return parsed;
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
