/**
 * The decisions of one Visual refresh, as pure functions (the shell, visual-refresh.ts, only reads
 * Sauce and writes the store): what the build's event reads now, whether its diffs must be read,
 * whether the relay calls it stuck, what GitHub must be sent, and when to look again.
 */
import type { VisualStatus } from '../../sauce/schema.js';
import { VISUAL_STATUSES } from '../../sauce/schema.js';
import {
  applyVisualBuild,
  visualRefreshDelayMs,
  visualStatusIsOpen,
  visualStatusIsUnfinished,
  visualStatusListsDiffs,
  type VisualBuildState,
} from '../../sauce/visual-api.js';
import { parseVisualNotesText, type StuckVerdict, type VisualDiffList, type VisualNotes } from '../../sauce/visual-notes.js';
import type { VisualWatch } from '../outbox/store.js';

/** The status a stored Visual body says; null when the body is not a readable Visual event. */
export function bodyStatus(body: string): VisualStatus | null {
  try {
    const status = (JSON.parse(body) as { status?: unknown }).status;
    return typeof status === 'string' && (VISUAL_STATUSES as readonly string[]).includes(status) ? (status as VisualStatus) : null;
  } catch {
    return null;
  }
}

export interface AfterRead {
  /** The build's event as it reads now (the watch's body when the read failed). */
  readonly body: string;
  readonly bodyChanged: boolean;
  readonly status: VisualStatus | null;
  /** `read`: read the diffs now; otherwise the list to send (the last one, or none). */
  readonly diffs: 'read' | VisualDiffList | null;
}

/**
 * Where a read of the build status leaves the event. The diffs are read again when the build
 * changed or none were sent yet, and only for statuses whose check run lists them; a failed read
 * keeps what was sent.
 */
export function afterStatusRead(watch: Pick<VisualWatch, 'body' | 'extra'>, build: VisualBuildState | null): AfterRead {
  const last = parseVisualNotesText(watch.extra);
  if (build === null) return { body: watch.body, bodyChanged: false, status: bodyStatus(watch.body), diffs: last.diffs };
  const { body, changed } = applyVisualBuild(watch.body, build);
  if (!visualStatusListsDiffs(build.status)) return { body, bodyChanged: changed, status: build.status, diffs: null };
  return { body, bodyChanged: changed, status: build.status, diffs: changed || last.diffs === null ? 'read' : last.diffs };
}

/**
 * The relay's "stuck" verdict: a build Sauce still reports QUEUED or RUNNING `stuckAfterMs` after
 * its first webhook. Given only on what Sauce answered now (`seenNow`): a failed read proves
 * nothing, the build may have finished. Once given it stays the same (same times), so it is sent
 * once, failed reads or not; any other status ends it.
 */
export function stuckVerdict(
  status: VisualStatus | null,
  watch: Pick<VisualWatch, 'firstSeenAt' | 'extra'>,
  stuckAfterMs: number | null,
  now: number,
  seenNow: boolean,
): StuckVerdict | null {
  if (stuckAfterMs === null || !visualStatusIsUnfinished(status)) return null;
  const given = parseVisualNotesText(watch.extra).stuck;
  if (given) return given;
  return seenNow && now - watch.firstSeenAt >= stuckAfterMs ? { since: watch.firstSeenAt, afterMs: stuckAfterMs, at: now } : null;
}

/**
 * The last word when the refresh period ends on a build that is still open: the notes last sent
 * (its list, its verdict) and when the relay stopped. Null when there is nothing to say (a decided
 * build, or an unreadable body).
 */
export function lastWord(watch: Pick<VisualWatch, 'body' | 'extra'>, watchForMs: number, now: number): VisualNotes | null {
  const status = bodyStatus(watch.body);
  if (status === null || !visualStatusIsOpen(status)) return null;
  return { ...parseVisualNotesText(watch.extra), watchEnded: { at: now, afterMs: watchForMs } };
}

/**
 * When to read the build again: by its age (visualRefreshDelayMs), but never after the moment it
 * would become stuck (so the verdict is on time) nor after the watch expires (so the last word is).
 */
export function nextCheckAt(
  watch: Pick<VisualWatch, 'firstSeenAt' | 'expiresAt'>,
  opts: { readonly intervalMs: number; readonly stuckAfterMs: number | null; readonly stuck: boolean; readonly unfinished: boolean },
  now: number,
): number {
  let next = now + visualRefreshDelayMs(now - watch.firstSeenAt, opts.intervalMs);
  if (opts.stuckAfterMs !== null && opts.unfinished && !opts.stuck) {
    const deadline = watch.firstSeenAt + opts.stuckAfterMs;
    if (deadline > now) next = Math.min(next, deadline);
  }
  return Math.min(next, Math.max(watch.expiresAt, now));
}
