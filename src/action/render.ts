/**
 * Markdown for check runs and the job summary. Every payload string goes through `escapeMd` (or
 * a code fence longer than any backtick run in it); every link is a Sauce Labs URL.
 */
import { fitSummary, truncateBytes, utf8Bytes, visibleLine, visibleText, CHECK_OUTPUT_MAX_BYTES } from '../github/limits.js';
import { isSauceUrl } from '../sauce/urls.js';
import { visualStatusIsOpen, visualStatusIsUnfinished, visualStatusListsDiffs } from '../sauce/visual-api.js';
import { diffTotal, type ListedDiffStatus, type VisualDiff, type VisualDiffList } from '../sauce/visual-notes.js';
import { aggregateJobs, formatSpan, jobOutcome, jobResult, type AggregateOutcome, type VisualOutcome } from './mapping.js';
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

const DIFF_LABEL: Readonly<Record<ListedDiffStatus, string>> = {
  UNAPPROVED: '🟡 unapproved',
  REJECTED: '❌ rejected',
  ERRORED: '⚠️ errored',
  QUEUED: '⏳ queued',
  APPROVED: '✅ approved',
};

/** UTC, to the second: `2026-07-20 14:03:12 UTC`. */
function utc(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

/** One row of the diffs table; every payload text escaped, nothing linked (see README: links only). */
export function diffRow(d: VisualDiff): string {
  const where = [d.suite, d.test].filter((x): x is string => !!x).join(' › ');
  const snapshot = (d.snapshot === null ? '(snapshot not returned by Sauce)' : escapeMd(d.snapshot)) + (d.invalid ? ` — invalid: ${escapeMd(d.invalid)}` : '');
  const cells = [
    DIFF_LABEL[d.status],
    snapshot,
    where ? escapeMd(where) : '–',
    escapeMd(d.device ?? d.browser ?? '–'),
    escapeMd(d.os ?? '–'),
    escapeMd(d.viewport ?? '–'),
  ];
  return `| ${cells.join(' | ')} |`;
}

/**
 * The diffs section: a table of the diffs the relay read (in its order: unapproved, rejected,
 * errored, queued, approved), as many rows as `maxBytes` holds, then one "…and N more" line for
 * what is not shown, whether the relay did not read it or GitHub's limit cut it.
 */
export function renderDiffs(list: VisualDiffList, buildHref: string | null, maxBytes: number): string {
  const total = Math.max(diffTotal(list), list.items.length);
  const head =
    `#### ${total === 1 ? '1 snapshot' : `${total} snapshots`} with changes or errors\n\n` +
    '| Status | Snapshot | Suite › test | Browser / device | OS | Viewport |\n|---|---|---|---|---|---|\n';
  const foot = `\n_Read from Sauce by the relay at ${utc(list.readAt)}. Links only: review the snapshots on the build page in Sauce._\n`;
  const more = (n: number): string => `…and ${n} more: ${buildHref !== null ? `[review them in Sauce](${buildHref})` : 'see the build in Sauce'}\n`;
  const rows = list.items.map(diffRow);
  const notRead = total - rows.length;
  let used = utf8Bytes(head) + utf8Bytes(foot);
  let kept = 0;
  for (const row of rows) {
    const after = rows.length - kept - 1 + notRead;
    const reserve = after > 0 ? utf8Bytes(more(after)) : 0;
    if (used + utf8Bytes(row) + 1 + reserve > maxBytes) break;
    used += utf8Bytes(row) + 1;
    kept += 1;
  }
  const hidden = rows.length - kept + notRead;
  const text =
    head +
    rows
      .slice(0, kept)
      .map((r) => `${r}\n`)
      .join('') +
    (hidden > 0 ? more(hidden) : '') +
    foot;
  return truncateBytes(text, maxBytes);
}

/** The most of the ready-to-paste APPROVED event shown (it is shown whole or not at all). */
const APPROVED_EVENT_MAX_BYTES = 4_000;

/** The relay's words about the build, shown as such: its verdict, or that it stopped re-reading. */
function relayBanner(v: VisualRecord): string {
  const parts: string[] = [];
  const { stuck, watchEnded } = v.notes;
  if (stuck && visualStatusIsUnfinished(v.status)) {
    parts.push(
      `> ⏱ **This is the relay's verdict, not Sauce's.** Sauce still reports this build as \`${v.status}\`. ` +
        `The relay first saw it at ${utc(stuck.since)} and found it unfinished ${formatSpan(stuck.afterMs)} later (${utc(stuck.at)}). ` +
        'A Visual build stays queued or running when the test run stopped before it finished the build. ' +
        "**Re-run the tests**, or finish the build in Sauce (Sauce Visual's `finishBuild`, with this build's id). " +
        'If Sauce reports a result later, it replaces this verdict.\n',
    );
  }
  if (watchEnded && visualStatusIsOpen(v.status)) {
    parts.push(
      `> 🕒 **The relay stopped re-reading this build at ${utc(watchEnded.at)}**, ${formatSpan(watchEnded.afterMs)} after its first webhook ` +
        '(`RELAY_VISUAL_REFRESH_FOR`), so a review in Sauce no longer updates this check by itself. ' +
        'To refresh it by hand after the review: run this workflow by hand (`workflow_dispatch`) with the event below as the `payload` input, ' +
        'or re-run the tests (the new build compares against the approved baselines).\n',
    );
    const approved = {
      build_id: v.buildId,
      ...(v.buildName !== null ? { build_name: v.buildName } : {}),
      ...(v.buildUrl !== null ? { build_url: v.buildUrl } : {}),
      ...(v.project !== null ? { project: v.project } : {}),
      ...(v.branch !== null ? { branch: v.branch } : {}),
      status: 'APPROVED',
      summary: { ...v.summary, approved: v.summary.approved + v.summary.unapproved, unapproved: 0 },
    };
    // Whole or not at all: a cut event is not JSON, and no field can go (the build name may carry
    // the commit, the project names the status).
    const event = JSON.stringify(approved);
    parts.push(
      utf8Bytes(event) <= APPROVED_EVENT_MAX_BYTES && visibleText(event) === event
        ? `Once every change is approved in Sauce:\n\n${codeBlock(event, APPROVED_EVENT_MAX_BYTES)}\n`
        : 'Once every change is approved in Sauce, use the build\'s webhook body with `"status": "APPROVED"` as the `payload` input (too long, or holding invisible characters, to show here).\n',
    );
  }
  return parts.length > 0 ? `${parts.join('\n')}\n` : '';
}

/** A Visual check run: the one next step with the link, the relay's words, the counts, the diffs, the build. */
export function renderVisual(v: VisualRecord, outcome: VisualOutcome, maxBytes: number = CHECK_OUTPUT_MAX_BYTES): { title: string; summary: string } {
  const href = v.buildUrl !== null ? safeHref(v.buildUrl) : null;
  const next =
    href !== null
      ? `**${escapeMd(outcome.nextStep)} → [open the build](${href})**`
      : `**${escapeMd(outcome.nextStep)}** (no link: the build URL is not a Sauce Labs URL)`;
  const head =
    `### ${STATE_ICON[outcome.state]} ${escapeMd(outcome.description)}\n\n${next}\n\n` +
    relayBanner(v) +
    `| ${VISUAL_COLUMNS.map((c) => c[0]!.toUpperCase() + c.slice(1)).join(' | ')} |\n|${VISUAL_COLUMNS.map(() => '---:').join('|')}|\n` +
    `| ${VISUAL_COLUMNS.map((c) => String(v.summary[c])).join(' | ')} |\n\n`;
  const tail =
    `Build: **${escapeMd(v.buildName ?? v.buildId)}**` +
    (v.project ? ` · project **${escapeMd(v.project)}**` : '') +
    (v.branch ? ` · branch **${escapeMd(v.branch)}**` : '') +
    ` · Sauce status \`${v.status}\`\n`;
  const list = v.notes.diffs;
  // Only a build whose status lists them: an older list must not outlive the status it was read for.
  const showDiffs = list !== null && list.items.length > 0 && visualStatusListsDiffs(v.status);
  const room = maxBytes - utf8Bytes(head) - utf8Bytes(tail) - 1;
  const diffs = showDiffs && room > 0 ? `${renderDiffs(list, href, room)}\n` : '';
  return { title: outcome.description, summary: truncateBytes(head + diffs + tail, maxBytes) };
}
