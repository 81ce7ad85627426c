/**
 * Which of the SQLite store's commits fsync, counted from outside: the store runs in a child
 * process under `strace`, which logs every fsync/fdatasync the process makes, and the child marks
 * where each phase starts with a failing `access()` of a path naming the phase.
 *
 * - Every insert COMMIT syncs the log before the insert resolves (synchronous=FULL): a batch of
 *   inserts acknowledged one after another costs at least one fsync each.
 * - Claims, marks and releases commit without one (synchronous=NORMAL): a power cut may take them
 *   back (a resend, which the Action tolerates); a process crash cannot.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../support/common.js';
import { ensureBuilt, tempDir } from '../support/process.js';

const STRACE = spawnSync('strace', ['-V'], { stdio: 'ignore' }).status === 0;
if (!STRACE) console.log('SKIPPED test/relay/outbox/sqlite-fsync.test.ts: strace is not installed (apt-get install strace)');
const maybe = STRACE ? test : test.skip;

const INSERTS = 20;
const MARKS = 20;

const CHILD = `
import { accessSync } from 'node:fs';
import { openSqliteStore } from ${JSON.stringify(join(REPO_ROOT, 'lib/relay/outbox/sqlite-store.js'))};
const phase = (name) => { try { accessSync('/nonexistent/phase-' + name); } catch {} };
const store = openSqliteStore(process.argv[2]);
const ids = [];
phase('inserts');
for (let n = 0; n < ${INSERTS}; n += 1) {
  const body = JSON.stringify({ id: 'job-' + n, status: 'PASSED' });
  ids.push((await store.insert({ route: 'default', repo: 'acme/shop', eventType: 'saucelabs', body, bodyHash: String(n).padStart(64, '0'), receivedAt: Date.now() }, 60_000)).id);
}
phase('marks');
for (let n = 0; n < ${MARKS}; n += 1) {
  const claimed = await store.claim('me', Date.now(), 30_000, 1);
  if (claimed.length !== 1) throw new Error('nothing to claim');
  if (n % 2 === 0) await store.markDelivered('me', [claimed[0].id], Date.now());
  else await store.release('me', [claimed[0].id]);
}
phase('end');
await store.close();
`;

beforeAll(() => ensureBuilt(), 120_000);

maybe(
  'insert commits fsync, one each at least; claims, marks and releases do not',
  () => {
    const dir = tempDir('relay-fsync-');
    const script = join(dir, 'child.mjs');
    const log = join(dir, 'strace.log');
    writeFileSync(script, CHILD);
    let trace: string;
    try {
      execFileSync('strace', ['-f', '-o', log, '-e', 'trace=fsync,fdatasync,access,faccessat,faccessat2', process.execPath, script, join(dir, 'data')], {
        stdio: 'pipe',
      });
      trace = readFileSync(log, 'utf8');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const counts = new Map<string, number>();
    let current = 'open';
    for (const line of trace.split('\n')) {
      const marker = /\/nonexistent\/phase-(\w+)/.exec(line);
      if (marker) current = marker[1]!;
      else if (/\b(fsync|fdatasync)\(/.test(line)) counts.set(current, (counts.get(current) ?? 0) + 1);
    }
    expect(counts.get('inserts') ?? 0).toBeGreaterThanOrEqual(INSERTS);
    expect(counts.get('marks') ?? 0).toBe(0);
  },
  60_000,
);
