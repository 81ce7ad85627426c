/**
 * Zod models of the two Sauce Labs webhook families, as documented in
 * `shared/reference/saucelabs-webhooks.md` and as they behave in the field (`facts.md`).
 *
 * Lenient where Sauce is inconsistent (every `passed` form, numeric or string versions,
 * `""`/`null`/absent alike, unknown fields kept); strict where a wrong value would mislead
 * (`status` outside the documented enum, `data_type` outside vdc/rdc).
 */
import { z } from 'zod';

export const JOB_STATUSES = ['COMPLETE', 'PASSED', 'FAILED', 'ERRORED'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

/** RUNNING is not in the webhook docs but is part of Sauce Visual's BuildStatus enum. */
export const VISUAL_STATUSES = ['APPROVED', 'EMPTY', 'EQUAL', 'ERRORED', 'QUEUED', 'RUNNING', 'REJECTED', 'UNAPPROVED'] as const;
export type VisualStatus = (typeof VISUAL_STATUSES)[number];

export const JOB_FAMILIES = ['vdc', 'rdc'] as const;
export type JobFamily = (typeof JOB_FAMILIES)[number];

/** `""`, `null` and absent all mean "no value". Numbers are kept as their decimal text. */
const optionalText = z
  .union([z.string(), z.number(), z.null()])
  .optional()
  .transform((v): string | null => {
    if (v === null || v === undefined) return null;
    const text = typeof v === 'number' ? String(v) : v;
    return text.trim() === '' ? null : text;
  });

const PASSED_FORMS: ReadonlyMap<unknown, boolean | null> = new Map<unknown, boolean | null>([
  [true, true],
  [1, true],
  ['1', true],
  ['true', true],
  [false, false],
  [0, false],
  ['0', false],
  ['false', false],
  [null, null],
  [undefined, null],
  ['', null],
]);

/** Every form of `passed` seen from Sauce: booleans, 1/0, their strings, null, absent. */
const passedField = z
  .unknown()
  .optional()
  .transform((v, ctx): boolean | null => {
    const key = typeof v === 'string' ? v.trim().toLowerCase() : v;
    if (PASSED_FORMS.has(key)) return PASSED_FORMS.get(key) ?? null;
    ctx.addIssue({
      code: 'custom',
      message: 'expected true/false, 1/0, "1"/"0", "true"/"false", null or absent',
    });
    return z.NEVER;
  });

const optionalCount = z
  .union([z.number().int().nonnegative(), z.string().regex(/^\d+$/), z.null()])
  .optional()
  .transform((v): number | null => (v === null || v === undefined ? null : Number(v)));

const optionalTags = z
  .union([z.array(z.union([z.string(), z.number()])), z.null()])
  .optional()
  .transform((v): string[] => (v ?? []).map(String));

/** Upper-cases before checking so `"passed"` is still PASSED; anything else names the field. */
function statusEnum<T extends readonly [string, ...string[]]>(values: T) {
  return z.preprocess((v) => (typeof v === 'string' ? v.trim().toUpperCase() : v), z.enum(values));
}

export const jobEventSchema = z.looseObject({
  id: z.string().min(1),
  data_type: z.preprocess((v) => (typeof v === 'string' ? v.trim().toLowerCase() : v), z.enum(JOB_FAMILIES)),
  status: statusEnum(JOB_STATUSES),
  passed: passedField,
  creation_time: optionalText,
  modification_time: optionalText,
  owner: optionalText,
  owner_id: optionalText,
  org_id: optionalText,
  team_id: optionalText,
  team_name: optionalText,
  group_id: optionalText,
  name: optionalText,
  browser_name: optionalText,
  browser_version: optionalText,
  os_name: optionalText,
  os_version: optionalText,
  duration_sec: optionalCount,
  visibility: optionalText,
  tags: optionalTags,
  device: optionalText,
  app: optionalText,
  error: optionalText,
  exception: optionalText,
  commit_id: optionalText,
  branch_name: optionalText,
  build: optionalText,
  automation_backend: optionalText,
});
export type JobEventWire = z.infer<typeof jobEventSchema>;

const countField = z
  .union([z.number().int().nonnegative(), z.null()])
  .optional()
  .transform((v) => v ?? 0);

export const visualSummarySchema = z.looseObject({
  errored: countField,
  approved: countField,
  equal: countField,
  rejected: countField,
  unapproved: countField,
  queued: countField,
});

export const visualEventSchema = z.looseObject({
  build_id: z.string().min(1),
  build_name: optionalText,
  build_url: optionalText,
  status: statusEnum(VISUAL_STATUSES),
  branch: optionalText,
  project: optionalText,
  summary: visualSummarySchema,
  data_center: optionalText,
  org_id: optionalText,
  user_id: optionalText,
  creator_id: optionalText,
  team_ids: optionalTags,
});
export type VisualEventWire = z.infer<typeof visualEventSchema>;
