/**
 * The Action's entry: read inputs and the event the runner gave us, run the engine against
 * GitHub (or the dry-run logger), then set outputs and the job summary.
 */
import { readFileSync } from 'node:fs';
import * as core from '@actions/core';
import { describeIssues } from '../sauce/event.js';
import { overallState, runEngine } from './engine.js';
import { createOctokit, DryRunApi, GitHubApi, type Api } from './github.js';
import { parseInputs } from './inputs.js';
import { runnerLog as log } from './log.js';
import { selectSource } from './payload.js';
import { renderStepSummary } from './step-summary.js';

function readEventFile(path: string | undefined): unknown {
  if (!path) return undefined;
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new Error(`cannot read the workflow event at GITHUB_EVENT_PATH=${path}: ${(error as Error).message}`);
  }
}

export async function run(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  try {
    await main(env);
  } catch (error) {
    log.setFailed(error instanceof Error ? error.message : String(error));
  }
}

async function main(env: NodeJS.ProcessEnv): Promise<void> {
  const parsed = parseInputs((name) => core.getInput(name));
  if (!parsed.ok) {
    log.setFailed(`Invalid inputs: ${parsed.errors.join('; ')}`);
    return;
  }
  const inputs = parsed.inputs;
  const repository = env.GITHUB_REPOSITORY ?? '';
  if (!/^[^/\s]+\/[^/\s]+$/.test(repository)) {
    log.setFailed(`GITHUB_REPOSITORY must be owner/repo (the runner sets it), got ${JSON.stringify(repository)}`);
    return;
  }

  const source = selectSource(inputs.payload, env.GITHUB_EVENT_NAME, inputs.payload === null ? readEventFile(env.GITHUB_EVENT_PATH) : undefined);
  if (!source.result.ok) {
    log.setFailed(`${source.where}: ${source.result.error}`);
    return;
  }
  const { events, rejected, shape } = source.result.value;
  const rejectedText = rejected.map((r) => `${source.where} event #${r.index} rejected: ${describeIssues(r.issues)}`);
  for (const line of rejectedText) log.error(line);
  log.info(`Read ${events.length} Sauce Labs event(s) from ${source.where} (${shape}).`);

  if (!inputs.dryRun && inputs.token === '') {
    log.setFailed(
      'github-token is empty: pass ${{ github.token }} (the default) or a token with statuses: write, checks: write, pull-requests: read and contents: read, or set dry-run: true',
    );
    return;
  }
  const api: Api = inputs.dryRun ? new DryRunApi((line) => log.info(line)) : new GitHubApi(createOctokit(inputs.token), repository);
  const report = await runEngine(events, {
    api,
    inputs,
    repository,
    log,
  });
  for (const u of report.unresolved) log.warning(u.message);

  const ids = [...new Set(report.targets.map((t) => t.checkRunId).filter((id): id is number => id !== null))];
  core.setOutput('sha', report.shas[0] ?? '');
  core.setOutput('shas', JSON.stringify(report.shas));
  core.setOutput('state', overallState(report.targets) ?? '');
  core.setOutput('check-run-ids', JSON.stringify(ids));
  core.setOutput('events', String(events.length));
  core.setOutput('unresolved', String(report.unresolved.length));
  core.setOutput('rejected', String(rejected.length));
  core.setOutput(
    'results',
    JSON.stringify(
      report.targets.map((t) => ({
        kind: t.kind,
        sha: t.sha,
        name: t.name,
        state: t.state,
        conclusion: t.conclusion,
        description: t.description,
        check_run_id: t.checkRunId,
        written: t.written,
        would_write: t.wouldWrite,
        dry_run: inputs.dryRun,
      })),
    ),
  );

  if (env.GITHUB_STEP_SUMMARY) {
    await core.summary.addRaw(renderStepSummary(report, { dryRun: inputs.dryRun, rejected: rejectedText })).write();
  }

  if (rejected.length > 0) {
    log.setFailed(`${rejected.length} event(s) failed validation (see the errors above); the other ${events.length} were processed.`);
  } else if (report.unresolved.length > 0 && inputs.failOnMissingCommit) {
    log.setFailed(`${report.unresolved.length} event(s) had no commit and fail-on-missing-commit is true.`);
  }
}
