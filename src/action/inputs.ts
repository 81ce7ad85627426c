/**
 * Action inputs, parsed from a `getInput` function so the parsing is a pure, testable function
 * (the runner's `core.getInput` in production, a plain object lookup in tests).
 */
import { DEFAULT_REGION, REGIONS, isRegion, type Region } from '../sauce/urls.js';

export type GetInput = (name: string) => string;

export const JOB_CHECK_RUN_MODES = ['failed', 'all', 'none'] as const;
export type JobCheckRunMode = (typeof JOB_CHECK_RUN_MODES)[number];
export const VISUAL_PENDING_STATES = ['pending', 'failure'] as const;
export type VisualPendingState = (typeof VISUAL_PENDING_STATES)[number];

export interface ActionInputs {
  readonly token: string;
  /** JSON text of the `payload` input, or null when empty. */
  readonly payload: string | null;
  /** The `sha` input (a full SHA, a short SHA or a ref), or null when empty. */
  readonly sha: string | null;
  readonly region: Region;
  readonly contextPrefix: string;
  /** Name template of the aggregate check run and commit status; `{build}` is the Sauce build. */
  readonly checkName: string;
  readonly jobCheckRuns: JobCheckRunMode;
  readonly jobStatuses: boolean;
  readonly visualPendingState: VisualPendingState;
  readonly visualEmptyPasses: boolean;
  readonly failOnMissingCommit: boolean;
  readonly dryRun: boolean;
  /** Wait before reading a written check run back to confirm it (concurrent runs). */
  readonly confirmDelayMs: number;
}

/** Every input with its default, exactly as action.yml declares them. */
export const INPUT_DEFAULTS: Readonly<Record<string, string>> = {
  'github-token': '',
  payload: '',
  sha: '',
  region: DEFAULT_REGION,
  'context-prefix': 'Sauce Labs',
  'check-name': '{prefix} / {build}',
  'job-check-runs': 'failed',
  'job-statuses': 'false',
  'visual-pending-state': 'pending',
  'visual-empty-passes': 'true',
  'fail-on-missing-commit': 'false',
  'dry-run': 'false',
  'confirm-delay-ms': '1000',
};

export type InputsResult = { readonly ok: true; readonly inputs: ActionInputs } | { readonly ok: false; readonly errors: readonly string[] };

const TRUE = ['true', 'True', 'TRUE'];
const FALSE = ['false', 'False', 'FALSE'];

/**
 * Parse and validate every input. Empty means "default". Errors name the input and the values it
 * accepts, all at once, so one failed run shows every mistake.
 */
export function parseInputs(getInput: GetInput): InputsResult {
  const errors: string[] = [];
  const read = (name: string): string => {
    const raw = (getInput(name) ?? '').trim();
    return raw === '' ? (INPUT_DEFAULTS[name] ?? '') : raw;
  };
  const bool = (name: string): boolean => {
    const v = read(name);
    if (TRUE.includes(v)) return true;
    if (FALSE.includes(v)) return false;
    errors.push(`input ${name}: expected true or false, got ${JSON.stringify(v)}`);
    return (INPUT_DEFAULTS[name] ?? 'false') === 'true';
  };
  const oneOf = <T extends string>(name: string, values: readonly T[]): T => {
    const v = read(name).toLowerCase();
    if ((values as readonly string[]).includes(v)) return v as T;
    errors.push(`input ${name}: expected one of ${values.join(', ')}, got ${JSON.stringify(read(name))}`);
    return values[0] as T;
  };

  const regionText = read('region').toLowerCase();
  let region: Region = DEFAULT_REGION;
  if (isRegion(regionText)) region = regionText;
  else errors.push(`input region: expected one of ${REGIONS.join(', ')}, got ${JSON.stringify(read('region'))}`);

  const contextPrefix = read('context-prefix').replace(/\s+/g, ' ');
  if (contextPrefix === '') errors.push('input context-prefix: must not be empty');

  const checkName = read('check-name').replace(/\s+/g, ' ');
  if (checkName === '') errors.push('input check-name: must not be empty');

  const delayText = read('confirm-delay-ms');
  let confirmDelayMs = 1000;
  if (/^\d{1,6}$/.test(delayText)) confirmDelayMs = Number(delayText);
  else errors.push(`input confirm-delay-ms: expected a whole number of milliseconds, got ${JSON.stringify(delayText)}`);

  const payload = read('payload');
  const sha = read('sha');
  const inputs: ActionInputs = {
    token: read('github-token'),
    payload: payload === '' ? null : payload,
    sha: sha === '' ? null : sha,
    region,
    contextPrefix,
    checkName,
    jobCheckRuns: oneOf('job-check-runs', JOB_CHECK_RUN_MODES),
    jobStatuses: bool('job-statuses'),
    visualPendingState: oneOf('visual-pending-state', VISUAL_PENDING_STATES),
    visualEmptyPasses: bool('visual-empty-passes'),
    failOnMissingCommit: bool('fail-on-missing-commit'),
    dryRun: bool('dry-run'),
    confirmDelayMs,
  };
  return errors.length > 0 ? { ok: false, errors } : { ok: true, inputs };
}
