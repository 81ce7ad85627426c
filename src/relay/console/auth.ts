/**
 * The console's sign-in, pure (the caller gives the time and the random bytes):
 *
 * - The admin token (`RELAY_ADMIN_TOKEN`, at least 32 characters) is compared in constant time.
 * - A session is a signed cookie, not server state, so every relay process behind one proxy
 *   accepts it and a restart signs nobody out: `<issuedAt base36>.<id base64url>.<HMAC base64url>`,
 *   HMAC-SHA256 keyed with a key derived from the token. Changing the token ends every session.
 *   It expires `ttlMs` after sign-in; signing out clears it from the browser (and this process
 *   refuses it until it expires).
 * - The cookie is `HttpOnly`, `SameSite=Strict`, `Path=/` and `Secure` when the request came over
 *   HTTPS (the proxy's `X-Forwarded-Proto: https`).
 * - A state-changing request with the cookie needs three things: `Origin` naming this host (and
 *   `Sec-Fetch-Site`, when the browser sends it, `same-origin`), and `X-CSRF-Token` equal to the
 *   session's CSRF token (an HMAC of the session id; the page reads it from `/api/session`).
 * - `Authorization: Bearer <token>` is the API's other way in (scripts): no cookie, so no CSRF.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { parse as parseCookie, serialize as serializeCookie } from 'cookie';
import { MIN_ADMIN_TOKEN_CHARS } from '../config/types.js';
import { safeEqualText } from '../http/signature.js';
import { type Headers, bearerToken, headerValue } from '../http/headers.js';

const SESSION_COOKIE = 'sauce_relay_console';
export const CSRF_HEADER = 'x-csrf-token';
export const DEFAULT_SESSION_TTL_MS = 8 * 3_600_000;
/** A session issued this far in the future (clock steps between processes) is still taken. */
const CLOCK_SKEW_MS = 5 * 60_000;

export interface Session {
  /** Random, base64url; the label in logs is its first 8 characters. */
  readonly id: string;
  readonly issuedAt: number;
  readonly expiresAt: number;
}

/** Who did something, for the log: `session:<first 8 of its id>` or `bearer`. */
export function actorOf(session: Session | null): string {
  return session ? `session:${session.id.slice(0, 8)}` : 'bearer';
}

export interface ConsoleKeys {
  readonly token: string;
  readonly sessionKey: Buffer;
}

export function consoleKeys(token: string): ConsoleKeys {
  if (token.length < MIN_ADMIN_TOKEN_CHARS) throw new Error(`the admin token must be at least ${MIN_ADMIN_TOKEN_CHARS} characters`);
  return { token, sessionKey: createHmac('sha256', token).update('sauce-relay console session key v1').digest() };
}

function mac(keys: ConsoleKeys, what: string): Buffer {
  return createHmac('sha256', keys.sessionKey).update(what).digest();
}

/** Constant-time: the token given at sign-in (or in `Authorization`) against the admin token. */
export function tokenMatches(keys: ConsoleKeys, given: string): boolean {
  return safeEqualText(given, keys.token);
}

/** `Authorization: Bearer <token>`: 'none' without the header, else whether it carries the token. */
export function bearer(keys: ConsoleKeys, header: string | undefined): 'none' | 'ok' | 'wrong' {
  if (header === undefined) return 'none';
  const token = bearerToken(header);
  return token !== undefined && tokenMatches(keys, token) ? 'ok' : 'wrong';
}

/** A new session's cookie value; `random` gives the id (16 bytes or more). */
export function issueSession(keys: ConsoleKeys, now: number, ttlMs: number, random: Buffer): { session: Session; value: string } {
  if (random.length < 16) throw new Error('issueSession: at least 16 random bytes');
  const id = random.toString('base64url');
  const issued = now.toString(36);
  const value = `${issued}.${id}.${mac(keys, `session.${issued}.${id}`).toString('base64url')}`;
  return { session: { id, issuedAt: now, expiresAt: now + ttlMs }, value };
}

/** The session a cookie value carries, or null: not ours, tampered with, expired, or revoked. */
export function readSession(keys: ConsoleKeys, value: string | undefined, now: number, ttlMs: number, revoked?: { has(id: string): boolean }): Session | null {
  if (!value) return null;
  const m = /^([0-9a-z]{1,12})\.([A-Za-z0-9_-]{22,86})\.([A-Za-z0-9_-]{43})$/.exec(value);
  if (!m) return null;
  const [, issued, id, signature] = m as unknown as [string, string, string, string];
  const expected = mac(keys, `session.${issued}.${id}`);
  const given = Buffer.from(signature, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
  const issuedAt = Number.parseInt(issued, 36);
  if (!Number.isSafeInteger(issuedAt) || issuedAt > now + CLOCK_SKEW_MS || now >= issuedAt + ttlMs) return null;
  if (revoked?.has(id)) return null;
  return { id, issuedAt, expiresAt: issuedAt + ttlMs };
}

export function csrfToken(keys: ConsoleKeys, session: Session): string {
  return mac(keys, `csrf.${session.id}`).toString('base64url');
}

export function csrfValid(keys: ConsoleKeys, session: Session, header: string | undefined): boolean {
  if (header === undefined) return false;
  const expected = mac(keys, `csrf.${session.id}`);
  const given = Buffer.from(header, 'base64url');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** The session cookie's value in a `Cookie` header. */
export function sessionCookieValue(headers: Headers): string | undefined {
  const raw = headerValue(headers, 'cookie');
  return raw ? parseCookie(raw)[SESSION_COOKIE] : undefined;
}

/** Whether the request came over HTTPS, as the proxy in front says (`X-Forwarded-Proto`). */
export function viaHttps(headers: Headers): boolean {
  return headerValue(headers, 'x-forwarded-proto')?.split(',')[0]?.trim().toLowerCase() === 'https';
}

export function sessionCookie(value: string, ttlMs: number, secure: boolean): string {
  return serializeCookie(SESSION_COOKIE, value, { httpOnly: true, sameSite: 'strict', secure, path: '/', maxAge: Math.floor(ttlMs / 1000) });
}

export function clearedSessionCookie(secure: boolean): string {
  return serializeCookie(SESSION_COOKIE, '', { httpOnly: true, sameSite: 'strict', secure, path: '/', maxAge: 0 });
}

/**
 * Why a cookie-carried state change is refused, or null when it comes from this origin's own page:
 * `Origin` must name the host the request was sent to (`Host`), and `Sec-Fetch-Site`, when sent,
 * must say `same-origin`.
 */
export function crossOrigin(headers: Headers): 'no_origin' | 'other_origin' | 'cross_site_fetch' | null {
  const site = headerValue(headers, 'sec-fetch-site');
  if (site !== undefined && site !== 'same-origin') return 'cross_site_fetch';
  const origin = headerValue(headers, 'origin');
  const host = headerValue(headers, 'host');
  if (origin === undefined || origin === 'null') return 'no_origin';
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return 'other_origin';
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || host === undefined || url.host.toLowerCase() !== host.toLowerCase()) return 'other_origin';
  return null;
}
