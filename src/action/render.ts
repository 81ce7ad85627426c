/**
 * Markdown for check runs and the job summary. Every payload string goes through `escapeMd` (or
 * a code fence longer than any backtick run in it); every link is a Sauce Labs URL.
 */
import { fitSummary, truncateBytes, visibleLine, visibleText, CHECK_OUTPUT_MAX_BYTES } from '../github/limits.js';
import { isSauceUrl } from '../sauce/urls.js';
import { aggregateJobs, jobOutcome, jobResult, type AggregateOutcome, type VisualOutcome } from './mapping.js';
import type { JobRecord, VisualRecord } from './state.js';

/**
 * Inline-safe text: no HTML, no markdown syntax, no table breaks, no autolinks, one line, and no
 * invisible or control characters (`visibleLine`: bidi overrides, zero-width characters...).
 * `|` is escaped (a GFM table cell boundary), backticks, `*`, `_`, `~`, `[`, `]`, `\` too.
 */
export function escapeMd(text: string): string {
  return visibleLine(text)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/[\\`*_~[\]|#!()]/g, (c) => `\\${c}`)
    .replace(/:\/\//g, ':\u200b//')
    .replace(/\bwww\./gi, (m) => `${m.slice(0, 3)}\u200b.`)
    .replace(/@/g, '@\u200b');
}

/** A URL as a markdown link target: only Sauce Labs https URLs; parentheses and spaces encoded. */
export function safeHref(url: string): string | null {
  if (!isSauceUrl(url)) return null;
  return new URL(url).href.replace(/\(/g, '%28').replace(/\)/g, '%29').replace(/ /g, '%20');
}

export function link(text: string, url: string | null): string {
  const href = url === null ? null : safeHref(url);
  return href === null ? escapeMd(text) : `[${escapeMd(text)}](${href})`;
}

/** A fenced code block that the text cannot close, without invisible or control characters (`visibleText`). */
export function codeBlock(text: string, maxBytes = 16_000): string {
  const body = truncateBytes(visibleText(text), maxBytes);
  const longest = Math.max(0, ...[...body.matchAll(/`+/g)].map((m) => m[0].length));
  const fence = '`'.repeat(Math.max(3, longest + 1));
  return `${fence}text\n${body}\n${fence}`;
}

export function formatDuration(sec: number | null): string {
  if (sec === null) return '–';
  const h = Math.floor(sec / 3600);
  const m = Math.floor((sec % 3600) / 60);
  const s = sec % 60;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${s}s`;
  return `${s}s`;
}

const RESULT_ORDER = { failed: 0, errored: 1, 'no-result': 2, passed: 3 } as const;

const bytesText = (n: number): string => `${new Intl.NumberFormat('en-US').format(n)} bytes`;

/** `exception (71,234 bytes)`, one per field the relay cut. */
function cutFields(truncated: JobRecord['truncated']): string {
  return truncated.map((t) => `${escapeMd(t.field)} (${bytesText(t.bytes)})`).join(', ');
}

export function jobRow(j: JobRecord, url: string | null): string {
  const outcome = jobOutcome(jobResult(j.status, j.passed));
  const where = j.device ?? j.browser ?? '–';
  const cut = j.truncated.length > 0 ? ` ✂ cut by the relay: ${cutFields(j.truncated)}` : '';
  const cells = [
    outcome.label,
    escapeMd(j.name ?? j.id) + cut,
    escapeMd(where),
    escapeMd(j.os ?? '–'),
    formatDuration(j.durationSec),
    url === null ? '–' : link('open', url),
  ];
  return `| ${cells.join(' | ')} |`;
}

const STATE_ICON = { success: '✅', failure: '❌', error: '⚠️', pending: '⏳' } as const;

export interface AggregateView {
  readonly title: string;
  readonly summary: string;
  readonly outcome: AggregateOutcome;
}

/** The aggregate check run: a title and a table of every job (failed first), cut at the byte limit. */
export function renderAggregate(
  jobs: readonly JobRecord[],
  opts: { readonly build: string | null; readonly jobUrl: (id: string) => string; readonly maxBytes?: number },
): AggregateView {
  const outcome = aggregateJobs(jobs.map((j) => jobResult(j.status, j.passed)));
  const sorted = [...jobs].sort((a, b) => {
    const ra = RESULT_ORDER[jobResult(a.status, a.passed)];
    const rb = RESULT_ORDER[jobResult(b.status, b.passed)];
    if (ra !== rb) return ra - rb;
    const na = a.name ?? a.id;
    const nb = b.name ?? b.id;
    return na < nb ? -1 : na > nb ? 1 : a.id < b.id ? -1 : 1;
  });
  const head =
    `### ${STATE_ICON[outcome.state]} ${escapeMd(outcome.description)}\n\n` +
    (opts.build ? `Sauce build: **${escapeMd(opts.build)}**\n\n` : '') +
    '| Result | Job | Browser / device | OS | Duration | Link |\n|---|---|---|---|---|---|\n';
  const rows = sorted.map((j) => jobRow(j, opts.jobUrl(j.id)));
  const tail = '\n_Reported from Sauce Labs webhooks. A job appears once its first event arrives; a later event for the same job replaces it._\n';
  return { title: outcome.description, summary: fitSummary({ head, rows, tail }, opts.maxBytes ?? CHECK_OUTPUT_MAX_BYTES), outcome };
}

export interface JobDetail {
  readonly record: JobRecord;
  readonly error: string | null;
  readonly exception: string | null;
  readonly build: string | null;
  readonly url: string;
}

/** A per-job check run: result, environment, the error and exception text, and the link. */
export function renderJob(d: JobDetail): { title: string; summary: string } {
  const j = d.record;
  const outcome = jobOutcome(jobResult(j.status, j.passed));
  const name = j.name ?? j.id;
  let summary =
    `### ${outcome.label}: ${escapeMd(name)}\n\n` +
    '| Browser / device | OS | Duration | Sauce status | Job |\n|---|---|---|---|---|\n' +
    `| ${escapeMd(j.device ?? j.browser ?? '–')} | ${escapeMd(j.os ?? '–')} | ${formatDuration(j.durationSec)} | ${escapeMd(j.status)} | ${link('open in Sauce Labs', d.url)} |\n`;
  if (d.build) summary += `\nSauce build: **${escapeMd(d.build)}**\n`;
  if (j.truncated.length > 0) {
    summary +=
      `\n> ✂ **Cut by the relay** so the event fits one repository_dispatch: ${cutFields(j.truncated)} originally.` +
      ` The full text is on ${link('the job in Sauce Labs', d.url)}.\n`;
  }
  if (d.error) summary += `\n**Error**\n\n${codeBlock(d.error)}\n`;
  if (d.exception) summary += `\n**Exception**\n\n${codeBlock(d.exception)}\n`;
  return { title: `${outcome.description}: ${name}`, summary: truncateBytes(summary, CHECK_OUTPUT_MAX_BYTES) };
}

const VISUAL_COLUMNS = ['errored', 'approved', 'equal', 'rejected', 'unapproved', 'queued'] as const;

/** A Visual check run: the one next step with the link, the snapshot counts, the build. */
export function renderVisual(v: VisualRecord, outcome: VisualOutcome): { title: string; summary: string } {
  const href = v.buildUrl !== null ? safeHref(v.buildUrl) : null;
  const next =
    href !== null
      ? `**${escapeMd(outcome.nextStep)} → [open the build](${href})**`
      : `**${escapeMd(outcome.nextStep)}** (no link: the build URL is not a Sauce Labs URL)`;
  const summary =
    `### ${STATE_ICON[outcome.state]} ${escapeMd(outcome.description)}\n\n${next}\n\n` +
    `| ${VISUAL_COLUMNS.map((c) => c[0]!.toUpperCase() + c.slice(1)).join(' | ')} |\n|${VISUAL_COLUMNS.map(() => '---:').join('|')}|\n` +
    `| ${VISUAL_COLUMNS.map((c) => String(v.summary[c])).join(' | ')} |\n\n` +
    `Build: **${escapeMd(v.buildName ?? v.buildId)}**` +
    (v.project ? ` · project **${escapeMd(v.project)}**` : '') +
    (v.branch ? ` · branch **${escapeMd(v.branch)}**` : '') +
    ` · Sauce status \`${v.status}\`\n`;
  return { title: outcome.description, summary: truncateBytes(summary, CHECK_OUTPUT_MAX_BYTES) };
}
