/**
 * One zod schema per setting. The config file is validated by `fileSchema`; the environment is
 * mapped onto the same settings (see env.ts) and validated by `envSchema`, built from the same
 * field schemas, so a value means the same and is refused with the same words wherever it is set.
 *
 * Messages show the value (quoted) except for secrets, and end with what to write instead. The
 * caller prefixes the setting's name: the environment variable, or `file: path.field`.
 */
import { z } from 'zod';
import { validEventType } from '../../github/limits.js';
import { REGIONS, isRegion } from '../../sauce/urls.js';
import { FAMILIES, LOG_LEVELS, MIN_ADMIN_TOKEN_CHARS, MIN_URL_TOKEN_CHARS } from './types.js';
import { ambiguousSizeFix, formatDuration, formatSize, readDuration, readSize } from './units.js';
import { databaseUrlProblem, redactUrl, shownDatabaseUrl, urlProblem } from './url.js';

/** Node's timers hold at most 2^31-1 ms (24.8 days); a longer timer fires at once. */
const MAX_TIMER_MS = 24 * 86_400_000;

/** A value as shown in a message: quoted and escaped, and cut short when long. */
function shown(value: unknown): string {
  const text = String(value);
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 77)}...` : text);
}

// ---------------------------------------------------------------------------------------------
// Building blocks

/** Env values are strings; the file may hold numbers. Both are read the same way. */
const scalar = (what: string) => z.union([z.string(), z.number()], { error: (issue) => `${shown(issue.input)} is not ${what}` });

interface DurationRange {
  readonly min: number;
  readonly max: number;
  /** When 0 is allowed: what it means (e.g. "off"). */
  readonly zero?: string;
}

function rangeText(range: DurationRange, format: (n: number) => string): string {
  const span = range.max === Number.MAX_SAFE_INTEGER ? `at least ${format(range.min)}` : `${format(range.min)} to ${format(range.max)}`;
  return range.zero ? `0 (${range.zero}) or ${span}` : span;
}

/** The value read (or too large to hold), checked against the range. */
function inRange(v: string | number, value: number | 'too-large', range: DurationRange, format: (n: number) => string, ctx: z.RefinementCtx): number {
  if (value === 'too-large' || ((value !== 0 || !range.zero) && (value < range.min || value > range.max))) {
    ctx.addIssue({ code: 'custom', message: `${shown(v)} is ${value === 'too-large' ? 'too large' : 'out of range'}: use ${rangeText(range, format)}` });
    return z.NEVER;
  }
  return value;
}

function duration(range: DurationRange) {
  return scalar('a duration').transform((v, ctx) => {
    const r = readDuration(v);
    if (!r.ok && r.problem !== 'too-large') {
      ctx.addIssue({ code: 'custom', message: `${shown(v)} is not a duration: write e.g. 500ms, 2s, 10m, 3h, 7d` });
      return z.NEVER;
    }
    return inRange(v, r.ok ? r.value : 'too-large', range, formatDuration, ctx);
  });
}

function size(min: number) {
  return scalar('a size').transform((v, ctx) => {
    const r = readSize(v);
    if (!r.ok && r.problem === 'ambiguous') {
      ctx.addIssue({ code: 'custom', message: `${shown(v)} is ambiguous: ${ambiguousSizeFix(String(v))}` });
      return z.NEVER;
    }
    if (!r.ok && r.problem === 'format') {
      ctx.addIssue({ code: 'custom', message: `${shown(v)} is not a size: write e.g. 1MiB, 512KiB, 64KB or a number of bytes` });
      return z.NEVER;
    }
    return inRange(v, r.ok ? r.value : 'too-large', { min, max: Number.MAX_SAFE_INTEGER }, formatSize, ctx);
  });
}

/** A whole number in [min, max]; `hint` says what the number is. */
function wholeNumber(min: number, max: number, hint: string) {
  return scalar('a number').transform((v, ctx) => {
    const n = typeof v === 'number' ? v : /^\s*\d+\s*$/.test(v) ? Number(v) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      ctx.addIssue({ code: 'custom', message: `${shown(v)} is not ${hint}` });
      return z.NEVER;
    }
    return n;
  });
}

/** Non-blank text, trimmed. */
const text = (what: string) =>
  scalar(what)
    .transform((v) => String(v).trim())
    .refine((v) => v !== '', `is blank: write ${what}`);

/**
 * A secret or token: trimmed, never blank, never shown. Sauce's webhook tokens, GitHub tokens,
 * keys: a blank one would either lock every sender out or let everyone in.
 */
const secretText = (fix: string) =>
  z
    .string({ error: `expected text: ${fix}` })
    .transform((v) => v.trim())
    .refine((v) => v !== '', `is blank: ${fix}`);

/** An http(s) URL without credentials; `tokenHome` says where the credentials belong instead. */
const httpUrl = (example: string, tokenHome: string) =>
  z.string({ error: `expected a URL such as ${example}` }).superRefine((raw, ctx) => {
    const v = raw.trim();
    const problem = urlProblem(v);
    if (problem === 'credentials') {
      const bare = new URL(v);
      bare.username = '';
      bare.password = '';
      ctx.addIssue({
        code: 'custom',
        message: `${shown(redactUrl(v))} has credentials in it, which Node's fetch refuses and every log would show: write ${shown(bare.href)} and ${tokenHome}`,
      });
    } else if (problem !== null) {
      ctx.addIssue({ code: 'custom', message: `${shown(redactUrl(v))} is not an http(s) URL: write e.g. ${example}` });
    }
  });

const bool = z.boolean({ error: 'expected true or false' });

/**
 * The PostgreSQL URL of the shared store. Credentials may be in it (or in PGPASSWORD), so a
 * message shows it without password or query.
 */
const databaseUrl = z.string({ error: 'expected a URL such as postgres://relay@db.internal:5432/relay' }).superRefine((raw, ctx) => {
  const problem = databaseUrlProblem(raw.trim());
  if (problem === null) return;
  const shown = problem === 'not-a-url' ? 'the value' : JSON.stringify(shownDatabaseUrl(raw.trim()));
  const why = problem === 'not-postgres' ? 'is not a postgres:// URL' : problem === 'no-host' ? 'names no host' : 'is not a URL';
  ctx.addIssue({
    code: 'custom',
    message: `${shown} ${why}: write e.g. postgres://relay@db.internal:5432/relay, or unset it for the SQLite file in the data directory`,
  });
});

// ---------------------------------------------------------------------------------------------
// Settings shared by the environment and the file

const REPO_RE = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})\/[A-Za-z0-9._-]{1,100}$/;
const OWNER_RE = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$/;
const ROUTE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
const URL_TOKEN_RE = /^[A-Za-z0-9_-]+$/;

export function isRepoName(value: string): boolean {
  return REPO_RE.test(value) && !value.split('/')[1]!.startsWith('.') && !value.includes('..');
}

/** Every top-level setting, as the file spells it; env.ts names the variable for each. */
const settingsShape = {
  port: wholeNumber(0, 65535, 'a port number: use 0-65535 (0 = any free port)').optional(),
  host: text('a host name or address, e.g. 0.0.0.0').optional(),
  data_dir: text('a directory, e.g. .relay-data').optional(),
  database_url: databaseUrl.optional(),
  body_limit: size(1024).optional(),
  dedup_window: duration({ min: 1, max: Number.MAX_SAFE_INTEGER }).optional(),
  group_window: duration({ min: 1, max: MAX_TIMER_MS, zero: 'off' }).optional(),
  max_age: duration({ min: 1, max: Number.MAX_SAFE_INTEGER }).optional(),
  lease: duration({ min: 1, max: MAX_TIMER_MS }).optional(),
  headers_timeout: duration({ min: 1, max: MAX_TIMER_MS }).optional(),
  request_timeout: duration({ min: 1, max: MAX_TIMER_MS }).optional(),
  max_connections: wholeNumber(1, Number.MAX_SAFE_INTEGER, 'a whole number of at least 1').optional(),
  max_buffered: size(1024).optional(),
  stale_after: duration({ min: 1, max: Number.MAX_SAFE_INTEGER }).optional(),
  visual_stuck_after: duration({ min: 1, max: Number.MAX_SAFE_INTEGER, zero: 'off' }).optional(),
  metrics_token: secretText('put the token GET /metrics must present in it, or leave it out for an open /metrics').optional(),
  admin_token: secretText('put the delivery console token in it (e.g. openssl rand -hex 24), or leave it out: no console')
    .refine((v) => v === '' || v.length >= MIN_ADMIN_TOKEN_CHARS, {
      error: (issue) =>
        `is ${String(issue.input).length} characters, too short to guard the console: use at least ${MIN_ADMIN_TOKEN_CHARS} random characters (e.g. openssl rand -hex 24), or leave it out: no console`,
    })
    .optional(),
  log_level: scalar('a log level')
    .transform((v) => String(v).trim().toLowerCase())
    .pipe(z.enum(LOG_LEVELS, { error: (issue) => `${shown(issue.input)} is not a log level: use one of ${LOG_LEVELS.join(', ')}` }))
    .optional(),
};

const githubSchema = z.strictObject({
  token: secretText('put a GitHub token in it, or leave it out for dry-run').optional(),
  app_id: scalar('a GitHub App id')
    .transform((v) => String(v).trim())
    .refine((v) => v !== '', 'is blank: write the GitHub App id')
    .optional(),
  // Keys pasted into one line often carry literal "\n".
  private_key: secretText('put the GitHub App private key (PEM) in it')
    .transform((v) => v.replace(/\\n/g, '\n'))
    .optional(),
  api_url: httpUrl('https://ghe.example.com/api/v3', 'put the token in GITHUB_TOKEN (github.token in the file)').optional(),
});

/** Visual refresh: environment only (`SAUCE_*`, `RELAY_VISUAL_REFRESH_*`). */
const visualSchema = z.object({
  username: text('the Sauce user name').optional(),
  access_key: secretText('put the Sauce access key in it').optional(),
  api_url: httpUrl('https://api.eu-central-1.saucelabs.com, or unset it', 'the relay sends SAUCE_USERNAME and SAUCE_ACCESS_KEY itself').optional(),
  interval: duration({ min: 1, max: MAX_TIMER_MS, zero: 'off' }).optional(),
  for: duration({ min: 1, max: Number.MAX_SAFE_INTEGER }).optional(),
});

// ---------------------------------------------------------------------------------------------
// Route fields: the file's routes, and the quick-mode route from the environment

const secret = secretText("set it to the webhook's security token from Sauce Labs");
const repo = z
  .string({ error: 'expected "owner/repo", e.g. acme/web' })
  .refine(isRepoName, { error: (issue) => `expected "owner/repo", e.g. acme/web; got ${shown(issue.input)}` });
const eventType = z
  .string({ error: 'expected 1 to 100 characters' })
  .refine(validEventType, { error: (issue) => `expected 1 to 100 characters; got ${Array.from(String(issue.input)).length}` });
const region = z
  .string({ error: `expected one of ${REGIONS.join(', ')}` })
  .refine(isRegion, { error: (issue) => `expected one of ${REGIONS.join(', ')}; got ${shown(issue.input)}` });

const stringList = z
  .union([z.string().min(1), z.number().transform(String), z.array(z.union([z.string().min(1), z.number().transform(String)])).min(1)], {
    error: 'expected one value or a list of values',
  })
  .transform((v) => (Array.isArray(v) ? v : [v]));

const filtersSchema = z.strictObject({
  families: z
    .union([z.enum(FAMILIES), z.array(z.enum(FAMILIES)).min(1)], {
      error: `expected one or a list of ${FAMILIES.join(', ')}`,
    })
    .transform((v) => (Array.isArray(v) ? v : [v]))
    .optional(),
  failed_only: bool.optional(),
  team_id: stringList.optional(),
  org_id: stringList.optional(),
  owner: stringList.optional(),
  build: stringList.optional(),
  project: stringList.optional(),
});

const routeSchema = z
  .strictObject({
    name: z.string({ error: 'expected a name' }).regex(ROUTE_NAME_RE, 'use letters, digits, "-" or "_" (it becomes the URL path /webhook/<name>)'),
    secrets: z.array(secret, { error: 'expected a list of secrets, e.g. ["${SAUCE_SECRET}"]' }).optional(),
    secret: secret.optional(),
    repo: repo.optional(),
    repo_from_tags: bool.optional(),
    allow: z
      .array(
        z.string().refine((v) => OWNER_RE.test(v) || isRepoName(v), 'expected an owner ("acme") or a repo ("acme/web")'),
        {
          error: 'expected a list of owners or owner/repo',
        },
      )
      .optional(),
    filters: filtersSchema.optional(),
    event_type: eventType.optional(),
    region: region.optional(),
    allow_unsigned: bool.optional(),
    url_token: z
      .string({ error: 'expected text' })
      .min(MIN_URL_TOKEN_CHARS, `must be at least ${MIN_URL_TOKEN_CHARS} random characters (e.g. openssl rand -hex 24)`)
      .regex(URL_TOKEN_RE, 'use only letters, digits, "-" and "_" (it is part of the URL)')
      .optional(),
  })
  .superRefine((r, ctx) => {
    // A secret that is there but invalid is reported by its own field, not as missing.
    const secrets = [...(r.secrets ?? []), ...(r.secret !== undefined ? [r.secret] : [])];
    if (secrets.length === 0 && !r.allow_unsigned) {
      ctx.addIssue({
        code: 'custom',
        path: ['secrets'],
        message: 'a route needs at least one secret: add secrets: ["${SAUCE_SECRET}"] (or opt in with allow_unsigned + url_token)',
      });
    }
    if (r.allow_unsigned && !r.url_token) {
      ctx.addIssue({
        code: 'custom',
        path: ['url_token'],
        message: `allow_unsigned needs a url_token of at least ${MIN_URL_TOKEN_CHARS} random characters (e.g. openssl rand -hex 24)`,
      });
    }
    if (!r.repo && !r.repo_from_tags) {
      ctx.addIssue({ code: 'custom', path: ['repo'], message: 'set repo: owner/repo, or repo_from_tags: true with an allow list' });
    }
    if (r.repo_from_tags && (r.allow ?? []).length === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['allow'],
        message: 'repo_from_tags needs an allow list of owners or owner/repo the tag may name',
      });
    }
  });

/** The quick-mode route (`SAUCE_WEBHOOK_SECRET`, `GITHUB_REPOSITORY`, `RELAY_EVENT_TYPE`, `SAUCE_REGION`). */
const quickRouteSchema = z.object({
  secrets: z
    .array(secret)
    .min(
      1,
      "is set but holds no secret: set it to the webhook's security token from Sauce Labs (a comma-separated list while rotating), or unset it for a generated one in dry-run",
    )
    .optional(),
  repo: repo.optional(),
  event_type: eventType.optional(),
  region: region.optional(),
});

// ---------------------------------------------------------------------------------------------

export const fileSchema = z.strictObject({
  ...settingsShape,
  github: githubSchema.optional(),
  routes: z.array(routeSchema, { error: 'define at least one route: routes: [{ name, secrets, repo }]' }).min(1, 'define at least one route'),
});

export const envSchema = z.object({
  ...settingsShape,
  github: githubSchema,
  visual_refresh: visualSchema,
  /** Quick mode only. */
  route: quickRouteSchema.optional(),
});

export type FileSettings = z.output<typeof fileSchema>;
export type FileRoute = z.output<typeof routeSchema>;
export type EnvSettings = z.output<typeof envSchema>;
