/**
 * The load generator's request stream: realistic ~2 KB Sauce job bodies, each one distinct
 * (its own job id and modification_time) and signed here, so no receiver can answer from
 * dedup memory and every row pays the same signing cost on the client side.
 */
import { createHmac } from 'node:crypto';

export const BENCH_SECRET = 'bench-secret-0123456789abcdef';

const FILLER_ERROR = 'AssertionError: expected element [data-test=cart-total] to have text "3 items" but got "2 items"';
const FILLER_EXCEPTION = Array.from({ length: 9 }, (_, i) => `    at Context.<anonymous> (test/specs/cart.spec.js:${40 + i}:22)`).join('\n');

interface Template {
  readonly parts: readonly string[];
}

const templates = new Map<string, Template>();

/** Serialise the realistic job once per (build, failed) pair; each request only splices in its id and times. */
function template(build: string, failed: boolean): Template {
  const key = `${build}\u0000${failed}`;
  const cached = templates.get(key);
  if (cached) return cached;
  const text = JSON.stringify({
    id: '@ID@',
    creation_time: '2026-11-27T12:00:00Z',
    modification_time: '@TIME@',
    owner: 'ci-bot',
    owner_id: '3f1c0c2e9a8b4d6f8e7a6b5c4d3e2f10',
    org_id: '7a9e2b4c6d8f4a1b9c3e5d7f9a1b3c5d',
    team_id: 'b2d4f6a8c0e24b6d8f0a2c4e6a8c0e2f',
    team_name: 'Web QA',
    group_id: '5e7a9c1b3d5f4e7a9c1b3d5f7e9a1c3b',
    status: failed ? 'FAILED' : 'PASSED',
    passed: failed ? 0 : 1,
    name: 'checkout flow › step @N@ renders totals and applies coupon codes',
    browser_name: 'chrome',
    browser_version: '131.0.6778.85',
    os_name: 'Windows',
    os_version: '11',
    duration_sec: 97,
    visibility: 'TEAM',
    tags: ['e2e', 'smoke', 'ci:repo:acme/shop', 'ci:ref:feature/login', 'ci:ssha:9fceb02', 'ci:url:https://github.com/acme/shop/actions/runs/8235512345'],
    device: '',
    app: '',
    error: failed ? FILLER_ERROR : '',
    exception: failed ? FILLER_EXCEPTION : '',
    commit_id: '9fceb02d0ae598e95dc970b74767f19372d61af8',
    branch_name: 'feature/login',
    build,
    automation_backend: 'webdriver',
    data_type: 'vdc',
    sl_url: 'https://app.saucelabs.com/tests/@ID@',
    custom_data: { pr: 42, shard: 3, note: 'x'.repeat(900) },
  });
  const made = { parts: text.split(/@(?:ID|TIME|N)@/) };
  templates.set(key, made);
  return made;
}

/**
 * The bodies are dated from the moment the bench started, so the relay's stale check (job events
 * older than 24 h by their own time are answered 202 filtered) never turns them away, however
 * long ago this file was written or however many bodies a run sends.
 */
const STARTED_AT = Date.now();

/** A distinct job body: its own 32-hex id and modification_time (10 ms apart). About 2 KB. */
export function jobBody(seq: number, run: string, build = 'shop-web #1234'): string {
  const failed = seq % 7 === 0;
  const time = new Date(STARTED_AT + seq * 10).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const id = `${run}${seq.toString(16).padStart(12, '0')}`.slice(-32).padStart(32, '0');
  const [a, b, c, d, e] = template(build, failed).parts;
  return `${a}${id}${b}${time}${c}${seq % 50}${d}${id}${e}`;
}

export function sign(body: string, secret = BENCH_SECRET): string {
  return createHmac('sha256', secret).update(body, 'utf8').digest('hex');
}
