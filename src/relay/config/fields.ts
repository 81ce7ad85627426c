/**
 * Validate a settings document setting by setting (nested objects such as `github:` field by
 * field), so one bad value hides neither the others nor the rules between the good ones: every
 * error is reported at once, and the caller knows which settings are invalid.
 */
import { z } from 'zod';
import type { DocIssue } from './file.js';
import { isRecord } from '../../sauce/json.js';

export interface ParsedFields {
  /** The valid, set settings (unset ones are absent). */
  readonly data: Record<string, unknown>;
  readonly issues: DocIssue[];
  /** Dotted paths of the settings that are set but invalid: `port`, `github.token`. */
  readonly invalid: ReadonlySet<string>;
}

export function parseFields(schema: z.ZodObject, doc: unknown, options: { strict: boolean }): ParsedFields {
  const issues: DocIssue[] = [];
  const invalid = new Set<string>();
  const data = parseObject(schema, doc, [], options.strict, issues, invalid);
  return { data, issues, invalid };
}

function parseObject(schema: z.ZodObject, doc: unknown, path: string[], strict: boolean, issues: DocIssue[], invalid: Set<string>): Record<string, unknown> {
  const input = isRecord(doc) ? doc : {};
  const out: Record<string, unknown> = {};
  const shape = schema.shape as Record<string, z.ZodType>;
  for (const [key, field] of Object.entries(shape)) {
    const inner = field instanceof z.ZodOptional ? field.unwrap() : field;
    const value = input[key];
    if (inner instanceof z.ZodObject && isRecord(value)) {
      out[key] = parseObject(inner, value, [...path, key], strict, issues, invalid);
      continue;
    }
    const r = field.safeParse(value);
    if (r.success) {
      if (r.data !== undefined) out[key] = r.data;
      continue;
    }
    invalid.add([...path, key].join('.'));
    for (const issue of r.error.issues) {
      issues.push({
        path: [...path, key, ...issue.path],
        message: issue.code === 'unrecognized_keys' ? `unknown field(s) ${issue.keys.join(', ')}: remove or fix the spelling` : issue.message,
      });
    }
  }
  const unknown = strict ? Object.keys(input).filter((k) => !(k in shape)) : [];
  if (unknown.length > 0) issues.push({ path, message: `unknown field(s) ${unknown.join(', ')}: remove or fix the spelling` });
  return out;
}
