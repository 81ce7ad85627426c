/**
 * GitHub's documented limits, each as a pure function tested at its edge.
 * Breaking one of these turns a write into a 422, so nothing is sent without passing here.
 */

/** Commit status `description`: longer is a 422. GitHub counts characters. */
export const STATUS_DESCRIPTION_MAX_CHARS = 140;
/** Check run `output.summary` and `output.text`, in UTF-8 bytes. */
export const CHECK_OUTPUT_MAX_BYTES = 65_535;
/** Annotations accepted in one create or update request; later updates append. */
export const ANNOTATIONS_PER_REQUEST = 50;
/** Check run `output.title` is short text; keep it readable in the PR checks list. */
export const CHECK_TITLE_MAX_CHARS = 255;
/** `repository_dispatch`: `event_type` length. */
export const DISPATCH_EVENT_TYPE_MAX_CHARS = 100;
/** `repository_dispatch`: top-level keys of `client_payload`. */
export const DISPATCH_MAX_KEYS = 10;
/** `repository_dispatch`: `client_payload` must be under 64 KB (serialised, UTF-8). */
export const DISPATCH_MAX_PAYLOAD_BYTES = 65_535;
/** Commit status `context` and check run `name` are kept short; GitHub rejects very long ones. */
export const CONTEXT_MAX_CHARS = 255;
/** Check run annotation `title`. */
export const ANNOTATION_TITLE_MAX_CHARS = 255;
/**
 * Check run annotation `message`: GitHub takes up to 64 KB, the Action keeps it short (the per-job
 * check run carries the full error text).
 */
export const ANNOTATION_MESSAGE_MAX_CHARS = 4000;

const ELLIPSIS = '…';

export function utf8Bytes(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/** Cut to at most `max` characters (code points, so a surrogate pair is never split), ending in … */
export function truncateChars(text: string, max: number): string {
  const chars = Array.from(text);
  if (chars.length <= max) return text;
  if (max <= 0) return '';
  return chars.slice(0, max - 1).join('') + ELLIPSIS;
}

/** Cut to at most `max` UTF-8 bytes without splitting a character, ending in … when cut. */
export function truncateBytes(text: string, max: number): string {
  if (utf8Bytes(text) <= max) return text;
  const budget = max - utf8Bytes(ELLIPSIS);
  if (budget <= 0) return '';
  let used = 0;
  let out = '';
  for (const ch of text) {
    const size = utf8Bytes(ch);
    if (used + size > budget) break;
    used += size;
    out += ch;
  }
  return out + ELLIPSIS;
}

/**
 * Characters that draw nothing or change how the text around them is drawn: C0 and C1 controls,
 * format characters (bidirectional overrides and isolates U+202A–U+202E and U+2066–U+2069, the
 * marks U+200E, U+200F and U+061C, zero-width spaces and joiners, the byte order mark, tag
 * characters), the other default-ignorable code points (Hangul fillers, variation selectors, soft
 * hyphen) and lone surrogates. With them a name can look like another name.
 */
export const INVISIBLE = /[\p{Cc}\p{Cf}\p{Default_Ignorable_Code_Point}\p{Cs}]/gu;
/** Line and paragraph breaks (CR, LF, VT, FF, NEL, U+2028, U+2029) and tabs. */
const BREAKS = /\r\n|[\n\v\f\r\u0085\u2028\u2029]/g;

/**
 * Text as one visible line: breaks and every kind of whitespace become one space, invisible and
 * control characters are removed, the ends are trimmed. Every name, context, title and
 * description this project writes to GitHub goes through here (via the functions below).
 */
export function visibleLine(text: string): string {
  return text.replace(BREAKS, ' ').replace(/\t/g, ' ').replace(INVISIBLE, '').replace(/\s+/g, ' ').trim();
}

/** Multi-line text with the same characters removed; line breaks become `\n`, tabs are kept. */
export function visibleText(text: string): string {
  return text.replace(BREAKS, '\n').replace(INVISIBLE, (c) => (c === '\n' || c === '\t' ? c : ''));
}

export function statusDescription(text: string): string {
  return truncateChars(visibleLine(text), STATUS_DESCRIPTION_MAX_CHARS);
}

export function checkTitle(text: string): string {
  return truncateChars(visibleLine(text), CHECK_TITLE_MAX_CHARS);
}

export function contextName(text: string): string {
  return truncateChars(visibleLine(text), CONTEXT_MAX_CHARS);
}

/** Check run `external_id`: an identifier, cut to CONTEXT_MAX_CHARS code points (no ellipsis), nothing invisible. */
export function externalId(text: string): string {
  return Array.from(visibleLine(text)).slice(0, CONTEXT_MAX_CHARS).join('');
}

export function annotationTitle(text: string): string {
  return truncateChars(visibleLine(text), ANNOTATION_TITLE_MAX_CHARS);
}

export function annotationMessage(text: string): string {
  return truncateChars(visibleText(text).trim(), ANNOTATION_MESSAGE_MAX_CHARS);
}

export interface SummaryParts {
  /** Everything before the table rows (heading, counts, table header). */
  readonly head: string;
  /** One markdown line per row, without trailing newline. */
  readonly rows: readonly string[];
  /** Everything after the rows (links, next steps). Always kept. */
  readonly tail: string;
  /** The line that replaces cut rows. */
  readonly more?: (omitted: number) => string;
}

const defaultMore = (omitted: number): string => `\n_…and ${omitted} more not shown (GitHub limits a summary to 65,535 bytes)._\n`;

/**
 * Join head, as many rows as fit, a "…and N more" line and the tail into at most `maxBytes`.
 * Rows are kept in order; the head and tail always survive (they are cut themselves only if
 * they alone exceed the limit).
 */
export function fitSummary(parts: SummaryParts, maxBytes: number = CHECK_OUTPUT_MAX_BYTES): string {
  const more = parts.more ?? defaultMore;
  const full = parts.head + parts.rows.map((r) => `${r}\n`).join('') + parts.tail;
  if (utf8Bytes(full) <= maxBytes) return full;
  const fixed = utf8Bytes(parts.head) + utf8Bytes(parts.tail);
  let used = fixed;
  let kept = 0;
  for (const row of parts.rows) {
    const size = utf8Bytes(row) + 1;
    const omittedAfter = parts.rows.length - kept - 1;
    const reserve = omittedAfter > 0 ? utf8Bytes(more(omittedAfter)) : 0;
    if (used + size + reserve > maxBytes) break;
    used += size;
    kept += 1;
  }
  const omitted = parts.rows.length - kept;
  const body =
    parts.head +
    parts.rows
      .slice(0, kept)
      .map((r) => `${r}\n`)
      .join('') +
    (omitted > 0 ? more(omitted) : '') +
    parts.tail;
  return truncateBytes(body, maxBytes);
}

/** Split into request-sized groups: the first goes with create, the rest with updates. */
export function chunk<T>(items: readonly T[], size: number = ANNOTATIONS_PER_REQUEST): T[][] {
  if (size < 1) throw new RangeError('chunk size must be at least 1');
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export function validEventType(eventType: string): boolean {
  return eventType.length > 0 && Array.from(eventType).length <= DISPATCH_EVENT_TYPE_MAX_CHARS;
}

export function payloadBytes(payload: unknown): number {
  return utf8Bytes(JSON.stringify(payload));
}

export type DispatchSplit<T> = { readonly ok: true; readonly batches: T[][] } | { readonly ok: false; readonly tooLarge: T[]; readonly batches: T[][] };

/**
 * Pack items into as few `client_payload`s as fit, in order. `wrap` builds the payload for one
 * batch (it must use at most DISPATCH_MAX_KEYS top-level keys). An item too large to fit even
 * alone is reported in `tooLarge` and left out of every batch.
 *
 * `itemBytes`, when given, is the UTF-8 size of one item's JSON as `wrap` places it in the
 * payload's array (what `payloadBytes(wrap([item])) - payloadBytes(wrap([]))` would compute), so a
 * caller that knows it (or memoises it) spares a serialisation per item and call.
 */
export function splitForDispatch<T>(
  items: readonly T[],
  wrap: (batch: T[]) => Record<string, unknown>,
  maxBytes: number = DISPATCH_MAX_PAYLOAD_BYTES,
  itemBytes?: (item: T) => number,
): DispatchSplit<T> {
  const empty = wrap([]);
  const emptyKeys = Object.keys(empty).length;
  if (emptyKeys > DISPATCH_MAX_KEYS) throw new RangeError(`client_payload has ${emptyKeys} keys; GitHub allows ${DISPATCH_MAX_KEYS}`);
  const emptyBytes = payloadBytes(empty);
  const sizeOf = itemBytes ?? ((item: T) => payloadBytes(wrap([item])) - emptyBytes);
  const batches: T[][] = [];
  const tooLarge: T[] = [];
  let current: T[] = [];
  let currentBytes = emptyBytes;
  for (const item of items) {
    // Each item adds its own JSON plus a comma separator once the array is non-empty.
    const itemBytes = sizeOf(item);
    if (itemBytes + emptyBytes > maxBytes) {
      tooLarge.push(item);
      continue;
    }
    const added = itemBytes + (current.length > 0 ? 1 : 0);
    if (currentBytes + added > maxBytes) {
      batches.push(current);
      current = [item];
      currentBytes = emptyBytes + itemBytes;
    } else {
      current.push(item);
      currentBytes += added;
    }
  }
  if (current.length > 0) batches.push(current);
  return tooLarge.length > 0 ? { ok: false, tooLarge, batches } : { ok: true, batches };
}
