/**
 * Writes spec-endpoints.ts from the spec's OpenAPI files:
 *   npx tsc -p tsconfig.json && node dist/test/e2e/spec-endpoints-gen.js ../shared/matrix-spec/data/api/client-server > test/e2e/spec-endpoints.ts
 * Not a test: it does nothing unless run directly with the folder as argument.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import YAML from 'yaml';

type Json = any; // OpenAPI documents, read loosely

const cache = new Map<string, Json>();
const load = (file: string): Json => {
  if (!cache.has(file)) cache.set(file, YAML.parse(readFileSync(file, 'utf8')));
  return cache.get(file);
};

/** Inlines `$ref`s (relative files and #/fragments), deep enough for request schemas. */
function deref(node: Json, file: string, depth = 0): Json {
  if (depth > 20 || node === null || typeof node !== 'object') return node;
  if (Array.isArray(node)) return node.map((n) => deref(n, file, depth + 1));
  if (typeof node.$ref === 'string') {
    const [p, frag] = node.$ref.split('#');
    const target = p ? resolve(dirname(file), p) : file;
    let v = load(target);
    if (frag) for (const k of frag.split('/').filter(Boolean)) v = v[k];
    const { $ref: _, ...rest } = node;
    return { ...deref(v, target, depth + 1), ...deref(rest, file, depth + 1) };
  }
  return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, deref(v, file, depth + 1)]));
}

/**
 * `required` when an access token is the only way in. An empty scheme makes it optional; so does a
 * client-server operation that names only a federation scheme (room_summary.yaml says
 * `signedRequest` while its description lets servers answer anonymous callers).
 */
function authOf(sec: Json[]): 'required' | 'optional' | 'none' {
  if (sec.length === 0) return 'none';
  if (sec.some((x) => Object.keys(x).length === 0)) return 'optional';
  return sec.some((x) => Object.keys(x).some((k) => /accesstoken/i.test(k))) ? 'required' : 'optional';
}

function merged(s: Json): Json {
  if (!s?.allOf) return s;
  const m = { type: 'object', properties: {} as Json, required: [] as string[] };
  for (const part of [...s.allOf.map(merged), s]) {
    Object.assign(m.properties, part.properties ?? {});
    m.required.push(...(part.required ?? []));
  }
  return m;
}

function typeOf(s: Json): string {
  s = merged(s);
  if (!s) return 'any';
  if (Array.isArray(s.type)) return s.type.filter((t: string) => t !== 'null').join('|');
  if (s.type) return s.type;
  if (s.properties) return 'object';
  return 'any';
}

const fmt = (v: unknown): string =>
  Array.isArray(v)
    ? `[${v.map(fmt).join(', ')}]`
    : v && typeof v === 'object'
      ? `{ ${Object.entries(v).map(([k, x]) => `${k}: ${fmt(x)}`).join(', ')} }`
      : JSON.stringify(v).replace(/^"(.*)"$/, "'$1'");

export function generate(dir: string): string {
  const seen = new Set<string>();
  const lines: string[] = [];
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.yaml')).sort()) {
    const file = join(dir, f);
    const doc = load(file);
    const base: string | undefined = doc.servers?.[0]?.variables?.basePath?.default;
    if (!base?.startsWith('/_matrix/client')) continue;
    for (const [p, ops] of Object.entries<Json>(doc.paths ?? {})) {
      for (const [method, raw] of Object.entries<Json>(ops)) {
        if (!['get', 'put', 'post', 'delete'].includes(method)) continue;
        const op = deref(raw, file);
        const path = (base + p).trim();
        const key = `${method} ${path}`;
        if (seen.has(key)) continue; // the 3PID invite shares /invite with the plain one
        seen.add(key);
        const sec: Json[] = op.security ?? [];
        const e: Json = {
          op: op.operationId,
          m: method.toUpperCase(),
          p: path,
          auth: authOf(sec),
        };
        const query = (op.parameters ?? [])
          .filter((x: Json) => x.in === 'query')
          .map((x: Json) => ({ name: x.name, type: typeOf(x.schema), required: !!x.required, enum: x.schema?.enum }))
          .filter((q: Json) => q.required || q.type !== 'string');
        if (query.length) e.query = query.map((q: Json) => ({ name: q.name, type: q.type, ...(q.required ? { required: true } : {}), ...(q.enum ? { enum: q.enum } : {}) }));
        const bs = op.requestBody?.content?.['application/json']?.schema;
        if (bs) {
          const s = merged(bs);
          const props: Json = s.properties ?? {};
          const req: string[] = s.required ?? [];
          e.body = req.map((n) => ({ name: n, type: typeOf(props[n]), ...(props[n]?.enum ? { enum: props[n].enum } : {}) }));
          const opt = Object.entries<Json>(props)
            .filter(([k, v]) => !req.includes(k) && ['string', 'integer', 'number', 'boolean', 'array', 'object'].includes(typeOf(v)))
            .map(([name, v]) => ({ name, type: typeOf(v) }));
          if (opt.length) e.optional = opt;
        } else if (op.requestBody) e.body = 'raw';
        const errcodes = [...new Set(JSON.stringify(op.responses ?? {}).match(/\bM_[A-Z_]+\b/g) ?? [])].sort();
        if (errcodes.length) e.errcodes = errcodes;
        if (op.deprecated) e.deprecated = true;
        lines.push(`  ${fmt(e)},`);
      }
    }
  }
  return `/**
 * The client-server endpoints of the Matrix spec, one row per operation, taken from
 * shared/matrix-spec/data/api/client-server/*.yaml (base path, security, required
 * query parameters and typed ones, the body's required fields and their types, and
 * every errcode the operation's responses name). bad-input.test.ts drives every row
 * that Hearth serves. Generated by spec-endpoints-gen.ts: regenerate when the spec moves.
 */
export interface SpecField {
  name: string;
  type: string;
  required?: boolean;
  enum?: unknown[];
}

export interface SpecEndpoint {
  /** The spec's operationId. */
  op: string;
  m: 'GET' | 'PUT' | 'POST' | 'DELETE';
  /** Full path with {params}. */
  p: string;
  auth: 'required' | 'optional' | 'none';
  query?: SpecField[];
  /** Required body fields, or 'raw' for a non-JSON body. */
  body?: SpecField[] | 'raw';
  /** Optional top-level body fields of one JSON type. */
  optional?: SpecField[];
  errcodes?: string[];
  deprecated?: boolean;
}

export const SPEC_ENDPOINTS: SpecEndpoint[] = [
${lines.join('\n')}
];
`;
}

// Run directly with the spec folder as argument (a test runner that loads this file passes none).
if (process.argv[1] && process.argv[2] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  process.stdout.write(generate(process.argv[2]));
}
