/**
 * The rig of the Visual end-to-end tests: a GitHub API double with the test commit, a Sauce API
 * double that takes one account, and a relay process with Visual refresh on between them (started
 * by the test, SIGKILLed after it). Both doubles must have seen no request off their API's shape.
 * Call `visualRelayRig` at the top of a test file: it registers the hooks.
 */
import { signBody } from '../../../../src/relay/http/signature.js';
import { SHA } from '../../../action/harness.js';
import { startGitHubDouble, type GitHubDouble } from '../../../support/github-double.js';
import { startSauceApiDouble, type SauceApiDouble } from '../../../support/sauce-api-double.js';
import { sauceFixture } from '../../support/common.js';
import { ensureBuilt, postSigned, startRelayProcess, tempDir, type RelayProcess } from '../../support/process.js';

export const REPO = 'acme/shop';
export const CONTEXT = 'Sauce Labs Visual / shop-web';

/** A Visual fixture as the webhook of another build (its id and link changed). */
export function visualBody(name: string, buildId: string): Buffer {
  const event = JSON.parse(sauceFixture(name).toString('utf8')) as Record<string, unknown>;
  return Buffer.from(JSON.stringify({ ...event, build_id: buildId, build_url: `https://app.saucelabs.com/visual/builds/${buildId}` }));
}

export interface VisualRelayRig {
  readonly github: GitHubDouble;
  readonly sauce: SauceApiDouble;
  readonly credentials: { readonly username: string; readonly accessKey: string };
  /**
   * A relay process reading Sauce with the rig's account every 150 ms and dispatching to the
   * GitHub double; `env` adds to or overrides its environment.
   */
  start(options?: { dataDir?: string; env?: Record<string, string> }): Promise<RelayProcess>;
  /** Sign and post to the relay the test started; it must answer 202. */
  send(body: Buffer): Promise<void>;
}

export function visualRelayRig(options: { secret: string; accessKey: string }): VisualRelayRig {
  const credentials = { username: 'ci-reader', accessKey: options.accessKey };
  let github: GitHubDouble | undefined;
  let sauce: SauceApiDouble | undefined;
  let relay: RelayProcess | undefined;
  const started = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`visualRelayRig: no ${what} yet (the rig starts in beforeAll; a test starts the relay)`);
    return value;
  };

  beforeAll(async () => {
    ensureBuilt();
    github = await startGitHubDouble();
    github.addCommit(REPO, SHA);
    sauce = await startSauceApiDouble(credentials);
  }, 120_000);
  afterEach(async () => {
    await relay?.kill('SIGKILL');
    relay = undefined;
    expect(started(sauce, 'Sauce double').violations).toEqual([]);
    expect(started(github, 'GitHub double').violations).toEqual([]);
  });
  afterAll(async () => {
    await github?.close();
    await sauce?.close();
  });

  return {
    get github() {
      return started(github, 'GitHub double');
    },
    get sauce() {
      return started(sauce, 'Sauce double');
    },
    credentials,
    async start({ dataDir = tempDir(), env = {} } = {}) {
      relay = await startRelayProcess({
        dataDir,
        env: {
          SAUCE_WEBHOOK_SECRET: options.secret,
          GITHUB_TOKEN: 'ghs_visualrigtoken',
          GITHUB_API_URL: started(github, 'GitHub double').url,
          GITHUB_REPOSITORY: REPO,
          SAUCE_USERNAME: credentials.username,
          SAUCE_ACCESS_KEY: credentials.accessKey,
          SAUCE_API_URL: started(sauce, 'Sauce double').url,
          RELAY_VISUAL_REFRESH_INTERVAL: '150ms',
          ...env,
        },
      });
      return relay;
    },
    async send(body) {
      const answer = await postSigned(`${started(relay, 'relay').url}/webhook`, body, signBody(options.secret, body));
      expect(answer.status).toBe(202);
    },
  };
}
