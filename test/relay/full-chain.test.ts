/**
 * The whole product path on loopback: signed Sauce webhooks → a real relay process → the GitHub
 * API double (repository_dispatch) → each dispatched client_payload fed to the committed Action
 * bundle (dist/index.js, started as the runner starts it) → statuses and check runs on the commit.
 */
import { signBody } from '../../src/relay/http/signature.js';
import { startGitHubDouble, type GitHubDouble } from '../support/github-double.js';
import { runAction, SHA } from '../action/harness.js';
import { sauceFixture, waitFor } from './support/common.js';
import { ensureBuilt, postSigned, startRelayProcess, tempDir, type RelayProcess } from './support/process.js';

const SECRET = 'chain-secret-0123456789';
const REPO = 'acme/shop';
const HEAD = 'aaaabbbbccccddddeeeeffff0000111122223333';

let double: GitHubDouble;
let relay: RelayProcess | undefined;

beforeAll(async () => {
  ensureBuilt();
  double = await startGitHubDouble();
}, 120_000);
afterAll(async () => {
  await relay?.kill('SIGKILL');
  await double?.close();
});

test('Sauce → relay → repository_dispatch → Action bundle → statuses on the PR head', async () => {
  double.addCommit(REPO, SHA);
  double.setBranch(REPO, 'feature/login', SHA);
  // The jobs report the temporary merge commit (github.sha in a pull_request run); the Action
  // must move the status to the PR head.
  double.addCommit(REPO, HEAD);
  double.addPull(REPO, { number: 7, headSha: HEAD, headRef: 'feature/login', mergeCommitSha: SHA });

  relay = await startRelayProcess({
    dataDir: tempDir(),
    env: {
      SAUCE_WEBHOOK_SECRET: SECRET,
      GITHUB_TOKEN: 'ghs_chaintoken',
      GITHUB_API_URL: double.url,
      GITHUB_REPOSITORY: REPO,
      RELAY_GROUP_WINDOW: '200ms',
    },
  });
  const bodies = ['job-vdc-passed.json', 'job-vdc-failed-boolean.json', 'visual-unapproved.json'].map((name) => sauceFixture(name));
  for (const body of bodies) {
    const answer = await postSigned(`${relay.url}/webhook`, body, signBody(SECRET, body));
    expect(answer.status).toBe(202);
  }
  await waitFor(
    () => double.dispatches(REPO).reduce((n, d) => n + (d.client_payload as { events: unknown[] }).events.length, 0) >= bodies.length,
    15_000,
    'all three events dispatched',
  );

  // Each dispatch becomes one workflow run of the Action, fed exactly what GitHub would put in the event.
  for (const dispatch of double.dispatches(REPO)) {
    const result = await runAction({ apiUrl: double.url, clientPayload: dispatch.client_payload, repository: REPO });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.outputs.sha).toBe(HEAD);
  }

  const latest = new Map(double.statuses(REPO, HEAD).map((s) => [s.context, s]));
  expect(latest.get('Sauce Labs / shop-web #1234')?.state).toBe('failure');
  expect(latest.get('Sauce Labs Visual / shop-web')?.state).toBe('pending');
  expect(latest.get('Sauce Labs Visual / shop-web')?.description).toMatch(/3 .*review/);
  expect(double.statuses(REPO, SHA)).toEqual([]);
  const runs = double.checkRuns(REPO).filter((r) => r.head_sha === HEAD);
  expect(runs.map((r) => r.name)).toEqual(expect.arrayContaining(['Sauce Labs / shop-web #1234', 'Sauce Labs Visual / shop-web']));
  expect(double.violations).toEqual([]);
}, 90_000);

test('a job event with a 70 KB stack trace: accepted, dispatched shortened, and reported by the Action', async () => {
  await relay?.kill('SIGKILL');
  relay = await startRelayProcess({
    dataDir: tempDir(),
    env: { SAUCE_WEBHOOK_SECRET: SECRET, GITHUB_TOKEN: 'ghs_chaintoken', GITHUB_API_URL: double.url, GITHUB_REPOSITORY: REPO, RELAY_GROUP_WINDOW: '0' },
  });
  const before = double.dispatches(REPO).length;
  const job = JSON.parse(sauceFixture('job-vdc-failed-boolean.json').toString('utf8')) as Record<string, unknown>;
  const stack = `TimeoutError: card form never appeared\n${'    at pay (webpack:///src/checkout/pay.ts:41:17)\n'.repeat(1_600)}`;
  const body = Buffer.from(JSON.stringify({ ...job, id: 'big-stack-0001', build: 'shop-web #5678', exception: stack }));
  expect(body.length).toBeGreaterThan(70_000);
  const answer = await postSigned(`${relay.url}/webhook`, body, signBody(SECRET, body));
  expect(answer.status).toBe(202);
  await waitFor(() => double.dispatches(REPO).length > before, 15_000, 'the big event dispatched');

  const dispatch = double.dispatches(REPO)[before]!;
  const [entry] = (dispatch.client_payload as { events: { payload: Record<string, unknown>; truncated?: unknown }[] }).events;
  expect(entry!.truncated).toEqual([{ field: 'exception', bytes: Buffer.byteLength(stack) }]);
  expect(entry!.payload).toMatchObject({ id: 'big-stack-0001', status: job.status, commit_id: job.commit_id });
  const result = await runAction({ apiUrl: double.url, clientPayload: dispatch.client_payload, repository: REPO });
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  const latest = new Map(double.statuses(REPO, HEAD).map((s) => [s.context, s]));
  expect(latest.get('Sauce Labs / shop-web #5678')?.state).toBe('failure');
  expect(double.violations).toEqual([]);
  expect(double.rejections).toEqual([]);
}, 90_000);
