/**
 * The contract between the relay and the Action: the `client_payload` of a
 * `repository_dispatch`. Versioned so either side can evolve; at most 10 top-level keys and
 * under 64 KB (see src/github/limits.ts).
 *
 *   { "version": 1, "events": [ { "payload": <Sauce event JSON, verbatim>,
 *                                 "id": "<relay event id>", "received_at": "<ISO time>",
 *                                 "route": "<route name>", "relay": { <the relay's notes> } } ] }
 *
 * `relay` is what the relay itself says beside Sauce's event (the stored event's `extra`): for a
 * Visual build, the snapshots that changed and the relay's verdicts (src/sauce/visual-notes.ts).
 * It is never mixed into `payload`, so a reader always knows whose word it reads.
 */
import { z } from 'zod';
import { DISPATCH_MAX_PAYLOAD_BYTES, utf8Bytes } from '../github/limits.js';
import { jobEventSchema, visualEventSchema } from './schema.js';
import { isRecord } from './json.js';

export const ENVELOPE_VERSION = 1;

export const relayedEventSchema = z.looseObject({
  payload: z.unknown(),
  /** Relay-assigned id of the stored event (stable across redeliveries). */
  id: z.string().optional(),
  /** When the relay received the webhook, ISO 8601. */
  received_at: z.string().optional(),
  /** The relay route that accepted it. */
  route: z.string().optional(),
  /**
   * Text fields the relay shortened so the event fits one dispatch: the field name as in the Sauce
   * payload and its original UTF-8 size. The payload's value then ends with the relay's marker.
   */
  truncated: z.array(z.object({ field: z.string().min(1), bytes: z.number().int().nonnegative() })).optional(),
  /**
   * The relay's own notes about the event (a JSON object), beside the verbatim payload. Unchecked
   * here: a reader takes the parts it knows and leaves out a malformed part, never the event.
   */
  relay: z.unknown().optional(),
});
export type RelayedEvent = z.infer<typeof relayedEventSchema>;

export const envelopeSchema = z.looseObject({
  version: z.literal(ENVELOPE_VERSION),
  events: z.array(relayedEventSchema),
});
export type DispatchEnvelope = z.infer<typeof envelopeSchema>;

export function makeEnvelope(events: RelayedEvent[]): DispatchEnvelope {
  return { version: ENVELOPE_VERSION, events };
}

/** What the relay adds to each event in the envelope. */
export interface EntryMeta {
  readonly id: string;
  readonly received_at: string;
  readonly route: string;
  /** The relay's notes (the stored event's `extra`, parsed), kept whole: never shortened. */
  readonly relay?: Record<string, unknown>;
}

/** One field shortened (or, for a field the Action does not read, left out) to fit the dispatch. */
export interface TruncatedField {
  /** Path in the event: `exception`, `tags[3]`, `custom.log`. */
  readonly field: string;
  /** UTF-8 size of the original: the string's, or the JSON text's for a field left out. */
  readonly bytes: number;
}

export type EntryResult =
  | { readonly ok: true; readonly entry: RelayedEvent; readonly bytes: number; readonly truncated: readonly TruncatedField[] }
  | { readonly ok: false; readonly code: 'not_object' | 'too_large'; readonly reason: string };

/** Ends every shortened string, so a reader sees where the cut is. */
export const TRUNCATION_MARKER = '…[truncated by the relay]';
/** `{"version":1,"events":[]}`: what the envelope costs around its entries. */
export const EMPTY_ENVELOPE_BYTES = utf8Bytes(JSON.stringify(makeEnvelope([])));
/** The largest entry that still fits alone in one `client_payload`. */
export const ENTRY_MAX_BYTES = DISPATCH_MAX_PAYLOAD_BYTES - EMPTY_ENVELOPE_BYTES;
/** A stored event's id, as long as the store's (UUIDs): the door sizes an entry before the store names it. */
export const STORED_ID_PLACEHOLDER = '00000000-0000-0000-0000-000000000000';
/** More shortened fields than this are listed as one last record, `(N more)`, so the list stays small. */
export const MAX_TRUNCATED_RECORDS = 20;

/**
 * Fields the Action needs whole (which job or build, its commit, its status and times, its name):
 * never shortened. Tags starting `ci:` (saucectl's commit, branch and repository) are kept whole too.
 */
const KEPT_WHOLE: ReadonlySet<string> = new Set([
  'id',
  'build_id',
  'status',
  'passed',
  'data_type',
  'commit_id',
  'branch_name',
  'branch',
  'build',
  'build_name',
  'name',
  'creation_time',
  'modification_time',
  'data_center',
  'project',
  'summary',
]);
const TAG_FIELDS: ReadonlySet<string> = new Set(['tags', 'team_ids']);
/** Shortened first, in this order: the long text of a failing job. */
const CUT_FIRST = ['exception', 'error'];
/** Every field either schema knows: never left out (their text may still be shortened). */
const KNOWN: ReadonlySet<string> = new Set([...Object.keys(jobEventSchema.shape), ...Object.keys(visualEventSchema.shape)]);

/** UTF-8 size of a string as a JSON string literal (quotes and escapes included). */
function literalBytes(text: string): number {
  return utf8Bytes(JSON.stringify(text));
}

/** UTF-8 bytes one code point takes inside a JSON string literal. */
function escapedBytes(ch: string): number {
  const code = ch.codePointAt(0) ?? 0;
  if (code >= 0x20 && code < 0x7f && ch !== '"' && ch !== '\\') return 1;
  return utf8Bytes(JSON.stringify(ch)) - 2;
}

/**
 * The longest prefix of `text` (whole code points) followed by the marker whose JSON literal takes
 * at most `maxLiteralBytes`; the marker alone when even that does not fit.
 */
export function cutToLiteralBytes(text: string, maxLiteralBytes: number): string {
  const budget = maxLiteralBytes - literalBytes(TRUNCATION_MARKER);
  let used = 0;
  let end = 0;
  if (budget > 0) {
    for (const ch of text) {
      const size = escapedBytes(ch);
      if (used + size > budget) break;
      used += size;
      end += ch.length;
    }
  }
  return text.slice(0, end) + TRUNCATION_MARKER;
}

interface Candidate {
  readonly top: string;
  readonly field: string;
  readonly parent: Record<string, unknown> | unknown[];
  readonly key: string | number;
  readonly original: string;
  literal: number;
}

/** Every string that may be shortened, with where it sits. */
function candidates(payload: Record<string, unknown>): Candidate[] {
  const found: Candidate[] = [];
  const walk = (value: unknown, top: string, field: string, parent: Record<string, unknown> | unknown[], key: string | number): void => {
    if (typeof value === 'string') {
      const literal = literalBytes(value);
      // Only strings longer than the marker: shortening anything else saves nothing.
      if (literal > literalBytes(TRUNCATION_MARKER)) found.push({ top, field, parent, key, original: value, literal });
    } else if (Array.isArray(value)) {
      value.forEach((item, i) => {
        if (!(TAG_FIELDS.has(top) && field === top && typeof item === 'string' && item.startsWith('ci:'))) walk(item, top, `${field}[${i}]`, value, i);
      });
    } else if (isRecord(value)) {
      for (const [k, v] of Object.entries(value)) walk(v, top, `${field}.${k}`, value, k);
    }
  };
  for (const [k, v] of Object.entries(payload)) if (!KEPT_WHOLE.has(k)) walk(v, k, k, payload, k);
  const rank = (c: Candidate): number => {
    const first = c.field === c.top ? CUT_FIRST.indexOf(c.top) : -1;
    return first === -1 ? CUT_FIRST.length : first;
  };
  // exception, then error, then the longest first (stable: ties keep document order).
  return found.sort((a, b) => rank(a) - rank(b) || b.literal - a.literal);
}

/**
 * The fields shortened or left out so far. As sent, at most MAX_TRUNCATED_RECORDS: the rest fold
 * into one `(N more)` record, so the list itself stays small however many fields were cut.
 */
class Records {
  private readonly all: { field: string; bytes: number; top: string; alive: boolean }[] = [];
  private readonly byTop = new Map<string, number[]>();
  private alive = 0;
  private sum = 0;

  add(field: string, bytes: number, top: string): void {
    const at = this.all.push({ field, bytes, top, alive: true }) - 1;
    const list = this.byTop.get(top);
    if (list) list.push(at);
    else this.byTop.set(top, [at]);
    this.alive += 1;
    this.sum += bytes;
  }

  /** Forget the records inside a field that is left out whole. */
  dropTop(top: string): void {
    for (const at of this.byTop.get(top) ?? []) {
      const r = this.all[at]!;
      if (!r.alive) continue;
      r.alive = false;
      this.alive -= 1;
      this.sum -= r.bytes;
    }
    this.byTop.delete(top);
  }

  list(extra?: TruncatedField): TruncatedField[] {
    const total = this.alive + (extra ? 1 : 0);
    const head: TruncatedField[] = [];
    const room = total <= MAX_TRUNCATED_RECORDS ? MAX_TRUNCATED_RECORDS : MAX_TRUNCATED_RECORDS - 1;
    for (const r of this.all) {
      if (head.length === room) break;
      if (r.alive) head.push({ field: r.field, bytes: r.bytes });
    }
    if (extra && head.length < room) head.push(extra);
    if (total <= MAX_TRUNCATED_RECORDS) return head;
    const headBytes = head.reduce((n, r) => n + r.bytes, 0);
    return [...head, { field: `(${total - head.length} more)`, bytes: this.sum + (extra?.bytes ?? 0) - headBytes }];
  }

  /** Bytes `,"truncated":[...]` adds to an entry (0 without records). */
  bytes(extra?: TruncatedField): number {
    return this.alive === 0 && !extra ? 0 : utf8Bytes(`,"truncated":${JSON.stringify(this.list(extra))}`);
  }
}

/**
 * One event's entry in a `client_payload`, sized to fit one dispatch alone (`maxBytes`, by default
 * what the envelope leaves of GitHub's 64 KB). Pure; never changes `payload`.
 *
 * An entry that fits carries the event as parsed (see README, "The envelope", for what JSON parsing
 * changes). One that does not is shortened, so that an accepted event is never lost for its size:
 *   1. long strings are cut, each only as much as still needed, with TRUNCATION_MARKER at the cut:
 *      `exception`, then `error`, then every other string longest first; never the fields in
 *      KEPT_WHOLE nor `ci:` tags;
 *   2. if that is not enough, fields neither event schema knows are left out, largest first;
 *   3. if even that is not enough, the fields the Action needs are themselves over the limit (e.g. a
 *      64 KB `name` or thousands of tags): `too_large`. The relay refuses such a body at the door
 *      (413), so no accepted event ends here.
 * The relay's notes (`meta.relay`) are kept whole: whoever adds them sizes them first with this
 * same function (Visual refresh cuts its list of diffs until the entry fits, see fitNotes).
 * Each shortened or left-out field is listed in `truncated` with its original size.
 */
export function envelopeEntry(payload: unknown, meta: EntryMeta, maxBytes: number = ENTRY_MAX_BYTES): EntryResult {
  if (!isRecord(payload)) return { ok: false, code: 'not_object', reason: 'the event is not a JSON object' };
  const relay = meta.relay ? { relay: meta.relay } : {};
  const whole: RelayedEvent = { payload, id: meta.id, received_at: meta.received_at, route: meta.route, ...relay };
  const wholeBytes = utf8Bytes(JSON.stringify(whole));
  if (wholeBytes <= maxBytes) return { ok: true, entry: whole, bytes: wholeBytes, truncated: [] };

  const copy = structuredClone(payload);
  let size = wholeBytes;
  const records = new Records();
  const fits = (): boolean => size + records.bytes() <= maxBytes;

  // 1. Cut strings, each only as much as still needed.
  for (const c of candidates(copy)) {
    if (fits()) break;
    const record = { field: c.field, bytes: utf8Bytes(c.original) };
    const over = size + records.bytes(record) - maxBytes;
    const cut = cutToLiteralBytes(c.original, c.literal - over);
    const cutLiteral = literalBytes(cut);
    if (cutLiteral >= c.literal) continue;
    (c.parent as Record<string | number, unknown>)[c.key] = cut;
    size += cutLiteral - c.literal;
    records.add(record.field, record.bytes, c.top);
  }

  // 2. Leave out fields no schema knows, largest first.
  if (!fits()) {
    const unknown = Object.keys(copy)
      .filter((k) => !KNOWN.has(k))
      .map((k) => ({ key: k, bytes: utf8Bytes(JSON.stringify(copy[k]) ?? 'null') }))
      .sort((a, b) => b.bytes - a.bytes);
    let keys = Object.keys(copy).length;
    for (const { key, bytes } of unknown) {
      if (fits()) break;
      delete copy[key];
      // `"key":value`, and the comma that joined it to a neighbour.
      size -= literalBytes(key) + 1 + bytes + (keys > 1 ? 1 : 0);
      keys -= 1;
      records.dropTop(key);
      records.add(key, utf8Bytes(JSON.stringify(payload[key]) ?? 'null'), key);
    }
  }

  const truncated = records.list();
  const entry: RelayedEvent = { payload: copy, id: meta.id, received_at: meta.received_at, route: meta.route, ...relay, truncated };
  const bytes = utf8Bytes(JSON.stringify(entry));
  if (bytes > maxBytes) {
    return {
      ok: false,
      code: 'too_large',
      reason: `the fields the Action needs take ${bytes} bytes even with every other field shortened or left out; one repository_dispatch holds ${maxBytes}`,
    };
  }
  return { ok: true, entry, bytes, truncated };
}
