/** The job summary (`GITHUB_STEP_SUMMARY`): the same tables as the check runs, plus what was left out. */
import { truncateBytes } from '../github/limits.js';
import type { EngineReport } from './engine.js';
import { escapeMd } from './render.js';

/** GitHub accepts 1 MiB per step; stay clearly below it. */
export const STEP_SUMMARY_MAX_BYTES = 1_000_000;

const ICON = { success: '✅', failure: '❌', error: '⚠️', pending: '⏳' } as const;

export function renderStepSummary(report: EngineReport, opts: { readonly dryRun: boolean; readonly rejected: readonly string[] }): string {
  let md = `## Sauce Labs results${opts.dryRun ? ' (dry run: nothing was written)' : ''}\n\n`;
  if (report.targets.length > 0) {
    // In a dry run nothing is written: the column says what a real run would write.
    md += `| | Check / status context | Commit | Result | ${opts.dryRun ? 'Would write' : 'Written'} |\n|---|---|---|---|---|\n`;
    for (const t of report.targets) {
      const done = opts.dryRun ? t.wouldWrite : t.written;
      md += `| ${ICON[t.state]} | ${escapeMd(t.name)} | \`${t.sha.slice(0, 7)}\` | ${escapeMd(t.description)} | ${done ? 'yes' : 'no (already up to date)'} |\n`;
    }
    md += '\n';
    for (const t of report.targets.filter((x) => x.kind !== 'job')) {
      md += `<details${t.state === 'success' ? '' : ' open'}><summary>${escapeMd(t.name)} on ${t.sha.slice(0, 7)}</summary>\n\n${t.summary}\n</details>\n\n`;
    }
  } else {
    md += `_No status or check run ${opts.dryRun ? 'would be' : 'was'} written._\n\n`;
  }
  const problems = [
    ...report.unresolved.map((u) => `Event #${u.index}: ${u.message}`),
    ...report.skipped.map((s) => `Event #${s.index}: ${s.message}`),
    ...opts.rejected,
    ...report.warnings,
  ];
  if (problems.length > 0) md += `### Notes\n\n${problems.map((p) => `- ${escapeMd(p)}`).join('\n')}\n`;
  return truncateBytes(md, STEP_SUMMARY_MAX_BYTES);
}
