// After `ncc build`: dist/ must hold exactly the bundle, its licenses and the ESM marker, so
// `git diff dist` in CI compares only what the runner loads. Anything else (source maps, a
// stale chunk from an older build) is removed.
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';

const dist = new URL('../dist/', import.meta.url).pathname;
const keep = new Set(['index.js', 'licenses.txt', 'package.json']);
for (const name of readdirSync(dist)) {
  if (keep.has(name)) continue;
  rmSync(join(dist, name), { recursive: true, force: true });
  console.log(`clean-dist: removed dist/${name}`);
}
for (const name of keep) {
  if (!statSync(join(dist, name), { throwIfNoEntry: false })) {
    console.error(`clean-dist: dist/${name} is missing after the build`);
    process.exit(1);
  }
}
