/** The command-line flags the before/after benches share (compare.ts, store.ts). */
import { resolve } from 'node:path';

/** The value after `name`, or `fallback` when it is not given. */
export function flag(name: string, fallback: string): string {
  const at = process.argv.indexOf(name);
  return at > 0 ? (process.argv[at + 1] ?? fallback) : fallback;
}

/** Every `--lib name=dir`: the relay builds to compare, by name, with absolute directories. */
export function libsFromArgs(): [string, string][] {
  const libs: [string, string][] = [];
  process.argv.forEach((arg, i) => {
    if (arg !== '--lib') return;
    const [name, dir] = (process.argv[i + 1] ?? '').split('=');
    if (!name || !dir) throw new Error('--lib name=dir');
    libs.push([name, resolve(dir)]);
  });
  return libs;
}
