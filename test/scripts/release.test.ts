/**
 * scripts/release.js in a throwaway git repository: it tags vX.Y.Z and moves vX, and refuses (with
 * nothing changed) on a stale dist/, failing tests, a dirty tree, an old version or an empty
 * changelog. The repository's `bundle` script stands in for ncc; RELEASE_TEST_COMMAND for npm test.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from '@jest/globals';

const SCRIPT = join(import.meta.dirname, '..', '..', 'scripts', 'release.js');
let repo: string;
/** npm's cache and config live here, outside the repository under test. */
const home = mkdtempSync(join(tmpdir(), 'release-test-home-'));

const git = (...args: string[]): string => execFileSync('git', args, { cwd: repo, encoding: 'utf8' }).trim();

function release(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [SCRIPT, ...args], {
    cwd: repo,
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', HOME: home, RELEASE_TEST_COMMAND: 'true', npm_config_update_notifier: 'false', ...env },
  });
}

/** A repository whose `npm run bundle` writes `bundle` into dist/index.js. */
function makeRepo(bundle: string): void {
  repo = mkdtempSync(join(tmpdir(), 'release-test-'));
  git('init', '-q', '-b', 'main');
  git('config', 'user.email', 'release@test.invalid');
  git('config', 'user.name', 'Release Test');
  const script = `node -e "require('fs').writeFileSync('dist/index.js', ${JSON.stringify(bundle).replace(/"/g, "'")})"`;
  writeFileSync(join(repo, 'package.json'), `${JSON.stringify({ name: 'x', version: '0.1.0', private: true, scripts: { bundle: script } }, null, 2)}\n`);
  writeFileSync(join(repo, 'CHANGELOG.md'), '# Changelog\n\n## Unreleased\n\n- First release.\n\n## 0.1.0 - 2026-01-01\n\n- Start.\n');
  mkdirSync(join(repo, 'dist'));
  writeFileSync(join(repo, 'dist', 'index.js'), 'built');
  git('add', '-A');
  git('commit', '-q', '-m', 'start');
}

describe('scripts/release.js', () => {
  beforeEach(() => makeRepo('built'));
  afterEach(() => rmSync(repo, { recursive: true, force: true }));
  afterAll(() => rmSync(home, { recursive: true, force: true }));

  it('tags vX.Y.Z, moves vX to it, dates the changelog and sets the version', () => {
    const first = release(['1.0.0']);
    expect({ status: first.status, stderr: first.stderr }).toEqual({ status: 0, stderr: expect.any(String) });
    const head = git('rev-parse', 'HEAD');
    expect(git('rev-parse', 'v1.0.0^{commit}')).toBe(head);
    expect(git('rev-parse', 'v1^{commit}')).toBe(head);
    expect(JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')).version).toBe('1.0.0');
    expect(readFileSync(join(repo, 'CHANGELOG.md'), 'utf8')).toMatch(/## Unreleased\n\n## 1\.0\.0 - \d{4}-\d{2}-\d{2}\n\n- First release\./);
    expect(git('log', '-1', '--format=%s')).toBe('Release v1.0.0');

    writeFileSync(join(repo, 'CHANGELOG.md'), readFileSync(join(repo, 'CHANGELOG.md'), 'utf8').replace('## Unreleased\n', '## Unreleased\n\n- A fix.\n'));
    git('commit', '-q', '-am', 'a fix');
    expect(release(['1.0.1']).status).toBe(0);
    expect(git('rev-parse', 'v1^{commit}')).toBe(git('rev-parse', 'HEAD'));
    expect(git('rev-parse', 'v1.0.0^{commit}')).toBe(head);
  });

  it('refuses when dist/ is not the bundle of the source, and leaves the tree as it was', () => {
    rmSync(repo, { recursive: true, force: true });
    makeRepo('rebuilt from newer source');
    const before = git('rev-parse', 'HEAD');
    const r = release(['1.0.0']);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('dist/ is stale');
    expect(git('tag', '--list')).toBe('');
    expect(git('rev-parse', 'HEAD')).toBe(before);
    expect(git('status', '--porcelain')).toBe('');
  });

  it('refuses when the tests fail', () => {
    const r = release(['1.0.0'], { RELEASE_TEST_COMMAND: 'false' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('the tests failed');
    expect(git('tag', '--list')).toBe('');
    expect(git('log', '--format=%s')).toBe('start');
  });

  it.each([
    ['a version that is not X.Y.Z', ['v1.0'], 'usage'],
    ['a version not above the current one', ['0.1.0'], 'is not above'],
  ])('refuses %s', (_what, args, message) => {
    const r = release(args);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(message);
    expect(git('tag', '--list')).toBe('');
  });

  it('refuses with uncommitted changes or an empty Unreleased section', () => {
    writeFileSync(join(repo, 'notes.txt'), 'draft');
    expect(release(['1.0.0']).stderr).toContain('working tree has changes');
    rmSync(join(repo, 'notes.txt'));
    writeFileSync(join(repo, 'CHANGELOG.md'), '# Changelog\n\n## Unreleased\n\n## 0.1.0 - 2026-01-01\n\n- Start.\n');
    git('commit', '-q', '-am', 'empty changelog');
    const r = release(['1.0.0']);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('CHANGELOG.md needs');
    expect(git('tag', '--list')).toBe('');
  });
});
