/**
 * Every message the Action writes to the runner log goes through `logText`, and every write goes
 * through `runnerLog` (never `core.info` and friends directly).
 *
 * The runner reads each line of a step's output as a workflow command when it starts, after
 * leading whitespace, with `::` or `##[` (`::error title=…::`, `::add-mask::`, `::stop-commands::`).
 * Payload text (a tag, a build name, a job name, an error GitHub echoes back) therefore must never
 * begin a line: `logText` makes every message one line by writing line breaks and every other
 * control or invisible character as a visible escape (`\n`, `\r`, `\t`, `\u2028`, `\u202e`…), and
 * a message that would itself begin like a command gets a leading backslash.
 */
import * as core from '@actions/core';
import { INVISIBLE } from '../github/limits.js';

const UNSAFE = new RegExp(`${INVISIBLE.source}|[\\u2028\\u2029]`, 'gu');
const NAMED: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function escapeChar(c: string): string {
  const named = NAMED[c];
  if (named) return named;
  const code = c.codePointAt(0) ?? 0;
  return code > 0xffff ? `\\u{${code.toString(16)}}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** One safe log line: no line break, no control or invisible character, never the start of a workflow command. */
export function logText(text: string): string {
  return text.replace(UNSAFE, escapeChar).replace(/^(\s*)(::|##\[)/, '$1\\$2');
}

export interface ActionLog {
  info(message: string): void;
  notice(message: string): void;
  warning(message: string): void;
  error(message: string): void;
  /** Logs an error and makes the step fail. */
  setFailed(message: string): void;
}

/** The runner's log, every message through `logText`. */
export const runnerLog: ActionLog = {
  info: (m) => core.info(logText(m)),
  notice: (m) => core.notice(logText(m)),
  warning: (m) => core.warning(logText(m)),
  error: (m) => core.error(logText(m)),
  setFailed: (m) => core.setFailed(logText(m)),
};
