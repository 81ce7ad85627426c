/**
 * GitHub's published REST description (`@octokit/openapi`) as a request checker for test doubles.
 *
 * The dereferenced description is ~73 MB of JSON (~0.6 s to read and parse). Only a small part
 * matters for checking requests: each operation's method, path template, parameters and JSON
 * request body schema. That part is extracted once, converted from OpenAPI 3.0 to plain JSON
 * Schema, and cached (in memory, and on disk in the OS temp dir keyed by the package version and
 * file stamp). Jest gives every test file a fresh module registry, so the disk cache is what keeps
 * later test files from paying for the full parse again.
 *
 * Ajv validators are compiled lazily per operation: compiling all 1,100+ operations up front would
 * cost far more than the few routes a test suite touches.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { createHash } from 'node:crypto';
import { readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** A JSON Schema object as Ajv consumes it (already converted from OpenAPI 3.0). */
export type JsonSchema = { [keyword: string]: unknown };

export interface ParamSpec {
  readonly name: string;
  readonly in: 'path' | 'query' | 'header' | 'cookie';
  readonly required: boolean;
  /** GitHub's `x-multi-segment`: the value may contain `/` (refs, branch names). */
  readonly multiSegment: boolean;
  readonly schema: JsonSchema | null;
}

export interface BodySpec {
  readonly required: boolean;
  /** The `application/json` schema, or null when the operation takes another media type only. */
  readonly schema: JsonSchema | null;
}

export interface OperationSpec {
  /** Upper case, e.g. `POST`. */
  readonly method: string;
  /** The description's template text, e.g. `/repos/{owner}/{repo}/statuses/{sha}`. */
  readonly template: string;
  /** `METHOD template`, the key tests use to name a route. */
  readonly route: string;
  readonly operationId: string;
  readonly params: readonly ParamSpec[];
  readonly body: BodySpec | null;
}

export interface RouteMatch {
  readonly operation: OperationSpec;
  /** Decoded path parameter values. */
  readonly pathParams: Record<string, string>;
}

export interface LoadInfo {
  /** `description`: parsed the full JSON; `cache`: read the extracted index from disk; `memory`: already loaded. */
  readonly source: 'description' | 'cache' | 'memory';
  readonly ms: number;
  readonly operations: number;
  readonly version: string;
}

export interface RequestToCheck {
  readonly method: string;
  /** The URL path only, still percent-encoded as sent. */
  readonly path: string;
  readonly query: Record<string, string>;
  /** Parsed JSON body; `undefined` when no body was sent. */
  readonly body: unknown;
}

export interface CheckOptions {
  /**
   * GitHub silently ignores body fields it does not know, which hides typos (`target_uri`).
   * By default such fields are problems; set true to accept them. Applies only to plain object
   * schemas (not inside oneOf/anyOf/allOf, where "unknown" is ambiguous).
   */
  readonly allowUnknownBodyFields?: boolean;
}

export type CheckResult =
  | { readonly kind: 'ok'; readonly match: RouteMatch; readonly problems: readonly [] }
  | { readonly kind: 'invalid'; readonly match: RouteMatch; readonly problems: readonly string[] }
  | { readonly kind: 'unknown-route'; readonly match: null; readonly problems: readonly string[] };

const PACKAGE = '@octokit/openapi';
const DESCRIPTION_FILE = 'generated/api.github.com.deref.json';
/** Bump when the extracted index format or the schema conversion changes. */
const INDEX_FORMAT = 3;
const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

// ---------------------------------------------------------------------------------------------
// Loading and caching

interface StoredIndex {
  readonly format: number;
  readonly version: string;
  readonly operations: OperationSpec[];
}

let loaded: ApiDescription | null = null;

/** The parsed, indexed description. First call per module registry costs the load; later calls are free. */
export function loadApiDescription(): ApiDescription {
  if (loaded) return loaded;
  const started = performance.now();
  const { file, version } = locateDescription();
  const cacheFile = cachePath(file, version);
  let index = readCachedIndex(cacheFile, version);
  const source = index ? 'cache' : 'description';
  if (!index) {
    index = extractIndex(JSON.parse(readFileSync(file, 'utf8')) as unknown, version);
    writeCachedIndex(cacheFile, index);
  }
  const ms = Math.round(performance.now() - started);
  loaded = new ApiDescription(index.operations, { source, ms, operations: index.operations.length, version });
  return loaded;
}

function locateDescription(): { file: string; version: string } {
  const require = createRequire(import.meta.url);
  const pkgFile = require.resolve(`${PACKAGE}/package.json`);
  const pkg = JSON.parse(readFileSync(pkgFile, 'utf8')) as { version?: unknown };
  return { file: join(dirname(pkgFile), DESCRIPTION_FILE), version: String(pkg.version) };
}

function cachePath(file: string, version: string): string {
  const stat = statSync(file);
  const key = createHash('sha256').update(`${INDEX_FORMAT}|${version}|${file}|${stat.size}|${stat.mtimeMs}`).digest('hex').slice(0, 16);
  return join(tmpdir(), `github-openapi-index-${key}.json`);
}

function readCachedIndex(cacheFile: string, version: string): StoredIndex | null {
  try {
    const index = JSON.parse(readFileSync(cacheFile, 'utf8')) as StoredIndex;
    return index.format === INDEX_FORMAT && index.version === version && Array.isArray(index.operations) ? index : null;
  } catch {
    return null; // missing or half-written by a crashed run: rebuild
  }
}

function writeCachedIndex(cacheFile: string, index: StoredIndex): void {
  // Parallel Jest workers may race here: write to a private name, then rename (atomic on POSIX).
  const temp = `${cacheFile}.${process.pid}.${Date.now()}.tmp`;
  try {
    writeFileSync(temp, JSON.stringify(index));
    renameSync(temp, cacheFile);
  } catch {
    // A read-only temp dir only costs speed.
  }
}

// ---------------------------------------------------------------------------------------------
// Extraction: OpenAPI document -> compact operation list

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function extractIndex(document: unknown, version: string): StoredIndex {
  if (!isObject(document) || !isObject(document.paths)) throw new Error(`${PACKAGE}: no "paths" in ${DESCRIPTION_FILE}`);
  const operations: OperationSpec[] = [];
  for (const [template, item] of Object.entries(document.paths)) {
    if (!isObject(item)) continue;
    const shared = Array.isArray(item.parameters) ? item.parameters : [];
    for (const method of HTTP_METHODS) {
      const op = item[method];
      if (isObject(op)) operations.push(extractOperation(method.toUpperCase(), template, op, shared));
    }
  }
  return { format: INDEX_FORMAT, version, operations };
}

function extractOperation(method: string, template: string, op: JsonObject, shared: Json[]): OperationSpec {
  const own = Array.isArray(op.parameters) ? op.parameters : [];
  // Operation-level parameters override path-level ones with the same name and location.
  const byKey = new Map<string, ParamSpec>();
  for (const raw of [...shared, ...own]) {
    const param = extractParam(raw);
    if (param) byKey.set(`${param.in}:${param.name}`, param);
  }
  return {
    method,
    template,
    route: `${method} ${template}`,
    operationId: typeof op.operationId === 'string' ? op.operationId : '',
    params: [...byKey.values()],
    body: extractBody(op.requestBody),
  };
}

function extractParam(raw: Json): ParamSpec | null {
  if (!isObject(raw) || typeof raw.name !== 'string' || typeof raw.in !== 'string') return null;
  const location = raw.in;
  if (location !== 'path' && location !== 'query' && location !== 'header' && location !== 'cookie') return null;
  return {
    name: raw.name,
    in: location,
    required: raw.required === true || location === 'path',
    multiSegment: raw['x-multi-segment'] === true,
    schema: isObject(raw.schema) ? toJsonSchema(raw.schema) : null,
  };
}

function extractBody(raw: Json | undefined): BodySpec | null {
  if (!isObject(raw)) return null;
  const content = isObject(raw.content) ? raw.content : {};
  const json = Object.entries(content).find(([type]) => /^application\/(.+\+)?json/.test(type));
  const media = json?.[1];
  return { required: raw.required === true, schema: isObject(media) && isObject(media.schema) ? toJsonSchema(media.schema) : null };
}

/** Keywords that only document; dropping them shrinks the cache and keeps Ajv from tripping on them. */
const DOC_KEYWORDS = new Set(['description', 'example', 'examples', 'title', 'externalDocs', 'xml', 'deprecated', 'discriminator', 'default']);

/**
 * OpenAPI 3.0 schema -> JSON Schema (draft-07, what Ajv's default build speaks).
 * `nullable: true` becomes a `null` type (or an anyOf when there is no `type` to extend, which
 * GitHub does for nullable oneOf/allOf). `properties` holds field names, not keywords, so a field
 * literally called `description` survives.
 */
export function toJsonSchema(schema: JsonObject): JsonSchema {
  const out: JsonSchema = {};
  for (const [key, value] of Object.entries(schema)) {
    if (DOC_KEYWORDS.has(key) || key.startsWith('x-') || key === 'nullable') continue;
    out[key] = convertKeyword(key, value);
  }
  if (schema.nullable !== true) return out;
  if (typeof out.type === 'string') {
    out.type = [out.type, 'null'];
    if (Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...out.enum, null];
    return out;
  }
  return { anyOf: [{ type: 'null' }, out] };
}

function convertKeyword(key: string, value: Json): unknown {
  switch (key) {
    case 'properties':
      return isObject(value) ? Object.fromEntries(Object.entries(value).map(([name, s]) => [name, isObject(s) ? toJsonSchema(s) : s])) : value;
    case 'items':
    case 'additionalProperties':
    case 'not':
      return isObject(value) ? toJsonSchema(value) : value;
    case 'allOf':
    case 'anyOf':
    case 'oneOf':
      return Array.isArray(value) ? value.map((s) => (isObject(s) ? toJsonSchema(s) : s)) : value;
    default:
      return value;
  }
}

// ---------------------------------------------------------------------------------------------
// Route matching

interface Matcher {
  readonly operation: OperationSpec;
  readonly regex: RegExp;
  readonly names: readonly string[];
  /** Higher wins: literal segments beat parameters, and single-segment beats multi-segment. */
  readonly score: number;
}

function buildMatcher(operation: OperationSpec): Matcher {
  const multi = new Set(operation.params.filter((p) => p.in === 'path' && p.multiSegment).map((p) => p.name));
  const names: string[] = [];
  let literalSegments = 0;
  let multiCount = 0;
  const pattern = operation.template
    .split('/')
    .map((segment) => {
      if (!segment.includes('{')) literalSegments += segment ? 1 : 0;
      return segment.replace(/\{([^}]+)\}|[^{]+/g, (text, name: string | undefined) => {
        if (name === undefined) return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
        names.push(name);
        if (multi.has(name)) multiCount += 1;
        return multi.has(name) ? '(.+?)' : '([^/]+)';
      });
    })
    .join('/');
  return { operation, regex: new RegExp(`^${pattern}/?$`), names, score: literalSegments * 100 - multiCount * 10 - names.length };
}

function decode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value; // malformed escapes: let the schema or handler see the raw text
  }
}

// ---------------------------------------------------------------------------------------------
// Validation

type AjvInstance = InstanceType<typeof Ajv>;

// ajv-formats is CommonJS with `exports.default`; under NodeNext the default import is the module
// object at type level, and Node's interop hands over `module.exports`, which carries `.default` too.
const addFormats = addFormatsModule.default;

function createAjv(coerceTypes: boolean): AjvInstance {
  const ajv = new Ajv({ strict: false, allErrors: true, coerceTypes: coerceTypes ? 'array' : false, verbose: false });
  addFormats(ajv);
  // OpenAPI format names Ajv does not know. They describe, they do not constrain strings we receive.
  for (const name of ['int32', 'int64', 'float', 'double', 'byte', 'binary', 'password', 'repo.nwo']) ajv.addFormat(name, true);
  return ajv;
}

interface CompiledOperation {
  readonly path: ValidateFunction | null;
  readonly query: ValidateFunction | null;
  readonly body: ValidateFunction | null;
}

export class ApiDescription {
  readonly loadInfo: LoadInfo;
  private readonly byRoute = new Map<string, OperationSpec>();
  private readonly matchers = new Map<string, Matcher[]>();
  private readonly compiled = new Map<string, CompiledOperation>();
  /** Strings arrive as text: path and query values are coerced ("42" -> 42) before checking. */
  private readonly paramAjv = createAjv(true);
  /** Bodies are JSON and must already have the right types; no coercion. */
  private readonly bodyAjv = createAjv(false);

  constructor(operations: readonly OperationSpec[], loadInfo: LoadInfo) {
    this.loadInfo = loadInfo;
    for (const operation of operations) {
      this.byRoute.set(operation.route, operation);
      const list = this.matchers.get(operation.method) ?? [];
      list.push(buildMatcher(operation));
      this.matchers.set(operation.method, list);
    }
    for (const list of this.matchers.values()) list.sort((a, b) => b.score - a.score);
  }

  get operations(): OperationSpec[] {
    return [...this.byRoute.values()];
  }

  operation(route: string): OperationSpec | undefined {
    return this.byRoute.get(route);
  }

  /** The most specific operation whose template matches, or null. */
  match(method: string, path: string): RouteMatch | null {
    for (const matcher of this.matchers.get(method.toUpperCase()) ?? []) {
      const found = matcher.regex.exec(path);
      if (!found) continue;
      const pathParams: Record<string, string> = {};
      for (const [i, name] of matcher.names.entries()) pathParams[name] = decode(found[i + 1] ?? '');
      return { operation: matcher.operation, pathParams };
    }
    return null;
  }

  /** Methods under which some template matches `path` (to explain a wrong-method request). */
  methodsFor(path: string): string[] {
    return [...this.matchers.keys()].filter((method) => this.match(method, path) !== null);
  }

  check(request: RequestToCheck, options: CheckOptions = {}): CheckResult {
    const method = request.method.toUpperCase();
    const match = this.match(method, request.path);
    if (!match) {
      const others = this.methodsFor(request.path);
      const why = others.length ? `the path exists only for ${others.join(', ')}` : 'no path template matches';
      return { kind: 'unknown-route', match: null, problems: [`${method} ${request.path}: not in the API description (${why})`] };
    }
    const problems = this.problems(match, request, options).map((p) => `${match.operation.route}: ${p}`);
    return problems.length ? { kind: 'invalid', match, problems } : { kind: 'ok', match, problems: [] };
  }

  private problems(match: RouteMatch, request: RequestToCheck, options: CheckOptions): string[] {
    const compiled = this.compile(match.operation, options);
    const problems: string[] = [];
    if (compiled.path) problems.push(...runParams(compiled.path, match.pathParams, 'path parameter'));
    if (compiled.query) problems.push(...runParams(compiled.query, request.query, 'query parameter'));
    problems.push(...checkBody(match.operation, compiled.body, request.body));
    return problems;
  }

  private compile(operation: OperationSpec, options: CheckOptions): CompiledOperation {
    const closed = options.allowUnknownBodyFields !== true;
    const key = `${operation.route}|${closed}`;
    let compiled = this.compiled.get(key);
    if (!compiled) {
      const bodySchema = operation.body?.schema;
      compiled = {
        path: this.compileParams(operation, 'path'),
        query: this.compileParams(operation, 'query'),
        body: bodySchema ? this.bodyAjv.compile(closed ? closeObjects(bodySchema) : bodySchema) : null,
      };
      this.compiled.set(key, compiled);
    }
    return compiled;
  }

  private compileParams(operation: OperationSpec, location: 'path' | 'query'): ValidateFunction | null {
    const params = operation.params.filter((p) => p.in === location);
    if (!params.length) return null;
    return this.paramAjv.compile({
      type: 'object',
      properties: Object.fromEntries(params.map((p) => [p.name, p.schema ?? {}])),
      required: params.filter((p) => p.required).map((p) => p.name),
    });
  }
}

function runParams(validate: ValidateFunction, values: Record<string, string>, label: string): string[] {
  const copy: Record<string, unknown> = { ...values }; // coercion rewrites values in place
  if (validate(copy)) return [];
  return (validate.errors ?? []).map((error) => describeParamError(error, values, label));
}

function describeParamError(error: ErrorObject, values: Record<string, string>, label: string): string {
  if (error.keyword === 'required') return `missing required ${label} "${String(error.params.missingProperty)}"`;
  const name = decodePointer(error.instancePath)[0] ?? '';
  return `${label} "${name}" ${error.message ?? 'is invalid'}${detail(error)} (got ${JSON.stringify(values[name])})`;
}

function checkBody(operation: OperationSpec, validate: ValidateFunction | null, body: unknown): string[] {
  const spec = operation.body;
  if (!spec) {
    const empty = body === undefined || (isObject(body) && Object.keys(body).length === 0);
    return empty ? [] : ['the operation takes no request body, but one was sent (misspelt parameter?)'];
  }
  if (body === undefined) return spec.required ? ['a request body is required'] : [];
  if (!validate || validate(body)) return [];
  const seen = new Set<string>();
  for (const error of validate.errors ?? []) seen.add(describeBodyError(error, body));
  return [...seen];
}

function describeBodyError(error: ErrorObject, body: unknown): string {
  const where = formatPath(decodePointer(error.instancePath));
  const value = valueAt(body, decodePointer(error.instancePath));
  const shown = error.keyword === 'required' || error.keyword === 'additionalProperties' || isObject(value) ? '' : ` (got ${preview(value)})`;
  return `${where} ${error.message ?? 'is invalid'}${detail(error)}${shown}`;
}

/** The part of an Ajv error its message leaves out. */
function detail(error: ErrorObject): string {
  const params = error.params as Record<string, unknown>;
  if (error.keyword === 'enum' && Array.isArray(params.allowedValues)) return ` [${params.allowedValues.map((v) => JSON.stringify(v)).join(', ')}]`;
  if (error.keyword === 'additionalProperties') return `: unknown field "${String(params.additionalProperty)}"`;
  return '';
}

function preview(value: unknown): string {
  const text = JSON.stringify(value) ?? 'undefined';
  return text.length > 80 ? `${text.slice(0, 77)}... (${text.length} chars)` : text;
}

function decodePointer(pointer: string): string[] {
  return pointer === ''
    ? []
    : pointer
        .slice(1)
        .split('/')
        .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function formatPath(parts: readonly string[]): string {
  return parts.reduce((acc, part) => (/^\d+$/.test(part) ? `${acc}[${part}]` : `${acc}.${part}`), 'body');
}

function valueAt(root: unknown, parts: readonly string[]): unknown {
  let current: unknown = root;
  for (const part of parts) {
    if (Array.isArray(current)) current = current[Number(part)];
    else if (isObject(current)) current = current[part];
    else return undefined;
  }
  return current;
}

/**
 * Adds `additionalProperties: false` to object schemas that list `properties` and say nothing about
 * extras. A schema with oneOf/anyOf/allOf is closed only when its branches name no property of
 * their own (GitHub uses such branches for "conclusion is required when status is completed"):
 * otherwise closing the parent would reject fields a branch allows. Branches themselves stay open,
 * since closing one changes which branches match in ways the description never said.
 */
export function closeObjects(schema: JsonSchema): JsonSchema {
  const out: JsonSchema = { ...schema };
  const props = isObject(schema.properties as Json) ? (schema.properties as Record<string, Json>) : null;
  if (props) {
    out.properties = Object.fromEntries(Object.entries(props).map(([name, s]) => [name, isObject(s) ? closeObjects(s) : s]));
    const silent = !('additionalProperties' in schema) && !('patternProperties' in schema);
    if (silent && branchesStayWithin(schema, Object.keys(props))) out.additionalProperties = false;
  }
  for (const key of ['items', 'additionalProperties'] as const) {
    const child = schema[key] as Json;
    if (isObject(child)) out[key] = closeObjects(child);
  }
  return out;
}

function branchesStayWithin(schema: JsonSchema, known: readonly string[]): boolean {
  if ('not' in schema) return false;
  const branches = ['allOf', 'anyOf', 'oneOf'].flatMap((k) => (Array.isArray(schema[k]) ? (schema[k] as Json[]) : []));
  return branches.every((branch) => {
    if (!isObject(branch)) return false;
    if (['allOf', 'anyOf', 'oneOf', 'not', 'patternProperties'].some((k) => k in branch)) return false;
    const names = isObject(branch.properties) ? Object.keys(branch.properties) : [];
    const required = Array.isArray(branch.required) ? branch.required.map(String) : [];
    return [...names, ...required].every((name) => known.includes(name));
  });
}
