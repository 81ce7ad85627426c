#!/usr/bin/env node
// Release the Action and the relay package: version X.Y.Z, tag vX.Y.Z, and move the major tag vX
// that users pin (`uses: <owner>/sauce-github-bridge@v1`).
//
//   npm run release -- 1.4.0          prepare the release commit and tags locally
//   npm run release -- 1.4.0 --push   ... and push them (the major tag with --force: it moves)
//
// It refuses, changing nothing, when: the version is not X.Y.Z or not above package.json's; the
// tag exists; the working tree is not clean; CHANGELOG.md has no "## Unreleased" section with
// entries; dist/ is not the bundle of src/ (`npm run bundle` changes it); the tests fail. Then it
// moves the Unreleased entries under "## X.Y.Z - <date>", sets the version, commits, and tags.
// RELEASE_TEST_COMMAND replaces `npm test` (the script's own tests use it).
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

function fail(message) {
  process.stderr.write(`release: ${message}\n`);
  process.exit(1);
}

const git = (...args) => execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
const args = process.argv.slice(2);
const push = args.includes('--push');
const version = args.find((a) => !a.startsWith('--'));
if (!version || !/^\d+\.\d+\.\d+$/.test(version)) fail('usage: npm run release -- X.Y.Z [--push]  (three numbers, no "v")');

const root = git('rev-parse', '--show-toplevel');
process.chdir(root);
const tag = `v${version}`;
const major = `v${version.split('.')[0]}`;

const pkgPath = join(root, 'package.json');
const current = JSON.parse(readFileSync(pkgPath, 'utf8')).version ?? '0.0.0';
const newer = (a, b) => {
  const [x, y] = [a, b].map((v) => v.split('.').map(Number));
  for (let i = 0; i < 3; i += 1) if (x[i] !== y[i]) return x[i] > y[i];
  return false;
};
if (!newer(version, current)) fail(`${version} is not above the current version ${current}`);
if (git('tag', '--list', tag) !== '') fail(`tag ${tag} exists already`);
if (git('status', '--porcelain') !== '') fail('the working tree has changes: commit or stash them first');

const changelogPath = join(root, 'CHANGELOG.md');
const changelog = readFileSync(changelogPath, 'utf8');
const unreleased = /^## Unreleased[^\n]*\n([\s\S]*?)(?=^## |(?![\s\S]))/m.exec(changelog);
if (!unreleased || unreleased[1].trim() === '') fail('CHANGELOG.md needs a "## Unreleased" section that says what this release changes');

// dist/ must be what src/ bundles to: users run the committed dist/index.js, not src/.
const bundle = spawnSync('npm', ['run', 'bundle'], { stdio: 'inherit' });
if (bundle.status !== 0) fail('npm run bundle failed');
if (git('status', '--porcelain', '--', 'dist') !== '') {
  execFileSync('git', ['checkout', '--', 'dist']);
  fail('dist/ is stale: npm run bundle changed it. Commit the rebuilt dist/ first');
}

const testCommand = process.env.RELEASE_TEST_COMMAND ?? 'npm test';
const tests = spawnSync(testCommand, { shell: true, stdio: 'inherit' });
if (tests.status !== 0) fail(`the tests failed (${testCommand}): nothing was released`);

const date = new Date().toISOString().slice(0, 10);
writeFileSync(changelogPath, changelog.replace(/^## Unreleased[^\n]*\n/m, `## Unreleased\n\n## ${version} - ${date}\n`));
execFileSync('npm', ['version', version, '--no-git-tag-version', '--allow-same-version'], { stdio: 'ignore' });
const changed = ['package.json', 'CHANGELOG.md'];
if (git('ls-files', 'package-lock.json') !== '') changed.push('package-lock.json');
execFileSync('git', ['add', ...changed]);
execFileSync('git', ['commit', '-q', '-m', `Release ${tag}`]);
execFileSync('git', ['tag', '-a', tag, '-m', `Release ${tag}`]);
execFileSync('git', ['tag', '-f', '-a', major, '-m', `Latest ${major}.x release: ${tag}`]);
process.stdout.write(`release: ${tag} tagged, ${major} moved to it\n`);

if (push) {
  execFileSync('git', ['push', 'origin', 'HEAD', tag], { stdio: 'inherit' });
  execFileSync('git', ['push', '--force', 'origin', major], { stdio: 'inherit' });
  process.stdout.write(`release: pushed ${tag} and ${major}\n`);
} else {
  process.stdout.write(`release: push with: git push origin HEAD ${tag} && git push --force origin ${major}\n`);
}
