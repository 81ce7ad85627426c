/**
 * Visual review end to end, with real processes: a signed Visual webhook → a relay process with
 * Sauce credentials (the Sauce API double) → `repository_dispatch` to the GitHub API double → each
 * dispatch run through the committed Action bundle → the Visual status and check run on the commit.
 * The check run's text is checked, not only its conclusion.
 */
import { CHECK_OUTPUT_MAX_BYTES, utf8Bytes } from '../../../src/github/limits.js';
import type { CheckRunRecord } from '../../support/github-double.js';
import { buildWithDiffs } from '../../support/sauce-api-double.js';
import { runAction, SHA } from '../../action/harness.js';
import { waitFor } from '../support/common.js';
import { CONTEXT, REPO, visualBody, visualRelayRig } from './support/visual-relay.js';

const rig = visualRelayRig({ secret: 'review-secret-0123456789', accessKey: 'sauce-access-key-do-not-log-5e1b' });

type Entry = { payload: { build_id: string; status: string }; relay?: { stuck?: unknown; diffs?: { items: unknown[] } } };
const dispatchesFor = (buildId: string) =>
  rig.github.dispatches(REPO).filter((d) => (d.client_payload as { events: Entry[] }).events.some((e) => e.payload.build_id === buildId));

/** Run the Action on every dispatch not run yet (each dispatch is one workflow run). */
async function runNewDispatches(buildId: string, done: Set<unknown>): Promise<void> {
  for (const d of dispatchesFor(buildId)) {
    if (done.has(d)) continue;
    done.add(d);
    const result = await runAction({ apiUrl: rig.github.url, clientPayload: d.client_payload, repository: REPO });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
  }
}

const latestStatus = () =>
  rig.github
    .statuses(REPO, SHA)
    .filter((s) => s.context === CONTEXT)
    .at(-1)!;
const checkRun = (buildId: string): CheckRunRecord => rig.github.checkRuns(REPO).find((r) => r.external_id === `sauce-visual:${buildId}`)!;

test('a build that never finishes: error after the timeout, then Sauce’s late result (pending with the snapshots), then success', async () => {
  const buildId = '0b0e2d4c-3333-4a2b-8c3d-000000000001';
  rig.sauce.setBuild(buildId, buildWithDiffs('QUEUED', { QUEUED: 24, EQUAL: 20 }, 31));
  const relay = await rig.start({ env: { RELAY_GROUP_WINDOW: '0', RELAY_VISUAL_STUCK_AFTER: '1s' } });
  const ran = new Set<unknown>();
  await rig.send(visualBody('visual-queued.json', buildId));

  // 1. Still QUEUED a second after the webhook: the relay's verdict, beside Sauce's unchanged body.
  await waitFor(
    () => dispatchesFor(buildId).some((d) => (d.client_payload as { events: Entry[] }).events.some((e) => e.relay?.stuck)),
    20_000,
    'the stuck verdict',
  );
  const entries = dispatchesFor(buildId).flatMap((d) => (d.client_payload as { events: Entry[] }).events);
  expect(entries.map((e) => [e.payload.status, e.relay?.stuck !== undefined])).toEqual([
    ['QUEUED', false],
    ['QUEUED', true],
  ]);
  await runNewDispatches(buildId, ran);
  expect(latestStatus()).toMatchObject({ state: 'error', description: 'Visual build did not finish within 1 s' });
  let run = checkRun(buildId);
  expect(run).toMatchObject({ status: 'completed', conclusion: 'timed_out' });
  expect(run.output.title).toBe('Visual build did not finish within 1 s');
  expect(run.output.summary).toContain("This is the relay's verdict, not Sauce's.** Sauce still reports this build as `QUEUED`");
  expect(run.output.summary).toContain("**Re-run the tests**, or finish the build in Sauce (Sauce Visual's `finishBuild`");
  expect(run.output.summary).toContain(`[open the build](https://app.saucelabs.com/visual/builds/${buildId})`);

  // 2. Sauce finishes late, with changes to review: pending, and the check run lists them.
  const unapproved = buildWithDiffs(
    'UNAPPROVED',
    { UNAPPROVED: 3, REJECTED: 1, EQUAL: 40 },
    31,
    (s, n) => `${s === 'REJECTED' ? 'Footer' : 'Checkout step'} ${n}`,
  );
  unapproved.diffs = unapproved.diffs!.map((d) =>
    d.status === 'REJECTED'
      ? { ...d, snapshot: { ...d.snapshot!, device: 'iPhone 15', browser: 'NONE', operatingSystem: 'IOS', operatingSystemVersion: '17' } }
      : d,
  );
  rig.sauce.setBuild(buildId, unapproved);
  await waitFor(() => dispatchesFor(buildId).length === 3, 20_000, 'the late result dispatched');
  await runNewDispatches(buildId, ran);
  expect(latestStatus()).toMatchObject({ state: 'pending', description: '3 visual changes await review (+1 rejected)' });
  run = checkRun(buildId);
  expect(run).toMatchObject({ status: 'completed', conclusion: 'neutral' });
  const summary = run.output.summary!;
  expect(summary).not.toContain("relay's verdict");
  expect(summary).toContain('#### 4 snapshots with changes or errors');
  const rows = summary.split('\n').filter((l) => /^\| (🟡|❌)/.test(l));
  expect(rows).toEqual([
    '| 🟡 unapproved | Checkout step 1 | Checkout › checkout.spec.ts | CHROME 128.0 | WINDOWS 11 | 1280x720 |',
    '| 🟡 unapproved | Checkout step 2 | Checkout › checkout.spec.ts | CHROME 128.0 | WINDOWS 11 | 1280x720 |',
    '| 🟡 unapproved | Checkout step 3 | Checkout › checkout.spec.ts | CHROME 128.0 | WINDOWS 11 | 1280x720 |',
    '| ❌ rejected | Footer 1 | Checkout › checkout.spec.ts | iPhone 15 | IOS 17 | 1280x720 |',
  ]);
  expect(summary).toContain(`**3 changes await review → [open the build](https://app.saucelabs.com/visual/builds/${buildId})**`);

  // 3. The reviewer approves everything: success, nothing left to list.
  rig.sauce.setBuild(buildId, buildWithDiffs('APPROVED', { APPROVED: 4, EQUAL: 40 }, 31));
  await waitFor(() => dispatchesFor(buildId).length === 4, 20_000, 'the approval dispatched');
  await runNewDispatches(buildId, ran);
  expect(latestStatus()).toMatchObject({ state: 'success', description: 'All 4 changes approved' });
  run = checkRun(buildId);
  expect(run).toMatchObject({ status: 'completed', conclusion: 'success' });
  expect(run.output.summary).not.toContain('snapshots with changes');
  expect(
    rig.github
      .statuses(REPO, SHA)
      .filter((s) => s.context === CONTEXT)
      .map((s) => s.state),
  ).toEqual(['pending', 'error', 'pending', 'success']);
  expect(relay.stdout() + relay.stderr()).not.toContain(rig.credentials.accessKey);
}, 120_000);

test('the webhook’s own dispatch already lists the snapshots when Sauce answers within the group window; hostile names stay text', async () => {
  const buildId = '0b0e2d4c-3333-4a2b-8c3d-000000000002';
  const hostile = (_s: string, n: number) => `${'<img src=x onerror=alert(1)> [x](https://evil.example) | **b** '.repeat(200)}#${n}`;
  const build = buildWithDiffs('UNAPPROVED', { UNAPPROVED: 3, EQUAL: 41 }, 32, hostile);
  rig.sauce.setBuild(buildId, build);
  // A generous window: the relay reads Sauce (milliseconds on loopback) long before it closes.
  await rig.start({ env: { RELAY_GROUP_WINDOW: '3s' } });
  await rig.send(visualBody('visual-unapproved.json', buildId));
  await waitFor(() => dispatchesFor(buildId).length === 1, 20_000, 'one dispatch');
  const [only] = dispatchesFor(buildId);
  const events = (only!.client_payload as { events: Entry[] }).events;
  // The webhook and its list leave together: one workflow run shows the snapshots at once.
  expect(events.map((e) => e.relay?.diffs?.items.length ?? 0)).toEqual([0, 3]);

  await runNewDispatches(buildId, new Set());
  const summary = checkRun(buildId).output.summary!;
  expect(utf8Bytes(summary)).toBeLessThanOrEqual(CHECK_OUTPUT_MAX_BYTES);
  expect(summary).not.toMatch(/<img|\]\(https:\/\/evil|\*\*b\*\*/);
  const rows = summary.split('\n').filter((l) => l.startsWith('| 🟡'));
  expect(rows).toHaveLength(3);
  // 10,000-character names arrive cut to 200 characters by the relay; each stays one table row.
  for (const row of rows) expect(row.replace(/\\\|/g, '').split('|')).toHaveLength(8);
  expect(summary).toContain('\\[x\\]\\(https:\u200b//evil.example\\)');
}, 120_000);
