/**
 * Checks on parsed JSON values, for every part that reads them: the event model (src/sauce), the
 * Action's payload and the relay's configuration file.
 */

/** A JSON object: not null, and not an array (which `typeof` also calls an object). */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
