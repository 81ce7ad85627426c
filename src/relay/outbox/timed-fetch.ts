/**
 * `fetch` with a deadline that covers connect, headers and body, and optional other signals that
 * also abort it (a caller's, the relay's shutdown).
 *
 * One AbortController and a plain timer, on purpose: `AbortSignal.any()` can lose a timeout signal
 * to garbage collection in Node 20-23 (nodejs/node#57736), and a request to a hung server would
 * then wait forever. The timer is unref'd and left to run after a success, so a body that stalls
 * after the headers is cut too; aborting a finished request does nothing.
 */
export type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

export function fetchWithTimeout(
  input: string | URL | Request,
  init: RequestInit | undefined,
  timeoutMs: number,
  also: AbortSignal | null = null,
): Promise<Response> {
  const controller = new AbortController();
  const signals = [init?.signal, also].filter((s): s is AbortSignal => s !== null && s !== undefined);
  const onAbort = (event: Event): void => controller.abort((event.target as AbortSignal).reason);
  const detach = (): void => {
    for (const s of signals) s.removeEventListener('abort', onAbort);
  };
  const timer = setTimeout(() => {
    detach();
    controller.abort(new DOMException(`request timed out after ${timeoutMs} ms`, 'TimeoutError'));
  }, timeoutMs);
  timer.unref();
  for (const s of signals) {
    if (s.aborted) controller.abort(s.reason);
    else s.addEventListener('abort', onAbort, { once: true });
  }
  return fetch(input, { ...init, signal: controller.signal }).catch((error: unknown) => {
    clearTimeout(timer);
    detach();
    throw error;
  });
}

/** A `fetch` for libraries that take one (Octokit): every request gets the deadline. */
export function timedFetch(timeoutMs: number): FetchLike {
  return (input, init) => fetchWithTimeout(input, init, timeoutMs);
}
