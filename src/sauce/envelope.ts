/**
 * The contract between the relay and the Action: the `client_payload` of a
 * `repository_dispatch`. Versioned so either side can evolve; at most 10 top-level keys and
 * under 64 KB (see src/github/limits.ts).
 *
 *   { "version": 1, "events": [ { "payload": <Sauce event JSON, verbatim>,
 *                                 "id": "<relay event id>", "received_at": "<ISO time>",
 *                                 "route": "<route name>" } ] }
 */
import { z } from 'zod';

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
