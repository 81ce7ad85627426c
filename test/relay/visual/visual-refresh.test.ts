/**
 * Visual refresh on loopback, with real processes: a signed "UNAPPROVED" Visual webhook → a relay
 * process with Sauce credentials → the Sauce API double (the relay reads the diffs at once; the
 * reviewer approves there) → dispatches carrying the list and the new status → each fed to the
 * committed Action bundle → the Visual check run lists the snapshots, and the status on the commit
 * turns from pending to success, with no CI re-run.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { buildWithDiffs } from '../../support/sauce-api-double.js';
import { runAction, SHA } from '../../action/harness.js';
import { REPO_ROOT, silentLogger, waitFor } from '../support/common.js';
import { START_NODE_ARGS, tempDir } from '../support/process.js';
import { CONTEXT, REPO, visualBody, visualRelayRig } from './support/visual-relay.js';
import { openSqliteStore } from '../../../src/relay/outbox/sqlite-store.js';
import { VisualRefresher } from '../../../src/relay/visual/visual-refresh.js';
import { createMetrics } from '../../../src/relay/metrics.js';
import { parseSauceEvent, type VisualEvent } from '../../../src/sauce/event.js';

const rig = visualRelayRig({ secret: 'refresh-secret-0123456789', accessKey: 'sauce-access-key-do-not-log-7f3a' });
const startRelay = (dataDir = tempDir()) => rig.start({ dataDir, env: { RELAY_GROUP_WINDOW: '0' } });

type Entry = { payload: { build_id: string; status: string; summary: Record<string, number> }; relay?: { diffs?: { items: { snapshot: string }[] } } };
type Payload = { events: Entry[] };
const entriesFor = (buildId: string) =>
  rig.github
    .dispatches(REPO)
    .flatMap((d) => (d.client_payload as Payload).events)
    .filter((e) => e.payload.build_id === buildId);
const dispatchedFor = (buildId: string) => entriesFor(buildId).map((e) => e.payload);
const statusReads = (buildId: string) => rig.sauce.requests.filter((r) => r.id === buildId && r.kind === 'status');

function watches(dataDir: string): string {
  return execFileSync(process.execPath, [...START_NODE_ARGS, join(REPO_ROOT, 'lib/relay/cli.js'), 'outbox', 'watches', '--data-dir', dataDir], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '' },
  });
}

test('a reviewer approves in Sauce: the relay re-reads the build and the Visual status turns green', async () => {
  const buildId = '0b0e2d4c-1111-4a2b-8c3d-000000000001';
  const dataDir = tempDir();
  const three = buildWithDiffs('UNAPPROVED', { UNAPPROVED: 3, EQUAL: 41 }, 1);
  rig.sauce.setBuild(buildId, three);
  const relay = await startRelay(dataDir);
  await rig.send(visualBody('visual-unapproved.json', buildId));
  // The webhook, then (read at once) the same body with the list of the three snapshots beside it.
  await waitFor(() => dispatchedFor(buildId).length === 2, 10_000, 'the webhook and its list dispatched');
  expect(entriesFor(buildId)[0]!.relay).toBeUndefined();
  expect(entriesFor(buildId)[1]!.relay?.diffs?.items.map((d) => d.snapshot)).toEqual(['Unapproved 1', 'Unapproved 2', 'Unapproved 3']);
  expect(dispatchedFor(buildId)[1]).toEqual(dispatchedFor(buildId)[0]);

  // Unchanged in Sauce: re-read, nothing new sent.
  await waitFor(() => statusReads(buildId).length >= 3, 10_000, 'two more re-reads');
  expect(dispatchedFor(buildId)).toHaveLength(2);
  expect(watches(dataDir)).toMatch(new RegExp(`${buildId}\\s+UNAPPROVED`));

  // The reviewer approves one change, then takes it back: the second refresh is byte for byte the
  // webhook's body, and must still be sent (no dedup against the past for refreshed events).
  const oneApproved = buildWithDiffs('UNAPPROVED', { UNAPPROVED: 2, APPROVED: 1, EQUAL: 41 }, 1);
  rig.sauce.setBuild(buildId, oneApproved);
  await waitFor(() => dispatchedFor(buildId).length === 3, 10_000, 'the first refreshed event dispatched');
  rig.sauce.setBuild(buildId, three);
  await waitFor(() => dispatchedFor(buildId).length === 4, 10_000, 'the second refreshed event dispatched');
  expect(dispatchedFor(buildId)[3]).toEqual(dispatchedFor(buildId)[0]);

  // Then approves all three.
  rig.sauce.setBuild(buildId, buildWithDiffs('APPROVED', { APPROVED: 3, EQUAL: 41 }, 1));
  await waitFor(() => dispatchedFor(buildId).length === 5, 10_000, 'the approval dispatched');
  const sent = dispatchedFor(buildId);
  expect(sent.map((e) => [e.status, e.summary.unapproved])).toEqual([
    ['UNAPPROVED', 3],
    ['UNAPPROVED', 3],
    ['UNAPPROVED', 2],
    ['UNAPPROVED', 3],
    ['APPROVED', 0],
  ]);
  expect(sent[4]!.summary).toEqual({ errored: 0, approved: 3, equal: 41, rejected: 0, unapproved: 0, queued: 0 });
  expect(entriesFor(buildId)[4]!.relay).toBeUndefined(); // nothing left to list

  // Decided: no longer watched, and no more reads.
  await waitFor(() => /visual builds watched: 0/.test(watches(dataDir)), 10_000, 'the watch ended');
  const reads = rig.sauce.requests.length;
  await new Promise((r) => setTimeout(r, 600));
  expect(rig.sauce.requests.length).toBe(reads);

  // Each dispatch is one workflow run of the Action.
  for (const dispatch of rig.github.dispatches(REPO)) {
    const result = await runAction({ apiUrl: rig.github.url, clientPayload: dispatch.client_payload, repository: REPO });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
  }
  const states = rig.github.statuses(REPO, SHA).filter((s) => s.context === CONTEXT);
  expect(states.map((s) => [s.state, s.description])).toEqual([
    ['pending', expect.stringMatching(/^3 visual changes await review/)],
    ['pending', expect.stringMatching(/^3 visual changes await review/)],
    ['pending', expect.stringMatching(/^2 visual changes await review/)],
    ['pending', expect.stringMatching(/^3 visual changes await review/)],
    ['success', expect.any(String)],
  ]);

  const metrics = await (await fetch(`${relay.url}/metrics`)).text();
  expect(metrics).toMatch(/sauce_relay_visual_refresh_total\{outcome="changed"\} 4/);
  expect(relay.stdout() + relay.stderr()).not.toContain(rig.credentials.accessKey);
}, 90_000);

test('refused credentials and outages are retried; a build Sauce does not know stops being watched', async () => {
  const flaky = '0b0e2d4c-1111-4a2b-8c3d-000000000002';
  const gone = '0b0e2d4c-1111-4a2b-8c3d-000000000003';
  const dataDir = tempDir();
  // The API says what the webhook says (visual-queued.json), so the only change is the one made below:
  // a different summary here would be a refreshed event of its own, racing the test's next step.
  rig.sauce.setBuild(flaky, { status: 'QUEUED', summary: { errored: 0, approved: 0, equal: 20, rejected: 0, unapproved: 0, queued: 24 } });
  rig.sauce.setBuild(gone, null);
  rig.sauce.failNext(503, 3);
  const relay = await startRelay(dataDir);
  await rig.send(visualBody('visual-queued.json', flaky));
  await rig.send(visualBody('visual-unapproved.json', gone));
  await waitFor(() => dispatchedFor(flaky).length === 1 && dispatchedFor(gone).length === 1, 10_000, 'both webhooks dispatched');

  await relay.waitForLog((l) => l.msg === 'visual refresh: Sauce API read failed; will try again' && l.reason === 'HTTP 503');
  await relay.waitForLog((l) => l.msg === 'visual refresh: Sauce has no such build for these credentials; no longer watched' && l.buildId === gone);

  // The diffs finish computing with changes to review: a new event, and the build is still watched.
  rig.sauce.setBuild(flaky, { status: 'UNAPPROVED', summary: { errored: 0, approved: 0, equal: 40, rejected: 0, unapproved: 4, queued: 0 } });
  await waitFor(() => dispatchedFor(flaky).length === 2, 10_000, 'the refreshed event dispatched');
  expect(dispatchedFor(flaky)[1]!.status).toBe('UNAPPROVED');
  const listed = watches(dataDir);
  expect(listed).toMatch(new RegExp(`${flaky}\\s+UNAPPROVED`));
  expect(listed).not.toContain(gone);
  expect(dispatchedFor(gone)).toHaveLength(1);

  // A later webhook with a decided status (here REJECTED, which Sauce now says too) ends the watch
  // after one read, for the list of the rejected snapshots.
  rig.sauce.setBuild(flaky, buildWithDiffs('REJECTED', { REJECTED: 2, EQUAL: 42 }, 2));
  await rig.send(visualBody('visual-rejected.json', flaky));
  await waitFor(() => /visual builds watched: 0/.test(watches(dataDir)), 10_000, 'the watch ended');
  await waitFor(() => entriesFor(flaky).some((e) => e.relay?.diffs?.items.length === 2), 10_000, 'the rejected snapshots listed');
}, 90_000);

test('wrong Sauce credentials: the relay says so and keeps the watch', async () => {
  const buildId = '0b0e2d4c-1111-4a2b-8c3d-000000000004';
  rig.sauce.setBuild(buildId, { status: 'UNAPPROVED', summary: { errored: 0, approved: 0, equal: 1, rejected: 0, unapproved: 1, queued: 0 } });
  const dataDir = tempDir();
  const relay = await rig.start({ dataDir, env: { RELAY_GROUP_WINDOW: '0', SAUCE_ACCESS_KEY: 'a-wrong-key-also-never-logged' } });
  await rig.send(visualBody('visual-unapproved.json', buildId));
  const line = await relay.waitForLog((l) => l.msg === 'visual refresh: Sauce API read failed; will try again' && l.buildId === buildId);
  expect(line.reason).toBe('HTTP 401: Sauce refused SAUCE_USERNAME/SAUCE_ACCESS_KEY');
  expect(watches(dataDir)).toMatch(/HTTP 401/);
  expect(relay.stdout() + relay.stderr()).not.toContain('a-wrong-key-also-never-logged');
}, 60_000);

test('SIGTERM while a Sauce API read hangs: the read is abandoned and the relay exits at once', async () => {
  const buildId = '0b0e2d4c-1111-4a2b-8c3d-000000000005';
  rig.sauce.setBuild(buildId, { status: 'UNAPPROVED', summary: { errored: 0, approved: 0, equal: 1, rejected: 0, unapproved: 1, queued: 0 } });
  rig.sauce.stallNext(1);
  const relay = await startRelay();
  const before = rig.sauce.requests.length;
  await rig.send(visualBody('visual-unapproved.json', buildId));
  await waitFor(() => rig.sauce.requests.length > before, 10_000, 'a read in flight');
  const asked = Date.now();
  const code = await relay.kill('SIGTERM');
  // The API deadline is 10 s; leaving well before it shows the stop aborted the read.
  expect(Date.now() - asked).toBeLessThan(5_000);
  expect(code).toBe(0);
  expect(relay.stdout()).toContain('relay stopped');
}, 60_000);

test('a hung Sauce API read ends at its deadline and the next pass carries on (in process)', async () => {
  const buildId = '0b0e2d4c-1111-4a2b-8c3d-000000000006';
  rig.sauce.setBuild(buildId, { status: 'UNAPPROVED', summary: { errored: 0, approved: 0, equal: 1, rejected: 0, unapproved: 1, queued: 0 } });
  const store = openSqliteStore(tempDir());
  const stored: string[] = [];
  const refresher = new VisualRefresher({
    config: { ...rig.credentials, intervalMs: 50, watchForMs: 60_000, stuckAfterMs: null, apiUrl: rig.sauce.url },
    store,
    logger: silentLogger,
    regionOf: () => 'us-west-1',
    onStored: (id) => stored.push(id),
    timeoutMs: 300,
  });
  try {
    const body = visualBody('visual-unapproved.json', buildId);
    const parsed = parseSauceEvent(JSON.parse(body.toString('utf8')));
    if (!parsed.ok) throw new Error('fixture');
    const now = Date.now();
    await refresher.track({
      route: 'default',
      repo: REPO,
      eventType: 'saucelabs',
      body: body.toString('utf8'),
      event: parsed.event as VisualEvent,
      receivedAt: now - 1000,
    });
    rig.sauce.stallNext(1);
    await refresher.tick(); // hangs at the double until the 300 ms deadline
    const [afterHang] = await store.listVisualWatches(10);
    expect(afterHang!.lastError).toMatch(/^network: .*timed out after 300 ms/);
    rig.sauce.setBuild(buildId, { status: 'APPROVED', summary: { errored: 0, approved: 1, equal: 1, rejected: 0, unapproved: 0, queued: 0 } });
    await waitFor(
      async () => {
        await refresher.tick();
        return stored.length === 1;
      },
      10_000,
      'the approval stored after the hang',
    );
    expect(await store.listVisualWatches(10)).toEqual([]);
    const [event] = await store.list('pending', 10);
    expect(JSON.parse(event!.body)).toMatchObject({ build_id: buildId, status: 'APPROVED' });
  } finally {
    await refresher.stop();
    await store.close();
  }
}, 30_000);

test('a watch past its refresh period ends without another read (in process)', async () => {
  const expiredId = '0b0e2d4c-1111-4a2b-8c3d-000000000007';
  const liveId = '0b0e2d4c-1111-4a2b-8c3d-000000000008';
  for (const id of [expiredId, liveId]) {
    rig.sauce.setBuild(id, { status: 'UNAPPROVED', summary: { errored: 0, approved: 0, equal: 1, rejected: 0, unapproved: 1, queued: 0 } });
  }
  const store = openSqliteStore(tempDir());
  const metrics = createMetrics({ defaultMetrics: false });
  const watchForMs = 60_000;
  const refresher = new VisualRefresher({
    config: { ...rig.credentials, intervalMs: 50, watchForMs, stuckAfterMs: null, apiUrl: rig.sauce.url },
    store,
    logger: silentLogger,
    metrics,
    regionOf: () => 'us-west-1',
  });
  const track = async (buildId: string, receivedAt: number) => {
    const body = visualBody('visual-unapproved.json', buildId);
    const parsed = parseSauceEvent(JSON.parse(body.toString('utf8')));
    if (!parsed.ok) throw new Error('fixture');
    await refresher.track({
      route: 'default',
      repo: REPO,
      eventType: 'saucelabs',
      body: body.toString('utf8'),
      event: parsed.event as VisualEvent,
      receivedAt,
    });
  };
  try {
    // First seen longer ago than the refresh period: due, and expired.
    await track(expiredId, Date.now() - watchForMs - 1_000);
    await track(liveId, Date.now() - 1_000);
    expect((await store.listVisualWatches(10)).map((w) => w.buildId).sort()).toEqual([expiredId, liveId].sort());
    await refresher.tick();
    expect((await store.listVisualWatches(10)).map((w) => w.buildId)).toEqual([liveId]);
    expect(rig.sauce.requests.filter((r) => r.id === expiredId)).toEqual([]);
    expect(rig.sauce.requests.filter((r) => r.id === liveId && r.kind === 'status')).toHaveLength(1);
    const outcomes: Record<string, number> = Object.fromEntries((await metrics.visualRefresh.get()).values.map((v) => [String(v.labels.outcome), v.value]));
    expect(outcomes.expired).toBe(1);
    expect(Object.values(outcomes).reduce((n, v) => n + v, 0)).toBe(2);
    // From the expired one, only its last word: the webhook's body, and when the relay stopped.
    const fromExpired = (await store.list('pending', 10)).filter((e) => JSON.parse(e.body).build_id === expiredId);
    expect(fromExpired).toHaveLength(1);
    expect(JSON.parse(fromExpired[0]!.extra!)).toEqual({ watch_ended: { at: expect.any(String), after_ms: watchForMs } });
  } finally {
    await refresher.stop();
    await store.close();
  }
}, 30_000);
