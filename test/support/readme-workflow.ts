/**
 * The example workflow of README.md ("### Workflow"), parsed, so the tests run the Action with
 * exactly the permissions the README tells users to grant: README and tests cannot drift.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parse } from 'yaml';

export type PermissionLevel = 'read' | 'write' | 'none';
/** A workflow `permissions:` block: scope (`checks`, `pull-requests`...) → level. */
export type TokenPermissions = Readonly<Record<string, PermissionLevel>>;

/** The repository's README: up from this file to the folder with package.json (the benchmark runs a compiled copy of this file in .bench-build/). */
const README = (() => {
  let dir = import.meta.dirname ?? new URL('.', import.meta.url).pathname;
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('no package.json above test/support/readme-workflow');
    dir = up;
  }
  return join(dir, 'README.md');
})();

/** The first ```yaml block of README.md that is a repository_dispatch workflow, parsed. */
export function readmeWorkflow(): Record<string, unknown> {
  const text = readFileSync(README, 'utf8');
  for (const m of text.matchAll(/```ya?ml\n([\s\S]*?)```/g)) {
    const doc: unknown = parse(m[1]!);
    if (typeof doc === 'object' && doc !== null && 'on' in doc && JSON.stringify((doc as { on: unknown }).on).includes('repository_dispatch')) {
      return doc as Record<string, unknown>;
    }
  }
  throw new Error('README.md has no ```yaml workflow with on: repository_dispatch');
}

/** The README workflow's `permissions:` block. */
export function readmeWorkflowPermissions(): TokenPermissions {
  const block = readmeWorkflow()['permissions'];
  if (typeof block !== 'object' || block === null || Array.isArray(block)) throw new Error('the README workflow has no permissions: mapping');
  const out: Record<string, PermissionLevel> = {};
  for (const [scope, level] of Object.entries(block)) {
    if (level !== 'read' && level !== 'write' && level !== 'none')
      throw new Error(`README workflow permissions: ${scope}: ${String(level)} is not read, write or none`);
    out[scope] = level;
  }
  return out;
}
