// Chaos, by hand: three relay processes on one throwaway PostgreSQL database behind a round-robin
// sender, dispatching to the GitHub API double. It runs test/relay/outbox/chaos.test.ts (the same
// code CI runs) with a bigger burst, and prints what it counts:
//   - kill -9 one instance in the middle of the burst: acknowledged, dispatched, dispatched twice
//   - PostgreSQL restarted in the middle of a burst: acknowledged, answered 503 meanwhile
//   - one build of 200 job events over three instances: how many dispatches
//   - `outbox retry` of a dead letter: how long until it was dispatched
//
//   node scripts/chaos.js [--events N]      (default 1000; needs PostgreSQL: Debian's postgresql
//                                            package, or RELAY_TEST_DATABASE_URL=postgres://…)
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';

const root = new URL('..', import.meta.url).pathname;
const { values } = parseArgs({ options: { events: { type: 'string', default: '1000' } } });
const events = Number(values.events);
if (!Number.isInteger(events) || events < 300) {
  process.stderr.write('chaos: --events must be a whole number of at least 300\n');
  process.exit(2);
}

const build = spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);

const jest = spawnSync(
  process.execPath,
  ['--experimental-vm-modules', 'node_modules/jest/bin/jest.js', '--verbose', '--runInBand', 'test/relay/outbox/chaos.test.ts'],
  { cwd: root, stdio: 'inherit', env: { ...process.env, CHAOS_EVENTS: String(events), NODE_NO_WARNINGS: '1' } },
);
process.exit(jest.status ?? 1);
