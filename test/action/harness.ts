/**
 * Runs the committed dist/index.js as a child process, exactly as the runner does: event file,
 * INPUT_* variables (upper case, spaces → _, dashes kept), GITHUB_OUTPUT and GITHUB_STEP_SUMMARY
 * files, GITHUB_API_URL pointing at the test double.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, expect } from '@jest/globals';
import { startGitHubDouble, type GitHubDouble } from '../support/github-double.js';

export const ROOT = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..', '..');
export const FIXTURES = join(ROOT, 'test', 'fixtures', 'sauce');
export const DIST = join(ROOT, 'dist', 'index.js');
export const REPO = 'acme/shop';
export const SHA = '9fceb02d0ae598e95dc970b74767f19372d61af8';

export function fixture(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(FIXTURES, name), 'utf8')) as Record<string, unknown>;
}

export function envelope(payloads: readonly unknown[], extra: (i: number) => Record<string, unknown> = () => ({})): Record<string, unknown> {
  return { version: 1, events: payloads.map((payload, i) => ({ payload, ...extra(i) })) };
}

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly outputs: Record<string, string>;
  readonly summary: string;
  readonly ms: number;
}

/** Parse the GITHUB_OUTPUT file (`name<<delimiter\nvalue\ndelimiter`). */
export function parseOutputFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = /^([^<=]+)<<(.+)$/.exec(lines[i]!);
    if (!m) continue;
    const value: string[] = [];
    for (i++; i < lines.length && lines[i] !== m[2]; i++) value.push(lines[i]!);
    out[m[1]!] = value.join('\n');
  }
  return out;
}

export interface RunOptions {
  readonly apiUrl: string;
  /** The repository_dispatch client_payload (omit with eventName workflow_dispatch). */
  readonly clientPayload?: unknown;
  readonly eventName?: string;
  readonly inputs?: Record<string, string>;
  readonly repository?: string;
}

export function runAction(opts: RunOptions): Promise<RunResult> {
  const dir = mkdtempSync(join(tmpdir(), 'action-e2e-'));
  const eventPath = join(dir, 'event.json');
  const outputPath = join(dir, 'output');
  const summaryPath = join(dir, 'summary.md');
  const eventName = opts.eventName ?? 'repository_dispatch';
  writeFileSync(eventPath, JSON.stringify(eventName === 'repository_dispatch' ? { action: 'sauce-labs', client_payload: opts.clientPayload } : { inputs: {} }));
  writeFileSync(outputPath, '');
  writeFileSync(summaryPath, '');
  // GitHub's waits in milliseconds instead of seconds: retries and write spacing stay, only faster.
  const inputs: Record<string, string> = { 'github-token': 'ghs_testtoken', 'confirm-delay-ms': '20', ...opts.inputs };
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    GITHUB_ACTIONS: 'true',
    GITHUB_EVENT_NAME: eventName,
    GITHUB_EVENT_PATH: eventPath,
    GITHUB_REPOSITORY: opts.repository ?? REPO,
    GITHUB_API_URL: opts.apiUrl,
    GITHUB_OUTPUT: outputPath,
    GITHUB_STEP_SUMMARY: summaryPath,
    RUNNER_TEMP: dir,
  };
  for (const [name, value] of Object.entries(inputs)) env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] = value;
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [DIST], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const result: RunResult = {
        code,
        stdout,
        stderr,
        outputs: parseOutputFile(readFileSync(outputPath, 'utf8')),
        summary: readFileSync(summaryPath, 'utf8'),
        ms: Date.now() - started,
      };
      rmSync(dir, { recursive: true, force: true });
      resolve(result);
    });
  });
}

/**
 * One GitHub double per test file: before each test it is reset to the test commit (the head of
 * `feature/login`); after each, no request may have broken GitHub's API description.
 */
export function useGitHubDouble(receive: (double: GitHubDouble) => void): void {
  let double: GitHubDouble;
  beforeAll(async () => {
    double = await startGitHubDouble();
    receive(double);
  });
  afterAll(async () => {
    await double.close();
  });
  beforeEach(() => {
    double.reset();
    double.addCommit(REPO, SHA);
    double.setBranch(REPO, 'feature/login', SHA);
  });
  afterEach(() => {
    expect(double.violations).toEqual([]);
  });
}
