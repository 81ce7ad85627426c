/**
 * Problems → the messages people read: each names the setting (the environment variable, or
 * `file: path.field` with the route's name), then what is wrong and the fix.
 */
import { envNameAt } from './env.js';
import type { DocIssue } from './file.js';
import { isRecord } from '../../sauce/json.js';

/** `routes[1:mobile].secrets[0]`: the route's name beside its index, looked up in `root`. */
export function formatPath(path: readonly PropertyKey[], root: unknown): string {
  const parts: string[] = [];
  let node: unknown = root;
  for (const key of path) {
    if (typeof key === 'number') {
      const item: unknown = Array.isArray(node) ? node[key] : undefined;
      const name = isRecord(item) ? item['name'] : undefined;
      parts.push(typeof name === 'string' && name !== '' ? `[${key}:${name}]` : `[${key}]`);
      node = item;
    } else {
      parts.push(parts.length === 0 ? String(key) : `.${String(key)}`);
      node = isRecord(node) ? node[String(key)] : undefined;
    }
  }
  return parts.join('') || '(root)';
}

/** Messages for problems in the config file: `relay.yaml: routes[0:web].repo: ...`. */
export function fileMessages(issues: readonly DocIssue[], source: string, root: unknown): string[] {
  return issues.map((i) => (i.path.length === 0 ? `${source}: ${i.message}` : `${source}: ${formatPath(i.path, root)}: ${i.message}`));
}

/** Messages for problems in the environment: `RELAY_BODY_LIMIT: ...`. */
export function envMessages(issues: readonly DocIssue[]): string[] {
  return issues.map((i) => `${envNameAt(i.path) ?? formatPath(i.path, null)}: ${i.message}`);
}
