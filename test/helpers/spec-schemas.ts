/**
 * Response conformance against the spec's OpenAPI definitions
 * (`data/api/client-server/*.yaml`): every JSON response of a documented status is validated
 * against the schema the spec gives for that operation and status. The request helper in
 * server.ts calls `checkResponse` on each answer and throws on a mismatch, so the test fails
 * at the call that got the wrong answer.
 *
 * The spec is read at run time from HEARTH_MATRIX_SPEC, or `../shared/matrix-spec` next to the
 * repository; without it nothing is checked. HEARTH_SPEC_SCHEMAS=off turns the check off.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import Ajv2020Module, { type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import YAML from 'yaml';

export const SPEC_DIR = resolve(process.env.HEARTH_MATRIX_SPEC ?? join(process.cwd(), '..', 'shared', 'matrix-spec'));
export const CS_DIR = join(SPEC_DIR, 'data', 'api', 'client-server');
export const specPresent = existsSync(CS_DIR);

const METHODS = ['get', 'put', 'post', 'delete'] as const;

type Json = any; // OpenAPI documents, read loosely

const yamlCache = new Map<string, Json>();
/** Parses a spec YAML file once per process. */
export function loadSpecFile(file: string): Json {
  let doc = yamlCache.get(file);
  if (doc === undefined) {
    doc = YAML.parse(readFileSync(file, 'utf8'));
    yamlCache.set(file, doc);
  }
  return doc;
}

/** The client-server OpenAPI files, sorted by name. */
export function clientServerFiles(dir = CS_DIR): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => join(dir, f));
}

/** Base paths an OpenAPI file serves under (`servers[].variables.basePath.default`). */
export function basePaths(doc: Json): string[] {
  return (doc.servers ?? []).map((s: Json) => s.variables?.basePath?.default ?? '');
}

/**
 * Responses Hearth sends that differ from the spec on purpose, or where the spec is wrong.
 * `op` is the operationId, `status` the HTTP status, `query` a query parameter the request must
 * carry, `when` a test of the answer, `keyword` the failing schema keyword, `at` the JSON pointer (ajv's instancePath) of the part of the body the exception
 * covers ('' for all of it); a mismatch anywhere else still fails.
 */
export interface SchemaException {
  op: string;
  status?: number;
  query?: string;
  /** Applies only to answers this accepts (the body, and the request's query parameters). */
  when?: (body: unknown, query: URLSearchParams) => boolean;
  /** Applies only to failures of this schema keyword (ajv's name: required, type, oneOf, ...). */
  keyword?: string;
  at: string;
  reason: string;
}

const DELAYED = 'MSC4140 delayed events: a send with a delay answers { delay_id } instead of { event_id }';

export const SCHEMA_EXCEPTIONS: SchemaException[] = [
  { op: 'sendMessage', status: 200, query: 'org.matrix.msc4140.delay', at: '', reason: DELAYED },
  { op: 'setRoomStateWithKey', status: 200, query: 'org.matrix.msc4140.delay', at: '', reason: DELAYED },
  {
    op: 'getRoomStateWithKey',
    status: 200,
    keyword: 'oneOf',
    at: '',
    reason: 'the spec gives oneOf [content, ClientEvent] and content is any object, so a whole event (?format=event) matches both',
  },
  {
    op: 'sync',
    status: 200,
    keyword: 'required',
    when: (_, query) => (query.get('filter') ?? '').includes('"event_fields"'),
    at: '/rooms',
    reason: "a filter's event_fields (spec: Filtering) keeps only the listed fields, required ones included",
  },
  {
    op: 'getTurnServer',
    status: 200,
    when: (body) => JSON.stringify(body) === '{}',
    at: '',
    reason: 'without TURN configured the answer is {} (clients then call without a relay); the spec describes no answer for a server without TURN',
  },
];

/**
 * client-server-api "Using access tokens": a call whose access token is missing or invalid
 * answers 401 M_MISSING_TOKEN or M_UNKNOWN_TOKEN, a standard error, on every endpoint. The
 * OpenAPI files of operations protected by user-interactive authentication document their 401
 * as the UIA response only, so such an answer is checked against the standard error instead.
 */
const TOKEN_ERRORS = new Set(['M_MISSING_TOKEN', 'M_UNKNOWN_TOKEN']);
const STANDARD_ERROR = 'definitions/errors/error.yaml';

interface Template {
  op: string;
  file: string;
  method: string;
  path: string;
  regex: RegExp;
  /** Characters outside `{params}`: the most literal template wins when several match. */
  literal: number;
  /** JSON pointer from the file to the operation. */
  pointer: string;
  responses: Json;
}

const escapePointer = (s: string): string => encodeURIComponent(s.replace(/~/g, '~0').replace(/\//g, '~1'));
const escapeRegex = (s: string): string => s.replace(/[.*+?^$()|[\]\\]/g, '\\$&');

/** Every file a document refers to, transitively (relative file `$ref`s), the document included. */
function referencedFiles(file: string, seen = new Set<string>()): Set<string> {
  if (seen.has(file)) return seen;
  seen.add(file);
  const walk = (node: Json): void => {
    if (node === null || typeof node !== 'object') return;
    if (Array.isArray(node)) return node.forEach(walk);
    for (const [k, v] of Object.entries(node)) {
      if (k === '$ref' && typeof v === 'string') {
        const p = v.split('#')[0];
        if (p) referencedFiles(resolve(dirname(file), p), seen);
      } else walk(v);
    }
  };
  walk(loadSpecFile(file));
  return seen;
}

interface Registry {
  ajv: InstanceType<typeof Ajv2020Module.default>;
  byMethod: Map<string, Template[]>;
  compiled: Map<string, ValidateFunction | null>;
}

let registry: Registry | null | undefined;

function build(): Registry | null {
  if (!specPresent || process.env.HEARTH_SPEC_SCHEMAS === 'off') return null;
  const Ajv2020 = Ajv2020Module.default;
  // OpenAPI 3.1 schemas are JSON Schema 2020-12. The documents carry OpenAPI keys (`example`,
  // `x-...`) that are no keywords, and Matrix string formats ajv does not know: not strict, no formats.
  const ajv = new Ajv2020({ strict: false, validateFormats: false, validateSchema: false, allErrors: true, logger: false });
  const files = new Set<string>();
  for (const f of clientServerFiles()) referencedFiles(f, files);
  // Each file is a schema resource named by its file URL, so relative `$ref`s and
  // `#/components/...` fragments resolve as they do on disk.
  for (const f of files) ajv.addSchema({ ...loadSpecFile(f), $id: pathToFileURL(f).href });

  const byMethod = new Map<string, Template[]>();
  for (const file of clientServerFiles()) {
    const doc = loadSpecFile(file);
    for (const [rawPath, item] of Object.entries<Json>(doc.paths ?? {})) {
      // "/rooms/{roomId}/invite " (trailing space) lists a second operation on one path.
      const path = rawPath.trim();
      for (const m of METHODS) {
        const operation = item[m];
        if (!operation) continue;
        for (const base of basePaths(doc)) {
          const full = base + path;
          const parts = full.split(/\{[^}]+\}/);
          const t: Template = {
            op: operation.operationId,
            file,
            method: m.toUpperCase(),
            path: full,
            regex: new RegExp(`^${parts.map(escapeRegex).join('[^/]*')}$`),
            literal: parts.join('').length,
            pointer: `#/paths/${escapePointer(rawPath)}/${m}`,
            responses: operation.responses ?? {},
          };
          const list = byMethod.get(t.method) ?? [];
          list.push(t);
          byMethod.set(t.method, list);
        }
      }
    }
  }
  return { ajv, byMethod, compiled: new Map() };
}

function getRegistry(): Registry | null {
  if (registry === undefined) registry = build();
  return registry;
}

/** The spec operation a concrete request path (query string allowed) belongs to, or undefined. */
export function matchOperation(method: string, path: string): { op: string; path: string } | undefined {
  const t = findTemplate(method, path);
  return t && { op: t.op, path: t.path };
}

function findTemplate(method: string, path: string): Template | undefined {
  const reg = getRegistry();
  if (!reg) return undefined;
  const bare = path.split('?')[0];
  let best: Template | undefined;
  for (const t of reg.byMethod.get(method.toUpperCase()) ?? []) {
    if (t.regex.test(bare) && (!best || t.literal > best.literal)) best = t;
  }
  return best;
}

function validatorFor(reg: Registry, t: Template, status: number): ValidateFunction | null {
  const key = `${t.file}${t.pointer} ${status}`;
  if (reg.compiled.has(key)) return reg.compiled.get(key)!;
  let v: ValidateFunction | null = null;
  const response = resolveRef(t.file, t.responses[String(status)], `${t.pointer}/responses/${status}`);
  if (response?.node?.content?.['application/json']?.schema) {
    const schemaPointer = response.pointer + '/content/application~1json/schema';
    v = reg.ajv.compile({ $ref: pathToFileURL(response.file).href + schemaPointer });
  }
  reg.compiled.set(key, v);
  return v;
}

/**
 * Follows a response object's `$ref` (`#/components/responses/...`) to the node, its file and
 * its JSON pointer there. A response written in place is found under the operation.
 */
function resolveRef(file: string, node: Json, pointer: string): { file: string; node: Json; pointer: string } | undefined {
  if (node === undefined) return undefined;
  if (typeof node.$ref !== 'string') return { file, node, pointer };
  const [p, frag = ''] = node.$ref.split('#');
  const target = p ? resolve(dirname(file), p) : file;
  let v = loadSpecFile(target);
  for (const k of frag.split('/').filter(Boolean)) v = v?.[k.replace(/~1/g, '/').replace(/~0/g, '~')];
  return resolveRef(target, v, `#${frag}`);
}

export interface SchemaMismatch {
  op: string;
  template: string;
  status: number;
  errors: ErrorObject[];
}

const covered = (op: string, status: number, query: URLSearchParams, body: unknown, e: ErrorObject): boolean =>
  SCHEMA_EXCEPTIONS.some(
    (x) =>
      x.op === op &&
      (x.status === undefined || x.status === status) &&
      (x.query === undefined || query.has(x.query)) &&
      (x.when === undefined || x.when(body, query)) &&
      (x.keyword === undefined || x.keyword === e.keyword) &&
      (e.instancePath === x.at || e.instancePath.startsWith(`${x.at}/`)),
  );

function standardErrorValidator(reg: Registry): ValidateFunction {
  const key = STANDARD_ERROR;
  let v = reg.compiled.get(key);
  if (!v) {
    v = reg.ajv.compile({ $ref: pathToFileURL(join(CS_DIR, STANDARD_ERROR)).href });
    reg.compiled.set(key, v);
  }
  return v;
}

/**
 * Checks one response against the spec. Returns undefined when it conforms, or when the spec
 * documents no JSON body for that operation and status (or no such operation).
 */
export function checkResponse(method: string, path: string, status: number, body: unknown): SchemaMismatch | undefined {
  const reg = getRegistry();
  if (!reg || body === undefined || typeof body === 'string') return undefined;
  const t = findTemplate(method, path);
  if (!t) return undefined;
  const tokenError = status === 401 && TOKEN_ERRORS.has((body as { errcode?: string } | null)?.errcode ?? '');
  const v = tokenError ? standardErrorValidator(reg) : validatorFor(reg, t, status);
  if (!v || v(body)) return undefined;
  const query = new URLSearchParams(path.split('?')[1] ?? '');
  const errors = (v.errors ?? []).filter((e) => !covered(t.op, status, query, body, e));
  return errors.length ? { op: t.op, template: t.path, status, errors } : undefined;
}

/** One line per failed keyword, for an assertion message. */
export function describeMismatch(m: SchemaMismatch, method: string, path: string, body: unknown): string {
  const lines = m.errors.slice(0, 8).map((e) => `  ${e.instancePath || '/'} ${e.message}${e.params ? ` ${JSON.stringify(e.params)}` : ''}`);
  const shown = JSON.stringify(body);
  return `response does not match the spec: ${method} ${path} -> ${m.status} (${m.op}, ${m.template})\n${lines.join('\n')}\n  body: ${shown.length > 600 ? `${shown.slice(0, 600)}...` : shown}`;
}

/** Mismatches seen by clients that cannot throw at the call (matrix-js-sdk), per server origin. */
const clientMismatches = new Map<string, string[]>();

export function recordClientMismatch(origin: string, text: string): void {
  const list = clientMismatches.get(origin) ?? [];
  if (!list.includes(text)) list.push(text);
  clientMismatches.set(origin, list);
}

/** The recorded mismatches for a server, forgotten once taken. */
export function takeClientMismatches(origin: string): string[] {
  const list = clientMismatches.get(origin) ?? [];
  clientMismatches.delete(origin);
  return list;
}
