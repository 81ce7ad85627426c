/**
 * Request bodies in memory, bounded: each body is copied into one buffer whose whole capacity is
 * taken from a budget shared by every request of a server, and given back when the request ends
 * (answered, aborted or failed). Nothing here reads a socket; the server feeds the chunks.
 */

/** Why a body is not read on: over the per-request cap, or no room left in the shared budget. */
export type BodyRefusal = 'too_large' | 'over_budget';

/** Bytes of request bodies held in memory at once, over all requests of one server. */
export class BodyBudget {
  #held = 0;

  constructor(readonly limit: number) {}

  /** Bytes taken now. */
  held(): number {
    return this.#held;
  }

  /** Take `bytes`; false, and nothing taken, when that would pass the limit. */
  take(bytes: number): boolean {
    if (this.#held + bytes > this.limit) return false;
    this.#held += bytes;
    return true;
  }

  give(bytes: number): void {
    this.#held -= bytes;
  }
}

/** First capacity of a body sent without Content-Length (chunked); it doubles up to the cap. */
export const FIRST_CHUNKED_CAPACITY = 16 * 1024;

/** The capacity a body without a declared length needs next: doubling until `needed` fits, at most `cap`. */
export function nextCapacity(current: number, needed: number, cap: number): number {
  let capacity = Math.max(current, Math.min(FIRST_CHUNKED_CAPACITY, cap));
  while (capacity < needed) capacity *= 2;
  return Math.min(capacity, cap);
}

/**
 * One request's body. With a declared Content-Length the capacity is taken whole before the
 * first byte is read (a body that cannot fit is refused without reading it); without one, it is
 * taken as the body grows. The budget always holds at least the bytes allocated here.
 */
export class BodyBuffer {
  #buffer: Buffer | null = null;
  #size = 0;
  #taken = 0;
  /** Set once the body is dropped: the refusal, or 'released' after use. */
  #ended: BodyRefusal | 'released' | null = null;

  constructor(
    private readonly budget: BodyBudget,
    private readonly cap: number,
    private readonly declared: number | null,
  ) {}

  /** Before reading: refuse a declared length over the cap, or one the budget cannot hold. */
  open(): BodyRefusal | null {
    if (this.declared === null) return null;
    if (this.declared > this.cap) return 'too_large';
    if (this.declared === 0 || this.#taken > 0) return null;
    if (!this.budget.take(this.declared)) return 'over_budget';
    this.#taken = this.declared;
    return null;
  }

  /** Copy a chunk in; on a refusal the body is dropped and its share of the budget given back. */
  append(chunk: Uint8Array): BodyRefusal | null {
    if (this.#ended !== null) return this.#ended === 'released' ? 'over_budget' : this.#ended;
    const needed = this.#size + chunk.byteLength;
    if (needed > this.cap) return this.#refuse('too_large');
    // A declared length was taken whole by open(); allocate it with the first byte.
    if (this.#buffer === null && this.#taken > 0) this.#buffer = Buffer.allocUnsafeSlow(this.#taken);
    const capacity = this.#buffer?.length ?? 0;
    if (needed > capacity) {
      const next = nextCapacity(capacity, needed, this.cap);
      // The new buffer is taken from the budget before the old one is given back: both exist
      // while the bytes are copied.
      if (!this.budget.take(next)) return this.#refuse('over_budget');
      const grown = Buffer.allocUnsafeSlow(next);
      this.#buffer?.copy(grown, 0, 0, this.#size);
      this.budget.give(this.#taken);
      this.#buffer = grown;
      this.#taken = next;
    }
    this.#buffer!.set(chunk, this.#size);
    this.#size = needed;
    return null;
  }

  /** The bytes read so far (a view, valid until `release`). */
  bytes(): Buffer {
    return this.#buffer === null ? Buffer.alloc(0) : this.#buffer.subarray(0, this.#size);
  }

  /** Drop the body and give its share of the budget back. Safe to call more than once. */
  release(): void {
    this.#ended ??= 'released';
    this.#buffer = null;
    this.#size = 0;
    if (this.#taken > 0) this.budget.give(this.#taken);
    this.#taken = 0;
  }

  #refuse(reason: BodyRefusal): BodyRefusal {
    this.release();
    this.#ended = reason;
    return reason;
  }
}
