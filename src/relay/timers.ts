/**
 * The timers the relay's background parts (dispatcher, request recorder) schedule with: passed in,
 * so tests drive a clock instead of waiting on real time.
 */
export interface Timers {
  /** A callback may return a promise (a dispatcher cycle); the caller does not wait for it. */
  setTimeout(callback: () => unknown, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The global timers, unref'd: a pending timer never keeps the process alive (shutdown stops its owner). */
export const UNREF_TIMERS: Timers = {
  setTimeout(callback, ms) {
    const timer = setTimeout(callback, ms);
    timer.unref();
    return timer;
  },
  clearTimeout(handle) {
    clearTimeout(handle as NodeJS.Timeout);
  },
};
