/**
 * A clock for the dispatcher that moves only when a test says so: `now` and `setTimeout` /
 * `clearTimeout` (Timers). `advance(ms)` runs every timer that falls due, in order, and
 * awaits each to completion (the dispatcher's timer callbacks return their cycle's promise), so a
 * test knows a cycle is over without sleeping, and what the dispatcher decides depends only on
 * this clock, never on how fast the machine is.
 */
import type { Timers } from '../../../../src/relay/timers.js';

interface Timer {
  readonly at: number;
  readonly seq: number;
  readonly callback: () => unknown;
}

export class ManualClock implements Timers {
  private t: number;
  private seq = 0;
  private readonly timers = new Map<number, Timer>();

  constructor(start = Date.UTC(2026, 0, 1, 12, 0, 0)) {
    this.t = start;
  }

  readonly now = (): number => this.t;

  setTimeout(callback: () => unknown, ms: number): unknown {
    const seq = ++this.seq;
    this.timers.set(seq, { at: this.t + Math.max(0, ms), seq, callback });
    return seq;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  /** Move time forward, running each timer due by then (earliest first) to completion. */
  async advance(ms = 0): Promise<void> {
    const target = this.t + ms;
    for (;;) {
      let next: Timer | undefined;
      for (const timer of this.timers.values())
        if (timer.at <= target && (!next || timer.at < next.at || (timer.at === next.at && timer.seq < next.seq))) next = timer;
      if (!next) break;
      this.timers.delete(next.seq);
      this.t = Math.max(this.t, next.at);
      await next.callback();
    }
    this.t = target;
  }

  /** Time passes without any timer running (e.g. while a request is in flight). */
  jump(ms: number): void {
    this.t += ms;
  }

  /** When the earliest timer is due (Infinity when none). */
  nextAt(): number {
    let at = Infinity;
    for (const timer of this.timers.values()) at = Math.min(at, timer.at);
    return at;
  }
}
