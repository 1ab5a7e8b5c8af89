import { createHash } from 'node:crypto';
import Ajv from 'ajv';
import { boundedCache } from '../bounded-cache.js';
import type { Context } from '../context.js';
import { MatrixError, badJson, invalidParam, notFound } from '../http/errors.js';
import { insertFilter, selectFilter } from './filters-store.js';
import { FILTER_SCHEMA, compileFilter, type CompiledFilter, type SyncFilter } from './filter-rules.js';

const ajv = new Ajv.default({ allErrors: false, strict: false });
const validateFilter = ajv.compile(FILTER_SCHEMA);

const EMPTY = compileFilter({});

/**
 * Stored filters. A filter id is derived from the filter's canonical JSON,
 * so uploading the same filter twice gives the same id and the stored rows
 * never change: the compiled-filter cache needs no invalidation.
 */
export class Filters {
  private readonly cache = boundedCache<string, CompiledFilter>(5000);

  constructor(private readonly ctx: Context) {}

  async create(userId: string, filter: SyncFilter): Promise<string> {
    const json = sortedJson(filter);
    const id = createHash('sha256').update(json).digest('base64url').slice(0, 16);
    await insertFilter(this.ctx.db, userId, id, json);
    return id;
  }

  /** The filter as uploaded, or 404. */
  async get(userId: string, filterId: string): Promise<SyncFilter> {
    const json = await selectFilter(this.ctx.db, userId, filterId);
    if (json === null) throw notFound('No such filter');
    return JSON.parse(json) as SyncFilter;
  }

  /** The `filter` query parameter of /sync: a filter id, or inline JSON when it starts with `{`. */
  async resolve(userId: string, param: string | undefined): Promise<CompiledFilter> {
    if (param === undefined || param === '') return EMPTY;
    if (param.trimStart().startsWith('{')) {
      const hit = this.cache.get(`inline\u0000${param}`);
      if (hit) return hit;
      let parsed: unknown;
      try {
        parsed = JSON.parse(param);
      } catch {
        throw new MatrixError(400, 'M_NOT_JSON', 'The filter is not valid JSON');
      }
      const compiled = compileFilter(checkFilter(parsed));
      this.cache.set(`inline\u0000${param}`, compiled);
      return compiled;
    }
    const key = `${userId}\u0000${param}`;
    const hit = this.cache.get(key);
    if (hit) return hit;
    const json = await selectFilter(this.ctx.db, userId, param);
    if (json === null) throw invalidParam(`No filter with id ${param.slice(0, 80)}`);
    const compiled = compileFilter(JSON.parse(json) as SyncFilter);
    this.cache.set(key, compiled);
    return compiled;
  }
}

/** JSON with object keys sorted (floats allowed, unlike canonical JSON): equal filters, equal ids. */
function sortedJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

export function checkFilter(value: unknown): SyncFilter {
  if (!validateFilter(value)) {
    const e = validateFilter.errors?.[0];
    throw badJson(`Invalid filter: ${e ? `${e.instancePath || '/'} ${e.message}` : 'bad shape'}`);
  }
  return value as SyncFilter;
}
