/**
 * Where the events come from, validated: the payload is the trust boundary.
 *
 * Accepted shapes (for `client_payload` and for the `payload` input alike):
 *  - the relay envelope `{ version: 1, events: [{ payload, id?, received_at?, route?, truncated?, relay? }] }`;
 *  - one raw Sauce event (a hand-made `curl` dispatch);
 *  - an array whose items are raw Sauce events or envelope items (`payload` input only in practice).
 */
import { z } from 'zod';
import { ENVELOPE_VERSION, envelopeSchema, relayedEventSchema, type RelayedEvent } from '../sauce/envelope.js';
import { describeIssues, parseSauceEvent, type FieldIssue, type SauceEvent } from '../sauce/event.js';
import { NO_NOTES, parseVisualNotes, type VisualNotes } from '../sauce/visual-notes.js';
import { isRecord } from '../sauce/json.js';

export interface IncomingEvent {
  /** Position in the delivered batch (0-based), for messages. */
  readonly index: number;
  readonly event: SauceEvent;
  /** Relay-assigned delivery id, when relayed. */
  readonly deliveryId: string | null;
  /** When the relay received it (epoch ms), when relayed; orders events that carry no time. */
  readonly receivedAt: number | null;
  readonly route: string | null;
  /** Text fields the relay cut to fit one dispatch (empty when none or not relayed). */
  readonly truncated: readonly TruncatedField[];
  /**
   * The relay's own notes beside a Visual event (the entry's `relay` field): the diffs it read, its
   * verdicts. Never Sauce's word; empty when none, not relayed, or malformed (parts left out).
   */
  readonly notes: VisualNotes;
}

/** A payload field the relay shortened, with its original size in UTF-8 bytes. */
export type TruncatedField = NonNullable<RelayedEvent['truncated']>[number];

export interface RejectedEvent {
  readonly index: number;
  readonly issues: readonly FieldIssue[];
}

export interface Extraction {
  readonly shape: 'envelope' | 'event' | 'array';
  readonly events: readonly IncomingEvent[];
  readonly rejected: readonly RejectedEvent[];
}

export type ExtractResult = { readonly ok: true; readonly value: Extraction } | { readonly ok: false; readonly error: string };

/**
 * The envelope with its items unchecked: each item is checked on its own (`parseItem`), so one
 * malformed item (say, a bad `truncated` list) is rejected with its field named and the others are
 * still written.
 */
const envelopeShape = envelopeSchema.extend({ events: z.array(z.unknown()) });

/** An envelope item rather than a raw event: it has `payload` and no Sauce identity fields. */
function looksRelayed(item: Record<string, unknown>): boolean {
  return 'payload' in item && !('data_type' in item) && !('build_id' in item);
}

function parseTime(value: string | undefined): number | null {
  if (value === undefined) return null;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? ms : null;
}

function parseItem(item: unknown, index: number): IncomingEvent | RejectedEvent {
  let payload: unknown = item;
  let deliveryId: string | null = null;
  let receivedAt: number | null = null;
  let route: string | null = null;
  let truncated: readonly TruncatedField[] = [];
  let notes: VisualNotes = NO_NOTES;
  if (isRecord(item) && looksRelayed(item)) {
    const relayed = relayedEventSchema.safeParse(item);
    if (!relayed.success) {
      return {
        index,
        issues: relayed.error.issues.map((i) => ({ field: i.path.map(String).join('.') || '(root)', message: i.message })),
      };
    }
    payload = relayed.data.payload;
    deliveryId = relayed.data.id ?? null;
    receivedAt = parseTime(relayed.data.received_at);
    route = relayed.data.route ?? null;
    truncated = relayed.data.truncated ?? [];
    notes = parseVisualNotes(relayed.data.relay);
  }
  const parsed = parseSauceEvent(payload);
  if (!parsed.ok) {
    const prefix = payload === item ? '' : 'payload.';
    return { index, issues: parsed.issues.map((i) => ({ field: prefix + i.field, message: i.message })) };
  }
  return { index, event: parsed.event, deliveryId, receivedAt, route, truncated, notes: parsed.event.kind === 'visual' ? notes : NO_NOTES };
}

function collect(items: readonly unknown[], shape: Extraction['shape']): Extraction {
  const events: IncomingEvent[] = [];
  const rejected: RejectedEvent[] = [];
  items.forEach((item, index) => {
    const r = parseItem(item, index);
    if ('event' in r) events.push(r);
    else rejected.push(r);
  });
  return { shape, events, rejected };
}

/** Extract events from an already-parsed JSON value. */
export function extractEvents(value: unknown): ExtractResult {
  if (Array.isArray(value)) return { ok: true, value: collect(value, 'array') };
  if (!isRecord(value)) return { ok: false, error: 'expected a JSON object or array of Sauce Labs events' };
  if ('events' in value || 'version' in value) {
    const env = envelopeShape.safeParse(value);
    if (!env.success) {
      if (value['version'] !== ENVELOPE_VERSION) {
        return { ok: false, error: `unsupported envelope version ${JSON.stringify(value['version'] ?? null)}: this action reads version ${ENVELOPE_VERSION}` };
      }
      return {
        ok: false,
        error: `invalid envelope: ${describeIssues(env.error.issues.map((i) => ({ field: i.path.map(String).join('.') || '(root)', message: i.message })))}`,
      };
    }
    return { ok: true, value: collect(env.data.events, 'envelope') };
  }
  return { ok: true, value: collect([value], 'event') };
}

/** Extract events from the `payload` input's JSON text. */
export function extractFromText(text: string): ExtractResult {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { ok: false, error: `payload input is not valid JSON: ${(error as Error).message}` };
  }
  return extractEvents(value);
}

export interface PayloadSource {
  readonly where: 'payload input' | 'client_payload';
  readonly result: ExtractResult;
}

/**
 * The `payload` input wins when set (workflow_dispatch replays); otherwise `client_payload` of a
 * repository_dispatch event. Anything else has no events to read.
 */
export function selectSource(payloadInput: string | null, eventName: string | undefined, eventJson: unknown): PayloadSource {
  if (payloadInput !== null) return { where: 'payload input', result: extractFromText(payloadInput) };
  if (eventName !== 'repository_dispatch') {
    return {
      where: 'client_payload',
      result: {
        ok: false,
        error: `no events: the workflow was triggered by ${eventName ?? 'an unknown event'}; run on repository_dispatch or set the payload input`,
      },
    };
  }
  const clientPayload = isRecord(eventJson) ? eventJson['client_payload'] : undefined;
  if (clientPayload === undefined || clientPayload === null) {
    return { where: 'client_payload', result: { ok: false, error: 'the repository_dispatch event has no client_payload' } };
  }
  return { where: 'client_payload', result: extractEvents(clientPayload) };
}
