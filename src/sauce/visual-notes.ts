/**
 * What the relay says about a Visual build beside Sauce's own event: the snapshots that changed, and
 * verdicts only the relay can make (the build never finished; the relay stopped re-reading it).
 *
 * It travels as the `relay` field of an envelope entry (src/sauce/envelope.ts), stored as the
 * event's `extra` (src/relay/outbox/store.ts). Sauce's body is never changed for it: the payload
 * stays what Sauce said (a stuck build's payload still says QUEUED), so the Action can always tell
 * Sauce's word from the relay's.
 *
 *   "relay": {
 *     "diffs":  { "read_at": "<ISO>", "totals": { "UNAPPROVED": 3 },
 *                 "items": [ { "id": "<uuid>", "status": "UNAPPROVED", "snapshot": "Checkout",
 *                              "test": "…", "suite": "…", "browser": "CHROME 128", "device": "…",
 *                              "os": "WINDOWS 11", "viewport": "1280x720", "invalid": "IMAGE_TOO_LARGE" } ] },
 *     "stuck":  { "since": "<ISO: first webhook>", "after_ms": 7200000, "at": "<ISO: verdict>" },
 *     "watch_ended": { "at": "<ISO>", "after_ms": 259200000 }
 *   }
 *
 * Every part is optional. A reader takes each part on its own: a malformed part is left out, never
 * the event (the check run then shows what it shows without the relay's notes).
 */
import { z } from 'zod';
import { truncateChars } from '../github/limits.js';
import { isRecord } from './json.js';

/** Sauce's DiffStatus values the relay lists, in the order a reviewer needs them. EQUAL is never listed. */
export const LISTED_DIFF_STATUSES = ['UNAPPROVED', 'REJECTED', 'ERRORED', 'QUEUED', 'APPROVED'] as const;
export type ListedDiffStatus = (typeof LISTED_DIFF_STATUSES)[number];

/** At most this many diffs are listed; the rest are counted (`totals`), shown as "…and N more". */
export const MAX_LISTED_DIFFS = 100;
/** A snapshot name is cut to this many characters (with …); 10,000-character names happen. */
export const SNAPSHOT_NAME_MAX_CHARS = 200;
/** Every other text of a diff (test, suite, browser, device, OS, viewport, invalid) is cut to this. */
export const DIFF_TEXT_MAX_CHARS = 100;

export interface VisualDiff {
  readonly id: string;
  readonly status: ListedDiffStatus;
  /** The snapshot's name; null when Sauce returned the diff without its snapshot. */
  readonly snapshot: string | null;
  readonly test: string | null;
  readonly suite: string | null;
  /** Browser and version, e.g. `CHROME 128.0`. */
  readonly browser: string | null;
  readonly device: string | null;
  /** Operating system and version, e.g. `WINDOWS 11`. */
  readonly os: string | null;
  /** `1280x720`. */
  readonly viewport: string | null;
  /** Why Sauce calls the snapshot invalid (`TRUNCATED`, `IMAGE_TOO_LARGE`, `INVALID`, or `ERROR`); null when valid. */
  readonly invalid: string | null;
}

export interface VisualDiffList {
  /** When the relay read them (epoch ms). */
  readonly readAt: number;
  /** How many diffs Sauce has per listed status (only statuses it has). */
  readonly totals: Readonly<Partial<Record<ListedDiffStatus, number>>>;
  /** The diffs read, grouped by status in LISTED_DIFF_STATUSES order; at most MAX_LISTED_DIFFS. */
  readonly items: readonly VisualDiff[];
}

/** The relay's verdict: the build was still QUEUED or RUNNING this long after its first webhook. */
export interface StuckVerdict {
  /** The first webhook of the build (epoch ms). */
  readonly since: number;
  /** The timeout (RELAY_VISUAL_STUCK_AFTER). */
  readonly afterMs: number;
  /** When the relay said so. */
  readonly at: number;
}

/** The relay stopped re-reading the build (RELAY_VISUAL_REFRESH_FOR ran out) while it was still open. */
export interface WatchEnded {
  readonly at: number;
  /** The refresh period (RELAY_VISUAL_REFRESH_FOR). */
  readonly afterMs: number;
}

export interface VisualNotes {
  readonly diffs: VisualDiffList | null;
  readonly stuck: StuckVerdict | null;
  readonly watchEnded: WatchEnded | null;
}

export const NO_NOTES: VisualNotes = { diffs: null, stuck: null, watchEnded: null };

/** Total over the statuses Sauce counted. */
export function diffTotal(list: VisualDiffList): number {
  return LISTED_DIFF_STATUSES.reduce((n, s) => n + (list.totals[s] ?? 0), 0);
}

const iso = (ms: number): string => new Date(ms).toISOString();

function diffToWire(d: VisualDiff): Record<string, string> {
  const w: Record<string, string> = { id: d.id, status: d.status };
  const optional = [
    ['snapshot', d.snapshot],
    ['test', d.test],
    ['suite', d.suite],
    ['browser', d.browser],
    ['device', d.device],
    ['os', d.os],
    ['viewport', d.viewport],
    ['invalid', d.invalid],
  ] as const;
  for (const [key, value] of optional) if (value !== null) w[key] = value;
  return w;
}

/** The notes as the JSON object that travels (keys always in the same order), or null when there are none. */
export function notesToWire(notes: VisualNotes): Record<string, unknown> | null {
  const wire: Record<string, unknown> = {};
  if (notes.diffs) {
    const totals: Record<string, number> = {};
    for (const s of LISTED_DIFF_STATUSES) if (notes.diffs.totals[s] !== undefined) totals[s] = notes.diffs.totals[s];
    wire.diffs = { read_at: iso(notes.diffs.readAt), totals, items: notes.diffs.items.map(diffToWire) };
  }
  if (notes.stuck) wire.stuck = { since: iso(notes.stuck.since), after_ms: notes.stuck.afterMs, at: iso(notes.stuck.at) };
  if (notes.watchEnded) wire.watch_ended = { at: iso(notes.watchEnded.at), after_ms: notes.watchEnded.afterMs };
  return Object.keys(wire).length > 0 ? wire : null;
}

/** The stored `extra` text of notes (null when none). Equal notes give equal text. */
export function notesText(notes: VisualNotes): string | null {
  const wire = notesToWire(notes);
  return wire === null ? null : JSON.stringify(wire);
}

const time = z.string().transform((v, ctx) => {
  const ms = Date.parse(v);
  if (!Number.isFinite(ms)) {
    ctx.addIssue({ code: 'custom', message: 'not an ISO time' });
    return z.NEVER;
  }
  return ms;
});
const count = z.number().int().nonnegative();
const capped = (max: number) =>
  z
    .string()
    .nullish()
    .transform((v) => (v === null || v === undefined ? null : truncateChars(v, max)));
const diffSchema = z.object({
  id: z.string().min(1).max(100),
  status: z.enum(LISTED_DIFF_STATUSES),
  snapshot: capped(SNAPSHOT_NAME_MAX_CHARS),
  test: capped(DIFF_TEXT_MAX_CHARS),
  suite: capped(DIFF_TEXT_MAX_CHARS),
  browser: capped(DIFF_TEXT_MAX_CHARS),
  device: capped(DIFF_TEXT_MAX_CHARS),
  os: capped(DIFF_TEXT_MAX_CHARS),
  viewport: capped(DIFF_TEXT_MAX_CHARS),
  invalid: capped(DIFF_TEXT_MAX_CHARS),
});
const totalsSchema = z.object(
  Object.fromEntries(LISTED_DIFF_STATUSES.map((s) => [s, count.optional()])) as Record<ListedDiffStatus, z.ZodOptional<typeof count>>,
);
const listSchema = z.object({ read_at: time, totals: totalsSchema, items: z.array(z.unknown()) });
const stuckSchema = z.object({ since: time, after_ms: count, at: time });
const watchEndedSchema = z.object({ at: time, after_ms: count });

/**
 * The notes in an entry's `relay` field (or a stored `extra`, parsed). Lenient: each part is read
 * on its own and a malformed part is left out; malformed diffs are dropped one by one; at most
 * MAX_LISTED_DIFFS are kept and every text is cut to its limit, whoever wrote the payload.
 */
export function parseVisualNotes(value: unknown): VisualNotes {
  if (!isRecord(value)) return NO_NOTES;
  let diffs: VisualDiffList | null = null;
  const list = listSchema.safeParse(value.diffs);
  if (list.success) {
    const items: VisualDiff[] = [];
    for (const raw of list.data.items) {
      if (items.length === MAX_LISTED_DIFFS) break;
      const item = diffSchema.safeParse(raw);
      if (item.success) items.push(item.data);
    }
    const totals: Partial<Record<ListedDiffStatus, number>> = {};
    for (const s of LISTED_DIFF_STATUSES) if (list.data.totals[s] !== undefined) totals[s] = list.data.totals[s];
    diffs = { readAt: list.data.read_at, totals, items };
  }
  const stuck = stuckSchema.safeParse(value.stuck);
  const ended = watchEndedSchema.safeParse(value.watch_ended);
  return {
    diffs,
    stuck: stuck.success ? { since: stuck.data.since, afterMs: stuck.data.after_ms, at: stuck.data.at } : null,
    watchEnded: ended.success ? { at: ended.data.at, afterMs: ended.data.after_ms } : null,
  };
}

/** The notes in a stored `extra` text (none when absent or not JSON). */
export function parseVisualNotesText(text: string | null | undefined): VisualNotes {
  if (!text) return NO_NOTES;
  try {
    return parseVisualNotes(JSON.parse(text) as unknown);
  } catch {
    return NO_NOTES;
  }
}

/**
 * The notes with as many of their diffs as `fits` accepts (kept from the front, so unapproved and
 * rejected stay longest); without the list when not even an empty one fits. The verdicts are
 * never dropped: they are what the check run must say. Null when nothing fits at all.
 */
export function fitNotes(notes: VisualNotes, fits: (notes: VisualNotes) => boolean): VisualNotes | null {
  if (fits(notes)) return notes;
  if (notes.diffs) {
    const items = notes.diffs.items;
    // The longest prefix that fits, by bisection (fits is monotone in the number of items).
    let lo = 0;
    let hi = items.length - 1;
    const withItems = (n: number): VisualNotes => ({ ...notes, diffs: { ...notes.diffs!, items: items.slice(0, n) } });
    if (fits(withItems(0))) {
      while (lo < hi) {
        const mid = Math.ceil((lo + hi) / 2);
        if (fits(withItems(mid))) lo = mid;
        else hi = mid - 1;
      }
      return withItems(lo);
    }
    const bare = { ...notes, diffs: null };
    if (fits(bare)) return bare;
  }
  return null;
}
