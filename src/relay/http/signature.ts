/**
 * Sauce Labs webhook signatures: `saucelabs-sign` is the hex HMAC-SHA256 of the raw request body,
 * keyed with the webhook's security token. Pure functions, no I/O.
 *
 * - Verified over the bytes as received, never over re-serialised JSON.
 * - Any of several secrets may match (rotation); the index of the one that did is returned so the
 *   caller can log it and an old secret can be retired once it stops matching.
 * - Compared in constant time (`timingSafeEqual` on two 32-byte buffers); every secret is tried,
 *   so the time taken does not say which one matched.
 * - An optional `sha256=` prefix and any hex case are accepted.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'saucelabs-sign';

const DIGEST_BYTES = 32;
const HEX_RE = /^[0-9a-fA-F]{64}$/;

/** Lowercase hex HMAC-SHA256 of `body`, as Sauce Labs computes it. Strings are taken as UTF-8. */
export function signBody(secret: string, body: Uint8Array | string): string {
  return createHmac('sha256', secret).update(body).digest('hex');
}

/** The 32 digest bytes a header claims, or null when it is not a well-formed signature. */
export function parseSignatureHeader(header: string | null | undefined): Buffer | null {
  if (typeof header !== 'string') return null;
  let text = header.trim();
  if (text.length === 71 && text.slice(0, 7).toLowerCase() === 'sha256=') text = text.slice(7);
  if (!HEX_RE.test(text)) return null;
  return Buffer.from(text, 'hex');
}

/**
 * Which secret signed `body`: its index in `secrets`, or -1 when none did (or the header is
 * missing or malformed, or there are no secrets).
 */
export function verifySignature(body: Uint8Array, header: string | null | undefined, secrets: readonly string[]): number {
  const claimed = parseSignatureHeader(header);
  if (claimed === null || claimed.length !== DIGEST_BYTES) return -1;
  let matched = -1;
  for (let i = 0; i < secrets.length; i += 1) {
    const secret = secrets[i];
    if (secret === undefined || secret === '') continue;
    const expected = createHmac('sha256', secret).update(body).digest();
    // Both are 32 bytes, so timingSafeEqual never throws; keep going after a match.
    if (timingSafeEqual(expected, claimed) && matched === -1) matched = i;
  }
  return matched;
}

/** Constant-time equality of two strings of any length (compares their SHA-256 HMACs). */
export function safeEqualText(a: string, b: string): boolean {
  const key = 'sauce-relay-compare';
  const ha = createHmac('sha256', key).update(a).digest();
  const hb = createHmac('sha256', key).update(b).digest();
  return timingSafeEqual(ha, hb);
}
