/**
 * How the relay's CLI was started, so the command it prints (the sample `send`) can be pasted back
 * as it is: `node lib/relay/cli.js` in a clone, `npx sauce-relay` from a project's node_modules
 * (npx, or `npm install sauce-relay`), `sauce-relay` when the command is on PATH (a global install).
 */
export function selfCommand(script: string): string {
  const path = script.replaceAll('\\', '/');
  if (path.includes('/node_modules/')) return 'npx sauce-relay';
  if (/(^|\/)lib\/relay\/cli\.js$/.test(path)) return 'node lib/relay/cli.js';
  return 'sauce-relay';
}
