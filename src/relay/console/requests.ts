/**
 * Requests that stored no event (refused, filtered, duplicate), recorded for the console: metadata
 * only (time, route, answer, reason, size, source address, a signature's first characters), never a
 * body and never a whole signature.
 *
 * They are kept in the store (`ConsoleStore.recordRequests`), so every relay on a shared database
 * shows every instance's, and a restart keeps them. Never on the request path: the handler hands a
 * refusal to `RequestRecorder.record`, which only keeps it in a bounded buffer (or counts it as
 * dropped); a timer writes the buffer in one transaction at most once per `flushEveryMs`, at most
 * `maxPerFlush` records each time. So a flood of unsigned requests costs at most one small write a
 * second and `maxPerFlush` records of memory, and the table stays within `maxCount` rows and
 * `maxAgeMs` (each write prunes it).
 */
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { truncateChars } from '../../github/limits.js';
import type { RefusedRequest } from '../http/handler.js';
import type { Logger } from '../logger.js';
import { factsOfEvent } from './derive.js';
import type { ConsoleStore, RequestRecord, RequestRetention } from './source.js';
import { type Timers, UNREF_TIMERS } from '../timers.js';

export const REQUEST_ID_PREFIX = 'req-';
/** Records kept at most (the table is pruned to this many at each write). */
const DEFAULT_MAX_REQUESTS = 10_000;
/** Records are forgotten after this. */
export const DEFAULT_MAX_REQUEST_AGE_MS = 24 * 3_600_000;
/** Records written at most per flush, so per second: more in between are dropped and counted. */
const DEFAULT_MAX_PER_FLUSH = 100;
const DEFAULT_FLUSH_EVERY_MS = 1_000;
const MAX_REASON_CHARS = 500;
const MAX_ISSUES = 20;
const SIGNATURE_SHOWN_CHARS = 8;
const MAX_SOURCE_CHARS = 100;
const MAX_ROUTE_CHARS = 100;
const MAX_REPO_CHARS = 140;

/** A signature as kept: its first 8 characters and `…`; a header of 8 characters or fewer is kept as `…` only. */
export function signaturePrefix(header: string | null | undefined): string | null {
  if (header === null || header === undefined) return null;
  const text = header.trim();
  return text.length > SIGNATURE_SHOWN_CHARS ? `${text.slice(0, SIGNATURE_SHOWN_CHARS)}…` : '…';
}

function isLoopback(address: string): boolean {
  const a = address.startsWith('::ffff:') ? address.slice(7) : address;
  return a === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a);
}

/**
 * Where a request came from: the peer address, or, when the peer is a proxy on this host (a
 * loopback address, as with the nginx example in deploy/), the last address in `X-Forwarded-For`:
 * the one that proxy appended. From any other peer the header is not trusted (anyone can send one).
 */
export function sourceAddress(peer: string | null, forwardedFor: string | null): string | null {
  if (peer === null || peer === '') return null;
  if (!isLoopback(peer) || !forwardedFor) return peer;
  const last = forwardedFor.split(',').at(-1)?.trim() ?? '';
  return isIP(last) !== 0 ? last : peer;
}

/** Pure: the record kept of a refused request (long text cut, a signature's first characters, the event's display fields). */
export function toRequestRecord(input: RefusedRequest, id: string): RequestRecord {
  const source = sourceAddress(input.peer, input.forwardedFor);
  return {
    id,
    receivedAt: input.receivedAt,
    route: input.route === null ? null : truncateChars(input.route, MAX_ROUTE_CHARS),
    repo: input.repo === null ? null : truncateChars(input.repo, MAX_REPO_CHARS),
    status: input.status,
    code: input.code,
    reason: truncateChars(input.reason, MAX_REASON_CHARS),
    bytes: Math.max(0, Math.floor(input.bytes)),
    source: source === null ? null : truncateChars(source, MAX_SOURCE_CHARS),
    signature: signaturePrefix(input.signature),
    issues: input.issues.slice(0, MAX_ISSUES).map((i) => ({ field: truncateChars(i.field, 200), message: truncateChars(i.message, 300) })),
    event: input.event ? factsOfEvent(input.event) : null,
    duplicateOf: input.duplicateOf,
  };
}

export interface RequestRecorderOptions {
  readonly store: Pick<ConsoleStore, 'recordRequests'>;
  readonly logger: Logger;
  /** Part of every id, so ids of two processes (or two runs) differ. Letters and digits; default random. */
  readonly idPrefix?: string;
  readonly now?: () => number;
  readonly timers?: Timers;
  readonly flushEveryMs?: number;
  readonly maxPerFlush?: number;
  readonly maxCount?: number;
  readonly maxAgeMs?: number;
  /** Refusals not recorded (over the rate, or their write failed): for a metric. */
  readonly onDropped?: (count: number) => void;
}

export class RequestRecorder {
  readonly retention: Omit<RequestRetention, 'now'>;
  private readonly o: RequestRecorderOptions;
  private readonly idPrefix: string;
  private readonly now: () => number;
  private readonly timers: Timers;
  private readonly flushEveryMs: number;
  private readonly maxPerFlush: number;
  private buffer: RequestRecord[] = [];
  private seq = 0;
  /** Dropped since the last flush (logged then). */
  private droppedSince = 0;
  private droppedTotal = 0;
  private timer: unknown = null;
  private writing: Promise<void> | null = null;
  private stopped = false;

  constructor(options: RequestRecorderOptions) {
    this.o = options;
    this.idPrefix = options.idPrefix ?? randomBytes(4).readUInt32BE(0).toString(36);
    if (!/^[A-Za-z0-9]{1,16}$/.test(this.idPrefix)) throw new Error('RequestRecorder: idPrefix must be 1-16 letters or digits');
    this.now = options.now ?? Date.now;
    this.timers = options.timers ?? UNREF_TIMERS;
    this.flushEveryMs = Math.max(1, options.flushEveryMs ?? DEFAULT_FLUSH_EVERY_MS);
    this.maxPerFlush = Math.max(1, Math.floor(options.maxPerFlush ?? DEFAULT_MAX_PER_FLUSH));
    this.retention = {
      maxAgeMs: Math.max(1, options.maxAgeMs ?? DEFAULT_MAX_REQUEST_AGE_MS),
      maxCount: Math.max(1, Math.floor(options.maxCount ?? DEFAULT_MAX_REQUESTS)),
    };
  }

  /** Refusals dropped so far (over the rate, or lost with a failed write). */
  get dropped(): number {
    return this.droppedTotal;
  }

  /** Records waiting for the next write (at most `maxPerFlush`). */
  get buffered(): number {
    return this.buffer.length;
  }

  /**
   * On the request path: keep the refusal for the next write, or count it as dropped when this
   * interval's share is taken. Only the kept ones are converted (`toRequestRecord`: cut texts, the
   * event's display fields), so a flood costs at most `maxPerFlush` conversions an interval and a
   * counter for the rest. Never throws, never waits.
   */
  record(input: RefusedRequest): void {
    if (this.stopped || this.buffer.length >= this.maxPerFlush) {
      this.drop(1);
      return;
    }
    try {
      this.seq += 1;
      this.buffer.push(toRequestRecord(input, `${REQUEST_ID_PREFIX}${this.idPrefix}-${this.seq.toString(36)}`));
    } catch (error) {
      this.drop(1);
      this.o.logger.warn({ err: error instanceof Error ? error.message : String(error) }, 'could not record a refused request');
      return;
    }
    if (this.timer === null && this.writing === null) this.timer = this.timers.setTimeout(() => void this.flush(), this.flushEveryMs);
  }

  /** Write what is buffered now (one transaction), prune the table, and say what was dropped. */
  flush(): Promise<void> {
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
    if (this.writing) return this.writing;
    const batch = this.buffer;
    this.buffer = [];
    const dropped = this.droppedSince;
    this.droppedSince = 0;
    if (dropped > 0) {
      this.o.logger.warn(
        { dropped, maxPerSecond: Math.round((this.maxPerFlush * 1000) / this.flushEveryMs) },
        'refused requests over the recording rate were not recorded',
      );
    }
    if (batch.length === 0) return Promise.resolve();
    this.writing = (async () => {
      try {
        await this.o.store.recordRequests(batch, { ...this.retention, now: this.now() });
      } catch (error) {
        this.drop(batch.length);
        this.o.logger.warn({ records: batch.length, err: error instanceof Error ? error.message : String(error) }, 'could not record refused requests');
      } finally {
        this.writing = null;
        // What arrived during the write waits for the next turn: at most one write per interval.
        if (this.buffer.length > 0 && !this.stopped) this.timer = this.timers.setTimeout(() => void this.flush(), this.flushEveryMs);
      }
    })();
    return this.writing;
  }

  /** Write what is left, then record nothing more. */
  async stop(): Promise<void> {
    if (this.writing) await this.writing;
    this.stopped = true;
    await this.flush();
  }

  private drop(count: number): void {
    this.droppedSince += count;
    this.droppedTotal += count;
    this.o.onDropped?.(count);
  }
}
