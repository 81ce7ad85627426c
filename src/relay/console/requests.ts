/**
 * Requests that stored no event (refused, filtered, duplicate), kept for the console: metadata
 * only (time, route, answer, reason, size, source address, a signature's first characters), never a
 * body and never a whole signature. Bounded by count (a ring buffer) and by age. Pure: the caller
 * gives the time; nothing here reads a clock, the network or the disk.
 *
 * One per process, in memory: a restart forgets them, and each relay process of a shared store
 * shows its own.
 */
import type { FieldIssue } from '../../sauce/event.js';
import { compareNewestFirst } from './derive.js';
import type { EventFacts, RequestCode, RequestRecord } from './source.js';

export const REQUEST_ID_PREFIX = 'req-';
export const DEFAULT_MAX_REQUESTS = 1000;
export const DEFAULT_MAX_REQUEST_AGE_MS = 24 * 3_600_000;
const MAX_REASON_CHARS = 500;
const MAX_ISSUES = 20;
const SIGNATURE_SHOWN_CHARS = 8;
const MAX_SOURCE_CHARS = 100;
const MAX_ROUTE_CHARS = 100;

/** What the request path knows of a request it answered without storing an event. */
export interface NewRequest {
  readonly receivedAt: number;
  readonly route: string | null;
  readonly repo?: string | null;
  readonly status: number;
  readonly code: RequestCode;
  readonly reason: string;
  readonly bytes: number;
  readonly source?: string | null;
  /** The `saucelabs-sign` header as received: only its first characters are kept. */
  readonly signature?: string | null;
  readonly issues?: readonly FieldIssue[];
  readonly event?: EventFacts | null;
  readonly duplicateOf?: string | null;
}

function cut(text: string, max: number): string {
  const chars = Array.from(text);
  return chars.length > max ? `${chars.slice(0, max - 1).join('')}…` : text;
}

/** A signature as kept: its first 8 characters and `…`; a header of 8 characters or fewer is kept as `…` only. */
export function signaturePrefix(header: string | null | undefined): string | null {
  if (header === null || header === undefined) return null;
  const text = header.trim();
  return text.length > SIGNATURE_SHOWN_CHARS ? `${text.slice(0, SIGNATURE_SHOWN_CHARS)}…` : '…';
}

export interface RequestLogOptions {
  /** Kept at most (default 1000). */
  readonly maxCount?: number;
  /** Forgotten after (default 24 h). */
  readonly maxAgeMs?: number;
  /** Part of each id, so ids of two processes (or two runs) differ. Letters and digits. */
  readonly idPrefix: string;
}

export class RequestLog {
  readonly maxCount: number;
  readonly maxAgeMs: number;
  private readonly idPrefix: string;
  /** The ring: `size` records, the oldest at `head`. */
  private readonly ring: (RequestRecord | undefined)[];
  private head = 0;
  private size = 0;
  private seq = 0;
  private dropped = 0;

  constructor(options: RequestLogOptions) {
    this.maxCount = Math.max(1, Math.floor(options.maxCount ?? DEFAULT_MAX_REQUESTS));
    this.maxAgeMs = Math.max(1, options.maxAgeMs ?? DEFAULT_MAX_REQUEST_AGE_MS);
    if (!/^[A-Za-z0-9]{1,16}$/.test(options.idPrefix)) throw new Error('RequestLog: idPrefix must be 1-16 letters or digits');
    this.idPrefix = options.idPrefix;
    this.ring = new Array<RequestRecord | undefined>(this.maxCount);
  }

  /** Keep a request's metadata (the oldest record goes when full); returns the record as kept. */
  record(input: NewRequest, now: number): RequestRecord {
    this.expire(now);
    this.seq += 1;
    const record: RequestRecord = {
      id: `${REQUEST_ID_PREFIX}${this.idPrefix}-${this.seq.toString(36)}`,
      receivedAt: input.receivedAt,
      route: input.route === null ? null : cut(input.route, MAX_ROUTE_CHARS),
      repo: input.repo ?? null,
      status: input.status,
      code: input.code,
      reason: cut(input.reason, MAX_REASON_CHARS),
      bytes: Math.max(0, Math.floor(input.bytes)),
      source: input.source ? cut(input.source, MAX_SOURCE_CHARS) : null,
      signature: signaturePrefix(input.signature),
      issues: (input.issues ?? []).slice(0, MAX_ISSUES).map((i) => ({ field: cut(i.field, 200), message: cut(i.message, 300) })),
      event: input.event ?? null,
      duplicateOf: input.duplicateOf ?? null,
    };
    if (this.size === this.maxCount) {
      this.head = (this.head + 1) % this.maxCount;
      this.size -= 1;
      this.dropped += 1;
    }
    this.ring[(this.head + this.size) % this.maxCount] = record;
    this.size += 1;
    return record;
  }

  /** The records younger than the age limit at `now`, newest first. */
  list(now: number): RequestRecord[] {
    this.expire(now);
    const out: RequestRecord[] = [];
    const since = now - this.maxAgeMs;
    for (let i = 0; i < this.size; i += 1) {
      const r = this.ring[(this.head + i) % this.maxCount]!;
      if (r.receivedAt >= since) out.push(r);
    }
    return out.sort(compareNewestFirst);
  }

  get(id: string, now: number): RequestRecord | null {
    return this.list(now).find((r) => r.id === id) ?? null;
  }

  /** Changes whenever a record is added or forgotten. */
  marker(now: number): string {
    this.expire(now);
    return `${this.seq.toString(36)}-${this.dropped.toString(36)}`;
  }

  /** Forget the records past the age limit, oldest first (arrival order is receipt order, give or take a slow request). */
  private expire(now: number): void {
    const since = now - this.maxAgeMs;
    while (this.size > 0) {
      const oldest = this.ring[this.head]!;
      if (oldest.receivedAt >= since) break;
      this.ring[this.head] = undefined;
      this.head = (this.head + 1) % this.maxCount;
      this.size -= 1;
      this.dropped += 1;
    }
  }
}
