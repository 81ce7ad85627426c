// Start the committed dist/index.js once, as the runner does, on one Sauce event, in dry-run:
// no token, and GITHUB_API_URL pointing at a closed port, so any network call would fail.
// Exits non-zero if the bundle does not start, exits non-zero, or does not report a dry run.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const fixture = join(root, 'test', 'fixtures', 'sauce', 'job-vdc-passed.json');
const event = existsSync(fixture)
  ? JSON.parse(readFileSync(fixture, 'utf8'))
  : {
      id: 'smoke0000000000000000000000000000',
      status: 'PASSED',
      passed: 1,
      name: 'smoke',
      modification_time: '2025-09-02T14:05:17Z',
      commit_id: '9fceb02d0ae598e95dc970b74767f19372d61af8',
      build: 'smoke',
      data_type: 'vdc',
    };

const dir = mkdtempSync(join(tmpdir(), 'smoke-action-'));
try {
  const eventPath = join(dir, 'event.json');
  const outputPath = join(dir, 'output');
  const summaryPath = join(dir, 'summary.md');
  writeFileSync(eventPath, JSON.stringify({ action: 'sauce', client_payload: { version: 1, events: [{ payload: event, id: 'smoke' }] } }));
  writeFileSync(outputPath, '');
  writeFileSync(summaryPath, '');
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    GITHUB_ACTIONS: 'true',
    GITHUB_EVENT_NAME: 'repository_dispatch',
    GITHUB_EVENT_PATH: eventPath,
    GITHUB_REPOSITORY: 'acme/shop',
    GITHUB_API_URL: 'http://127.0.0.1:9',
    GITHUB_OUTPUT: outputPath,
    GITHUB_STEP_SUMMARY: summaryPath,
    'INPUT_GITHUB-TOKEN': '',
    'INPUT_DRY-RUN': 'true',
  };
  const started = process.hrtime.bigint();
  const res = spawnSync(process.execPath, [join(root, 'dist', 'index.js')], { env, encoding: 'utf8', timeout: 30_000 });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  process.stdout.write(res.stdout ?? '');
  process.stderr.write(res.stderr ?? '');
  const output = readFileSync(outputPath, 'utf8');
  const problems = [];
  if (res.error) problems.push(`could not start: ${res.error.message}`);
  if (res.status !== 0) problems.push(`exited with ${res.status}${res.signal ? ` (signal ${res.signal})` : ''}`);
  if (!/\[dry-run\] would (create check run|set commit status)/.test(res.stdout ?? '')) problems.push('did not log any dry-run write');
  if (!output.includes('9fceb02d0ae598e95dc970b74767f19372d61af8')) problems.push('did not set the sha output');
  if (!output.includes('"written":false,"would_write":true,"dry_run":true')) problems.push('the results output does not say what a dry run would write');
  if (!readFileSync(summaryPath, 'utf8').includes('dry run')) problems.push('did not write the job summary');
  if (problems.length > 0) {
    console.error(`smoke-action: FAILED: ${problems.join('; ')}`);
    process.exit(1);
  }
  console.log(`smoke-action: ok (dist/index.js ran in ${ms.toFixed(0)} ms, dry run, no network)`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
