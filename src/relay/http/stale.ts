/**
 * Replays. Sauce's signature covers the body but carries no time, so a captured signed body stays
 * valid forever: the relay's dedup window stops a replay only while it lasts. A job event carries
 * its own time (`modification_time`, else `creation_time`), and the signature stops anyone from
 * changing it; the relay refuses job events whose time is older than `staleAfterMs` before they
 * are received. The config keeps the dedup window longer than this limit, so every replay is
 * either a duplicate or stale.
 *
 * An event dated in the future, by any amount, is accepted: a replay can only carry a time from the
 * past (the body it replays was signed then), so a time ahead of the relay's clock is a clock
 * difference between Sauce and the relay, and refusing it would drop real events while the relay's
 * clock lags.
 *
 * Visual build events carry no time of their own, so they are not judged here (see the README).
 */
import { parseSauceTime, type SauceEvent } from '../../sauce/event.js';

/** The only way an event is stale; a code for metrics and logs beside the reason text. */
export type StaleCode = 'stale';

/** A job event's own time in epoch ms: `modification_time`, else `creation_time`; null when it has neither. */
export function eventTime(event: SauceEvent, raw: unknown): number | null {
  if (event.kind !== 'job') return null;
  if (event.modifiedAt !== null) return event.modifiedAt;
  const created = typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>).creation_time : undefined;
  return typeof created === 'string' ? parseSauceTime(created) : null;
}

/**
 * Null when the event may be relayed; else why it is stale. `at` is its time (`eventTime`, which
 * the handler also hands the store); an event without one cannot be judged and passes.
 */
export function staleness(
  event: SauceEvent,
  at: number | null,
  receivedAt: number,
  staleAfterMs: number,
): { readonly code: StaleCode; readonly reason: string } | null {
  if (at === null || receivedAt - at <= staleAfterMs) return null;
  const field = event.kind === 'job' && event.modifiedAt !== null ? 'modification_time' : 'creation_time';
  return {
    code: 'stale',
    reason: `stale: the job's ${field} ${new Date(at).toISOString()} is more than ${Number((staleAfterMs / 3_600_000).toFixed(2))} h before it was received (${new Date(receivedAt).toISOString()})`,
  };
}
