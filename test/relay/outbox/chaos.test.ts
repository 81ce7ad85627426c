/**
 * Several relay processes on one PostgreSQL database behind a round-robin sender (a load balancer
 * that tries the next instance when one refuses the connection), dispatching to the GitHub API
 * double. `node scripts/chaos.js` runs this file with a bigger burst and prints what it counts.
 *
 * - kill -9 one of three instances in the middle of a burst: every acknowledged event is
 *   dispatched; the events dispatched more than once are counted and printed, and each of them was
 *   in a dispatch that reached GitHub around the kill (in flight: sent, not yet marked).
 * - PostgreSQL restarts in the middle of a burst: the answers during the gap are 503 + Retry-After,
 *   /readyz says why, nothing acknowledged is lost, the same processes carry on.
 * - Dispatch economy: one build of 200 job events spread over three instances leaves in at most
 *   3 dispatches.
 * - `outbox retry` on a dead letter reaches a dispatcher on a running instance in about a second.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { envelopeSchema } from '../../../src/sauce/envelope.js';
import { signBody } from '../../../src/relay/http/signature.js';
import { startGitHubDouble, type GitHubDouble } from '../../support/github-double.js';
import { postgresAvailable, startPostgres, type PostgresServer } from '../../support/postgres.js';
import { REPO_ROOT, sauceFixture, waitFor } from '../support/common.js';
import { ensureBuilt, postSigned, request, startRelayProcess, type HttpAnswer, type RelayProcess } from '../support/process.js';

const run = promisify(execFile);
const SECRET = 'chaos-secret-0123456789';
const REPO = 'acme/web';
const DISPATCH = 'POST /repos/{owner}/{repo}/dispatches';
/** Events in the kill -9 burst (at least 300; `node scripts/chaos.js --events N` sets more). */
const EVENTS = Math.max(300, Number(process.env.CHAOS_EVENTS ?? 300));
const SENDERS = 12;

// Without PostgreSQL these are skipped; postgres-store.test.ts prints the one line that says so.

/** A distinct job event of one build (own id and modification_time), the fixture's size (~0.9 KB). */
function jobEvent(id: string): Buffer {
  const base = JSON.parse(sauceFixture('job-vdc-passed.json').toString('utf8')) as Record<string, unknown>;
  return Buffer.from(JSON.stringify({ ...base, id, modification_time: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z') }, null, 1));
}

interface Sent {
  readonly jobId: string;
  /** The answer that counted (after trying the next instance on a refused connection), or null when none answered. */
  readonly answer: HttpAnswer | null;
}

/**
 * A load balancer in front of `targets()`: each event goes to the next instance in turn; a refused
 * or reset connection is tried on the following one (up to once per instance), as a proxy does.
 * `onSent(n)` runs after each event's answer.
 */
async function roundRobin(targets: () => RelayProcess[], jobIds: string[], onSent: (n: number) => Promise<void> | void = () => undefined): Promise<Sent[]> {
  const results: Sent[] = new Array(jobIds.length);
  let next = 0;
  let turn = 0;
  let done = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= jobIds.length) return;
      const body = jobEvent(jobIds[i]!);
      let answer: HttpAnswer | null = null;
      const list = targets();
      for (let attempt = 0; attempt < list.length && answer === null; attempt++) {
        const target = list[turn++ % list.length]!;
        answer = await postSigned(`${target.url}/webhook`, body, signBody(SECRET, body)).catch(() => null);
      }
      results[i] = { jobId: jobIds[i]!, answer };
      await onSent(++done);
    }
  };
  await Promise.all(Array.from({ length: SENDERS }, worker));
  return results;
}

const acknowledged = (sent: Sent[]) => sent.filter((s) => s.answer !== null && (s.answer.status === 202 || s.answer.status === 200)).map((s) => s.jobId);

(postgresAvailable() ? describe : describe.skip)('three relays on one PostgreSQL database', () => {
  let server: PostgresServer;
  let admin: pg.Pool;
  let double: GitHubDouble;
  /** When each dispatch reached the double, with its job ids, in order. */
  let arrivals: { at: number; jobIds: string[] }[] = [];
  /** The next dispatches the double refuses with 422 (GitHub's answer to a payload it will never take). */
  let rejectNext = 0;
  /** Called with each dispatch's token (which instance sent it) and job ids, as it reaches the double. */
  let onDispatch: (token: string, jobIds: string[]) => void = () => undefined;
  const running: RelayProcess[] = [];
  let databases = 0;

  beforeAll(async () => {
    ensureBuilt();
    [server, double] = await Promise.all([startPostgres(), startGitHubDouble()]);
    admin = new pg.Pool({ connectionString: server.url, max: 1 });
    admin.on('error', () => undefined);
  }, 120_000);

  afterAll(async () => {
    await Promise.all(running.map((r) => r.kill('SIGKILL')));
    await admin?.end();
    await double?.close();
    await server?.close();
  }, 60_000);

  /** A fresh database on the server, and the GitHub double recording when each dispatch arrives. */
  async function freshDatabase(): Promise<string> {
    const name = `chaos_${++databases}`;
    await admin.query(`CREATE DATABASE ${name}`);
    double.reset();
    arrivals = [];
    rejectNext = 0;
    onDispatch = () => undefined;
    double.setInterceptor((req) => {
      if (req.route !== DISPATCH) return undefined;
      if (rejectNext > 0) {
        rejectNext -= 1;
        return { status: 422, body: { message: 'Validation Failed' } };
      }
      const env = envelopeSchema.parse((req.body as { client_payload: unknown }).client_payload);
      const jobIds = env.events.map((e) => String((e.payload as { id: unknown }).id));
      arrivals.push({ at: Date.now(), jobIds });
      onDispatch(String(req.headers.authorization ?? ''), jobIds);
      // Handled (recorded) at once, answered a little later: a dispatch is "in flight" for a while.
      return { status: 204, afterHandling: true, delayMs: 200 };
    });
    const url = new URL(server.url);
    url.pathname = `/${name}`;
    return url.href;
  }

  async function relays(databaseUrl: string, n: number, extra: Record<string, string> = {}): Promise<RelayProcess[]> {
    const started = await Promise.all(
      Array.from({ length: n }, (_, k) =>
        startRelayProcess({
          env: {
            SAUCE_WEBHOOK_SECRET: SECRET,
            // One token per instance: the double tells which instance sent a dispatch.
            GITHUB_TOKEN: `ghs_chaos_${k}`,
            GITHUB_API_URL: double.url,
            GITHUB_REPOSITORY: REPO,
            RELAY_DATABASE_URL: databaseUrl,
            RELAY_GROUP_WINDOW: '300ms',
            RELAY_LEASE: '3s',
            ...extra,
          },
          timeoutMs: 30_000,
        }),
      ),
    );
    running.push(...started);
    return started;
  }

  /** How many times each job id was dispatched. */
  function dispatchCounts(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const a of arrivals) for (const id of a.jobIds) counts.set(id, (counts.get(id) ?? 0) + 1);
    return counts;
  }

  async function stopAll(list: RelayProcess[]): Promise<void> {
    await Promise.all(list.map((r) => r.kill('SIGKILL')));
    for (const r of list) running.splice(running.indexOf(r), 1);
  }

  it(`kill -9 one of three instances in a burst of ${EVENTS} events: every acknowledged event is dispatched`, async () => {
    const instances = await relays(await freshDatabase(), 3);
    // Once half the burst is answered, the next instance to send a dispatch is killed while GitHub
    // holds its request: sent, not yet marked delivered. Its lease then runs out and another
    // instance sends what it held, so those events (and only those) may arrive twice.
    let armed = false;
    let victim: RelayProcess | null = null;
    let killedAt = 0;
    let inFlight: string[] = [];
    onDispatch = (token, jobIds) => {
      if (!armed || victim) return;
      victim = instances[Number(token.split('_').at(-1))]!;
      victim.child.kill('SIGKILL');
      killedAt = Date.now();
      inFlight = jobIds;
    };
    const startedAt = Date.now();
    const sent = await roundRobin(
      () => instances.filter((r) => r !== victim),
      Array.from({ length: EVENTS }, (_, i) => `kill-${i}`),
      (n) => {
        if (n === Math.floor(EVENTS / 2)) armed = true;
      },
    );
    await waitFor(() => victim !== null, 30_000, 'a dispatch after half the burst');
    const acked = acknowledged(sent);
    // A sender only loses the requests the dying instance was holding open (no answer at all).
    expect(sent.filter((s) => s.answer !== null && !acked.includes(s.jobId))).toEqual([]);
    expect(acked.length).toBeGreaterThanOrEqual(EVENTS - SENDERS);
    await waitFor(
      () => acked.every((id) => dispatchCounts().has(id)) && inFlight.every((id) => dispatchCounts().get(id)! > 1),
      60_000,
      'every acknowledged event dispatched, the ones in flight at the kill again',
    );
    const counts = dispatchCounts();
    const repeated = [...counts].filter(([, n]) => n > 1).map(([id]) => id);
    console.log(
      `chaos (kill -9): ${EVENTS} events sent, ${acked.length} acknowledged and all dispatched; an instance killed ${killedAt - startedAt} ms into the burst ` +
        `with a dispatch of ${inFlight.length} events in flight; ${repeated.length} events dispatched more than once; ${arrivals.length} dispatches; ` +
        `${sent.length - sent.filter((s) => s.answer).length} requests without an answer (open on the killed instance)`,
    );
    // Only what the killed instance had sent and not yet marked may repeat.
    expect(repeated.filter((id) => !inFlight.includes(id))).toEqual([]);
    expect(killedAt).toBeGreaterThan(0);
    expect(double.violations).toEqual([]);
    await stopAll(instances);
  }, 180_000);

  it('PostgreSQL restarts in the middle of a burst: 503 + Retry-After meanwhile, nothing acknowledged lost, the relays recover by themselves', async () => {
    if (process.env.RELAY_TEST_DATABASE_URL) return;
    const instances = await relays(await freshDatabase(), 3);
    let gap: { readyz: HttpAnswer[] } | null = null;
    const outage = (async () => {
      // Starts once a third of the burst is answered; the server stays down ~1.5 s.
      await waitFor(() => arrivals.length > 0, 30_000, 'the first dispatch');
      await server.stop();
      gap = { readyz: await Promise.all(instances.map((r) => request(`${r.url}/readyz`, { method: 'GET' }))) };
      await new Promise((r) => setTimeout(r, 1_500));
      await server.start();
    })();
    const sent = await roundRobin(
      () => instances,
      Array.from({ length: 400 }, (_, i) => `restart-${i}`),
    );
    await outage;
    const statuses = sent.map((s) => s.answer?.status ?? 0);
    const refused = sent.filter((s) => s.answer?.status === 503);
    console.log(`chaos (database restart): 400 events sent, ${acknowledged(sent).length} acknowledged, ${refused.length} answered 503 during the gap`);
    // Only stored (202) or refused with a retry hint (503): never an error page, never silence.
    expect(new Set(statuses.filter((s) => s !== 202 && s !== 503))).toEqual(new Set());
    for (const r of refused) expect(r.answer?.headers['retry-after']).toBe('5');
    for (const r of gap!.readyz) {
      expect(r.status).toBe(503);
      expect(JSON.parse(r.body)).toMatchObject({ ready: false, code: 'unreachable' });
    }
    const acked = acknowledged(sent);
    await waitFor(() => acked.every((id) => dispatchCounts().has(id)), 60_000, 'every acknowledged event dispatched');
    // The same processes, ready again and storing new events without a restart.
    for (const r of instances) {
      expect(r.child.exitCode).toBeNull();
      await waitFor(async () => (await request(`${r.url}/readyz`, { method: 'GET' })).status === 200, 15_000, 'ready again');
    }
    const after = await roundRobin(() => instances, ['after-1', 'after-2', 'after-3']);
    expect(after.map((s) => s.answer?.status)).toEqual([202, 202, 202]);
    await waitFor(() => ['after-1', 'after-2', 'after-3'].every((id) => dispatchCounts().has(id)), 30_000, 'events after the restart dispatched');
    expect(double.violations).toEqual([]);
    await stopAll(instances);
  }, 180_000);

  it('one build of 200 job events spread over three instances leaves in at most 3 dispatches; a requeued dead letter leaves within about a second', async () => {
    const databaseUrl = await freshDatabase();
    const instances = await relays(databaseUrl, 3, { RELAY_GROUP_WINDOW: '2s' });
    const sent = await roundRobin(
      () => instances,
      Array.from({ length: 200 }, (_, i) => `build-${i}`),
    );
    expect(acknowledged(sent)).toHaveLength(200);
    await waitFor(() => dispatchCounts().size === 200, 60_000, '200 events dispatched');
    const dispatches = double.dispatches(REPO).length;
    console.log(`chaos (economy): 200 job events of ~${jobEvent('x').length} bytes over 3 instances → ${dispatches} dispatches`);
    expect(dispatches).toBeLessThanOrEqual(3);
    expect([...dispatchCounts().values()].every((n) => n === 1)).toBe(true);

    // A dead letter (GitHub answered 422), requeued with the CLI against the same database.
    rejectNext = 1;
    await roundRobin(() => instances, ['dead-1']);
    const cli = (args: string[]) =>
      run(process.execPath, [join(REPO_ROOT, 'lib/relay/cli.js'), ...args], { env: { PATH: process.env.PATH ?? '', RELAY_DATABASE_URL: databaseUrl } });
    await waitFor(async () => (await cli(['outbox', 'dead'])).stdout.includes('dead=1'), 30_000, 'the dead letter');
    const before = arrivals.length;
    const retried = await cli(['outbox', 'retry', '--all']);
    expect(retried.stdout).toMatch(/requeued [0-9a-f-]{36}/);
    const requeuedAt = Date.now();
    await waitFor(() => arrivals.length > before, 15_000, 'the requeued event dispatched');
    const ms = arrivals[before]!.at - requeuedAt;
    console.log(`chaos (requeue): dispatched ${ms} ms after outbox retry`);
    expect(arrivals[before]!.jobIds).toEqual(['dead-1']);
    expect((await cli(['outbox', 'list'])).stdout).toMatch(/^pending=0 delivered=201 dead=0$/m);
    await stopAll(instances);
  }, 180_000);
});
