/**
 * Finding the commit, as a pure function of the event and the `sha` input:
 *  1. the `sha` input;  2. `commit_id` (a short SHA or ref is resolved);
 *  3. a 40-hex SHA inside `build`, `build_name` or `name`;  4. the saucectl tag `ci:ssha:`;
 *  5. `branch_name`, `branch` or `ci:ref:` (the branch head).
 * The shell resolves the candidates in this order and takes the first that resolves.
 */
import { visibleLine } from '../github/limits.js';
import type { SauceEvent } from './event.js';

export type CandidateKind = 'sha' | 'short-sha' | 'ref' | 'branch' | 'pull';

export interface Candidate {
  readonly kind: CandidateKind;
  /** A full SHA, short SHA, ref or branch name; for `pull`, the PR number. */
  readonly value: string;
  /** Where it was found, e.g. `commit_id`, `tag ci:ssha`. */
  readonly source: string;
}

const FULL_SHA = /^[0-9a-f]{40}$/i;
const SHORT_SHA = /^[0-9a-f]{7,39}$/i;
const SHA_INSIDE = /(?<![0-9a-z])[0-9a-f]{40}(?![0-9a-z])/i;
/** `ci:ref` of a `pull_request` run: `123/merge` (GITHUB_REF_NAME) or `refs/pull/123/merge`. */
const PULL_REF = /^(?:refs\/pull\/)?(\d+)\/(?:merge|head)$/;

/** What a commit-ish string is: a full SHA, a short SHA, a PR ref or another ref. */
export function classify(value: string): CandidateKind {
  if (FULL_SHA.test(value)) return 'sha';
  if (SHORT_SHA.test(value)) return 'short-sha';
  if (PULL_REF.test(value)) return 'pull';
  return 'ref';
}

function candidate(kind: CandidateKind, value: string, source: string): Candidate {
  if (kind === 'pull') return { kind, value: PULL_REF.exec(value)?.[1] ?? value, source };
  return { kind, value: kind === 'sha' ? value.toLowerCase() : value, source };
}

function branchCandidate(value: string, source: string): Candidate {
  if (PULL_REF.test(value)) return candidate('pull', value, source);
  return candidate('branch', value.replace(/^refs\/heads\//, ''), source);
}

export function commitCandidates(event: SauceEvent, shaInput: string | null): Candidate[] {
  const out: Candidate[] = [];
  if (shaInput) out.push(candidate(classify(shaInput.trim()), shaInput.trim(), 'input sha'));
  if (event.kind === 'job') {
    if (event.commitId) out.push(candidate(classify(event.commitId.trim()), event.commitId.trim(), 'commit_id'));
    for (const [field, value] of [
      ['build', event.build],
      ['name', event.name],
    ] as const) {
      const m = value ? SHA_INSIDE.exec(value) : null;
      if (m) out.push(candidate('sha', m[0], field));
    }
    const ssha = event.sauceTags.shortSha;
    if (ssha && (FULL_SHA.test(ssha) || SHORT_SHA.test(ssha))) out.push(candidate(classify(ssha), ssha, 'tag ci:ssha'));
    if (event.branchName) out.push(branchCandidate(event.branchName.trim(), 'branch_name'));
    if (event.sauceTags.ref) out.push(branchCandidate(event.sauceTags.ref, 'tag ci:ref'));
  } else {
    const m = event.buildName ? SHA_INSIDE.exec(event.buildName) : null;
    if (m) out.push(candidate('sha', m[0], 'build_name'));
    if (event.branch) out.push(branchCandidate(event.branch.trim(), 'branch'));
  }
  const seen = new Set<string>();
  return out.filter((c) => {
    const key = `${c.kind}:${c.value}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** The warning for an event whose commit could not be found: which fields were empty, how to set them. */
export function missingCommitMessage(event: SauceEvent, tried: readonly Candidate[]): string {
  const triedText = tried.length > 0 ? ` Tried and could not resolve: ${tried.map((c) => `${c.source}=${JSON.stringify(c.value)}`).join(', ')}.` : '';
  if (event.kind === 'job') {
    const empty = ['commit_id', 'build', 'name', 'tags ci:ssha', 'branch_name', 'tags ci:ref'].filter((f) => {
      if (f === 'commit_id') return !event.commitId;
      if (f === 'build') return !event.build;
      if (f === 'name') return !event.name;
      if (f === 'tags ci:ssha') return !event.sauceTags.shortSha;
      if (f === 'branch_name') return !event.branchName;
      return !event.sauceTags.ref;
    });
    return (
      `No commit for Sauce job ${event.id} (${event.family}).` +
      (empty.length > 0 ? ` Empty: ${empty.join(', ')}.` : '') +
      triedText +
      ' Set the capability custom-data.commit to the PR head SHA (github.event.pull_request.head.sha, not github.sha),' +
      ' or run with saucectl (it tags jobs with ci:ssha and ci:ref; put "$GITHUB_SHA" in sauce.metadata.build),' +
      ' or set the sha input of this action.'
    );
  }
  const empty = [!event.buildName ? 'build_name' : 'build_name (no 40-hex SHA in it)', ...(event.branch ? [] : ['branch'])];
  return (
    `No commit for Sauce Visual build ${event.buildId}.` +
    ` Empty: ${empty.join(', ')}.` +
    triedText +
    ' Put the commit SHA in the Visual build name (SAUCE_VISUAL_BUILD_NAME="<name> sha:${{ github.event.pull_request.head.sha }}")' +
    ' or set the branch, or set the sha input of this action.'
  );
}

/**
 * The build name with any commit SHA cut out, so a name built from it stays the same from one
 * commit to the next (which branch protection needs). `shortShas` are cut as whole tokens too.
 */
export function stableLabel(text: string | null, shortShas: readonly (string | null)[] = []): string | null {
  if (!text) return null;
  let out = visibleLine(text).replace(/(?:\b(?:sha|commit|rev)\s*[-:=@#]?\s*)?(?<![0-9a-z])[0-9a-f]{40}(?![0-9a-z])/gi, ' ');
  for (const s of shortShas) {
    if (!s || !SHORT_SHA.test(s)) continue;
    out = out.replace(new RegExp(`(?:\\b(?:sha|commit|rev)\\s*[-:=@#]?\\s*)?(?<![0-9a-z])${s}[0-9a-f]*(?![0-9a-z])`, 'gi'), ' ');
  }
  out = out.replace(/\s+/g, ' ').replace(/^[\s\-_:@#/,.]+|[\s\-_:@#/,.]+$/g, '');
  return out === '' ? null : out;
}
