/**
 * Rules between settings, checked once each setting is valid on its own. Pure: the caller says
 * where each value came from (`Namer`), so a message names the variable or the file field.
 */
import { formatDuration, formatSize } from './units.js';

export interface Named {
  /** The message prefix: `RELAY_DEDUP_WINDOW`, or `relay.yaml: dedup_window`. */
  readonly where: string;
  /** The setting inside a sentence: `RELAY_DEDUP_WINDOW`, or `dedup_window`. */
  readonly name: string;
  /** The value is the default (nobody set it). */
  readonly isDefault: boolean;
  /** False when the value set is invalid (already reported): rules that read it are skipped. */
  readonly valid: boolean;
}

/** `dedup_window`, `github.app_id`, ... → its name and origin. */
export type Namer = (setting: string) => Named;

export interface RuleInput {
  readonly dedupWindowMs: number;
  readonly staleAfterMs: number;
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly bodyLimitBytes: number;
  readonly maxBufferedBytes: number;
}

export interface RuleResult {
  readonly errors: string[];
  readonly warnings: string[];
}

/** Below this, `stale_after` filters job events that Sauce merely delivered or retried late. */
export const STALE_AFTER_WARN_BELOW_MS = 3_600_000;

function valued(n: Named, text: string): string {
  return n.isDefault ? `${text}, the default` : text;
}

export function settingRules(v: RuleInput, named: Namer): RuleResult {
  const errors: string[] = [];
  const warnings: string[] = [];
  const dedup = named('dedup_window');
  const stale = named('stale_after');
  if (dedup.valid && stale.valid && v.dedupWindowMs <= v.staleAfterMs) {
    // A replay of a captured job body is refused as a duplicate (same body within the dedup window)
    // or as stale (its own time older than stale_after). The window must cover every body that is
    // not yet stale, or a replay between the two is relayed again.
    errors.push(
      `${dedup.where}: ${valued(dedup, formatDuration(v.dedupWindowMs))} must be longer than ${stale.name} (${valued(stale, formatDuration(v.staleAfterMs))}): ` +
        `a replayed job body must be either a duplicate or stale, and one older than the dedup window but not yet stale would be relayed again; ` +
        `raise ${dedup.name} or lower ${stale.name}`,
    );
  }
  if (stale.valid && v.staleAfterMs < STALE_AFTER_WARN_BELOW_MS) {
    warnings.push(
      `${stale.where}: ${formatDuration(v.staleAfterMs)} is less than ${formatDuration(STALE_AFTER_WARN_BELOW_MS)}: job events Sauce delivers or retries later than that after the job changed are answered 202 filtered and dropped`,
    );
  }
  const headers = named('headers_timeout');
  const request = named('request_timeout');
  if (headers.valid && request.valid && v.headersTimeoutMs > v.requestTimeoutMs) {
    errors.push(
      `${headers.where}: ${valued(headers, formatDuration(v.headersTimeoutMs))} is longer than ${request.name} (${valued(request, formatDuration(v.requestTimeoutMs))}), ` +
        `whose deadline includes the headers: lower it or raise ${request.name}`,
    );
  }
  const buffered = named('max_buffered');
  const limit = named('body_limit');
  if (buffered.valid && limit.valid && v.maxBufferedBytes < v.bodyLimitBytes) {
    errors.push(
      `${buffered.where}: ${valued(buffered, formatSize(v.maxBufferedBytes))} is less than ${limit.name} (${valued(limit, formatSize(v.bodyLimitBytes))}): ` +
        `a body at the limit could never be taken in; raise it or lower ${limit.name}`,
    );
  }
  return { errors, warnings };
}

export interface Credentials {
  readonly token: boolean;
  readonly appId: boolean;
  readonly privateKey: boolean;
}

/** A GitHub App needs both its id and its key. */
export function githubRules(c: Credentials, named: Namer): string[] {
  const id = named('github.app_id');
  const key = named('github.private_key');
  if (c.appId && !c.privateKey) return [`${key.where}: ${id.name} is set but the App private key is not: set both, or neither`];
  if (c.privateKey && !c.appId) return [`${id.where}: ${key.name} is set but the App id is not: set both, or neither`];
  return [];
}

/** Credentials that let the relay dispatch for real (else dry-run). */
export function canDispatch(c: Credentials): boolean {
  return c.token || (c.appId && c.privateKey);
}
