/**
 * The config file's text → a settings document, with `${NAME}` replaced by the environment's value
 * so secrets stay out of the file. `$NAME` without braces is refused rather than kept as literal
 * text (it would silently become a secret nobody knows); there is no escape for a literal `$`
 * followed by a letter: put such a value in an environment variable and write `${VAR}`.
 */
import { parse as parseYaml } from 'yaml';
import type { Env } from './types.js';
import { isRecord } from '../../sauce/json.js';

/** A problem at a place in the document; errors.ts names the place. */
export interface DocIssue {
  readonly path: readonly PropertyKey[];
  readonly message: string;
}

export type FileDoc = { readonly ok: true; readonly doc: Record<string, unknown> } | { readonly ok: false; readonly error: string };

/** Parse the text (YAML is a superset of JSON, so one parser reads both). */
export function parseFileText(text: string): FileDoc {
  let raw: unknown;
  try {
    raw = parseYaml(text, { prettyErrors: true });
  } catch (err) {
    const first = (err instanceof Error ? err.message : String(err)).split('\n')[0];
    return { ok: false, error: `not valid YAML or JSON: ${first}` };
  }
  if (!isRecord(raw)) return { ok: false, error: 'expected a mapping with a routes: list at the top level' };
  return { ok: true, doc: raw };
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Looks like an environment variable name (so it is safe to repeat in a message, even from a secret field). */
const ENV_LIKE = /^[A-Z_][A-Z0-9_]*$/;
/** `${...}`, `$name`, or any other `$`. */
const DOLLAR = /\$\{([^}]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)|\$\{?/g;

/** Expand one string; problems go to `issues` at `path`. */
export function expandString(value: string, env: Env, path: readonly PropertyKey[], issues: DocIssue[]): string {
  return value.replace(DOLLAR, (match: string, braced: string | undefined, bare: string | undefined, offset: number) => {
    if (braced !== undefined) {
      if (!NAME.test(braced)) {
        issues.push({ path, message: `"\${${ENV_LIKE.test(braced) ? braced : '…'}}" is not a variable reference: write \${NAME} with letters, digits and _` });
        return '';
      }
      const v = env[braced];
      if (v === undefined) {
        issues.push({ path, message: `environment variable ${braced} is not set: export it or write the value in the file` });
        return '';
      }
      if (v === '') {
        issues.push({ path, message: `environment variable ${braced} is set but empty: give it a value or write the value in the file` });
        return '';
      }
      return v;
    }
    if (bare !== undefined) {
      const what = ENV_LIKE.test(bare) ? `$${bare}` : `a "$" followed by a letter (character ${offset + 1})`;
      const fix = ENV_LIKE.test(bare) ? `write \${${bare}}` : 'write ${NAME}';
      issues.push({
        path,
        message: `${what} is not expanded without braces: ${fix} to read an environment variable (a literal "$" followed by a letter cannot be written in the file: put that value in an environment variable)`,
      });
      return '';
    }
    if (match === '${') {
      issues.push({ path, message: `"\${" without a closing "}" (character ${offset + 1}): write \${NAME}` });
      return '';
    }
    return match;
  });
}

/** Replace `${NAME}` in every string of the document. */
export function expandEnv(value: unknown, env: Env, issues: DocIssue[], path: readonly PropertyKey[] = []): unknown {
  if (typeof value === 'string') return expandString(value, env, path, issues);
  if (Array.isArray(value)) return value.map((v, i) => expandEnv(v, env, issues, [...path, i]));
  if (isRecord(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = expandEnv(v, env, issues, [...path, k]);
    return out;
  }
  return value;
}
