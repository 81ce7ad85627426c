/**
 * kill -9 under load: a real relay process takes a steady stream of distinct signed events on 16
 * connections at once (so insert batches are being committed while it dies) and is killed with
 * SIGKILL mid-stream. Every event it answered `202 stored` must be in its store after the restart,
 * under the id it answered, and must reach GitHub (the API double) with that id. Requests cut by
 * the kill got no answer and may or may not be stored: Sauce sends those again.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { signBody } from '../../src/relay/http/signature.js';
import { envelopeSchema } from '../../src/sauce/envelope.js';
import { startGitHubDouble, type GitHubDouble } from '../support/github-double.js';
import { sauceFixture, waitFor } from './support/common.js';
import { ensureBuilt, postSigned, startRelayProcess, tempDir, type RelayProcess } from './support/process.js';

const SECRET = 'kill-under-load-secret';
const REPO = 'acme/web';
const SENDERS = 16;
/** Killed once this many events were acknowledged (the senders keep going until the kill). */
const KILL_AFTER_ACKS = 200;

let double: GitHubDouble;
const running: RelayProcess[] = [];

beforeAll(async () => {
  ensureBuilt();
  double = await startGitHubDouble();
}, 120_000);
afterAll(async () => {
  await Promise.all(running.map((r) => r.kill('SIGKILL')));
  await double?.close();
});

async function relay(dataDir: string): Promise<RelayProcess> {
  const r = await startRelayProcess({
    dataDir,
    env: {
      SAUCE_WEBHOOK_SECRET: SECRET,
      GITHUB_TOKEN: 'ghs_killtoken',
      GITHUB_API_URL: double.url,
      GITHUB_REPOSITORY: REPO,
      RELAY_GROUP_WINDOW: '200ms',
      RELAY_LEASE: '3s',
    },
  });
  running.push(r);
  return r;
}

const base = JSON.parse(sauceFixture('job-vdc-passed.json').toString('utf8')) as Record<string, unknown>;
/** A distinct job event of Sauce's real size (~0.9 KB), dated now. */
function jobEvent(id: string): Buffer {
  return Buffer.from(JSON.stringify({ ...base, id, modification_time: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z') }));
}

test('every event answered 202 before a SIGKILL under load is stored after the restart and dispatched with its id', async () => {
  const dataDir = tempDir();
  const r = await relay(dataDir);
  /** job id → the relay id it was acknowledged with. */
  const acked = new Map<string, string>();
  let sent = 0;
  let cut = 0;
  let killed = false;
  const sender = async (s: number): Promise<void> => {
    for (let n = 0; !killed; n += 1) {
      const jobId = `load-${s}-${n}`;
      const body = jobEvent(jobId);
      sent += 1;
      try {
        const answer = await postSigned(`${r.url}/webhook`, body, signBody(SECRET, body));
        const parsed = JSON.parse(answer.body) as { status?: string; id?: string };
        // Answers that raced the kill still count: the relay said "stored".
        if (answer.status === 202 && parsed.status === 'stored' && parsed.id) acked.set(jobId, parsed.id);
        else if (!killed) throw new Error(`unexpected answer ${answer.status} ${answer.body}`);
      } catch (error) {
        if (!killed) throw error;
        cut += 1;
      }
    }
  };
  const senders = Array.from({ length: SENDERS }, (_, s) => sender(s));
  await waitFor(() => acked.size >= KILL_AFTER_ACKS, 30_000, `${KILL_AFTER_ACKS} acknowledged events`);
  killed = true;
  await r.kill('SIGKILL');
  await Promise.all(senders);
  expect(acked.size).toBeGreaterThanOrEqual(KILL_AFTER_ACKS);

  // Restarted on the same data directory: everything acknowledged is in the store, as answered.
  await relay(dataDir);
  const db = new Database(join(dataDir, 'relay.db'), { readonly: true });
  let stored: Set<string>;
  try {
    stored = new Set(db.prepare<[], { id: string }>('SELECT id FROM events').pluck().all() as unknown as string[]);
  } finally {
    db.close();
  }
  const missing = [...acked.values()].filter((id) => !stored.has(id));
  expect({ acknowledged: acked.size, missing }).toEqual({ acknowledged: acked.size, missing: [] });

  // …and reaches GitHub with the id it was acknowledged with (before the kill or after the restart).
  const dispatched = (): Map<string, Set<string>> => {
    const byJob = new Map<string, Set<string>>();
    for (const d of double.dispatches(REPO)) {
      for (const e of envelopeSchema.parse(d.client_payload).events) {
        const jobId = String((e.payload as { id: unknown }).id);
        byJob.set(jobId, (byJob.get(jobId) ?? new Set()).add(String(e.id)));
      }
    }
    return byJob;
  };
  await waitFor(
    () => {
      const got = dispatched();
      return [...acked].every(([jobId, id]) => got.get(jobId)?.has(id));
    },
    60_000,
    'every acknowledged event dispatched with its id',
  );
  expect(double.violations).toEqual([]);
  // Some requests were in flight when the relay died (16 senders): the kill did land under load.
  expect(sent).toBeGreaterThan(acked.size);
  expect(cut).toBeGreaterThan(0);
}, 120_000);
