/**
 * A fetch-API handler (Cloudflare Workers with `nodejs_compat`, Vercel, Deno, Bun):
 *
 *   export default { fetch: createFetchHandler() };            // Workers / Bun
 *   export const POST = createFetchHandler({ env: process.env }); // Vercel
 *
 * Direct mode: no local store, each accepted event is dispatched inside the request; GitHub
 * failing → 503 with Retry-After (retryable) or 502, so the sender may retry. No deduplication
 * across requests (there is no store): the Action must tolerate repeats (at-least-once).
 */
import type { Env } from '../../config/index.js';
import type { RelayResponse } from '../handler.js';
import { isHealthz, lazyDirectCore, type DirectOptions } from './direct.js';

export type FetchHandler = (request: Request, env?: unknown) => Promise<Response>;

/** Read at most `cap` bytes of a body stream; past it, stop and cancel the stream. */
export async function readCapped(stream: ReadableStream<Uint8Array> | null, cap: number): Promise<{ body: Uint8Array; tooLarge: boolean }> {
  if (stream === null) return { body: new Uint8Array(0), tooLarge: false };
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > cap) {
      await reader.cancel().catch(() => undefined);
      return { body: new Uint8Array(0), tooLarge: true };
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return { body: chunks[0]!, tooLarge: false };
  const body = new Uint8Array(size);
  let offset = 0;
  for (const c of chunks) {
    body.set(c, offset);
    offset += c.byteLength;
  }
  return { body, tooLarge: false };
}

function toResponse(r: RelayResponse): Response {
  return new Response(r.body, { status: r.status, headers: r.headers });
}

function stringEnv(env: unknown): Env | undefined {
  if (typeof env !== 'object' || env === null) return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (typeof v === 'string') out[k] = v;
  return out;
}

export function createFetchHandler(options: DirectOptions = {}): FetchHandler {
  const core = lazyDirectCore(options);
  return async (request, env) => {
    const path = new URL(request.url).pathname;
    if (isHealthz(request.method, path)) return toResponse({ status: 200, headers: { 'content-type': 'application/json' }, body: '{"status":"ok"}' });
    const built = core(stringEnv(env));
    if (!built.ok) return toResponse(built.response);
    const { handler, bodyLimitBytes } = built.core;
    const pre = handler.preflight(request.method, path);
    if (!pre.ok) return toResponse(pre.response);
    const { body, tooLarge } = await readCapped(request.body, bodyLimitBytes);
    const signature = request.headers.get('saucelabs-sign');
    const response = await handler.handle(
      { method: request.method, path, headers: signature === null ? {} : { 'saucelabs-sign': signature }, body, bodyTooLarge: tooLarge },
      pre.route,
    );
    return toResponse(response);
  };
}
