import type { CompiledQuery, Compilable, QueryResult } from 'kysely';
import type { Db, DbOrTx } from './schema.js';

/**
 * A query that is built and compiled once per database and then run with new
 * parameters: for hot paths, where Kysely's building and compiling costs more
 * than SQLite takes to run the statement.
 *
 * `build` gets stand-ins for the parameters and must put each one it reads
 * into the query as a plain value, the same way on every call: no branching
 * on parameters, no `in` lists of varying length, no `sql.lit`. The stand-ins
 * are found among the compiled parameters; other compiled parameters (literal
 * values written in the builder code) are kept. Parameters are bound as given:
 * a null means `= NULL`, not `is null`.
 *
 *   const bump = prepared((db, p: { stream: string; n: number }) =>
 *     db.updateTable('stream_positions').set({ pos: sql`pos + ${p.n}` }).where('stream', '=', p.stream));
 *   await bump.execute(trx, { stream: 'events', n: 1 });
 */
export interface Prepared<P extends object, R> {
  execute(db: DbOrTx, params: P): Promise<QueryResult<R>>;
  /** The compiled query for `db`'s dialect with these parameters (run by sqlite-sync). */
  bind(db: DbOrTx, params: P): CompiledQuery<R>;
}

interface Template {
  sql: string;
  query: CompiledQuery['query'];
  queryId: CompiledQuery['queryId'];
  constants: readonly unknown[];
  /** For each compiled parameter: the name of the parameter it takes, or null for a constant. */
  slots: (string | null)[];
}

const MARK = '\u0000hearth-prepared:';

function compileTemplate<P extends object>(db: DbOrTx, build: (db: Db, p: P) => Compilable<unknown>): Template {
  const read = new Set<string>();
  const standIns = new Proxy({} as P, {
    get(_target, key) {
      if (typeof key !== 'string') return undefined;
      read.add(key);
      return `${MARK}${key}\u0000`;
    },
  });
  const compiled = build(db as Db, standIns).compile();
  const slots = compiled.parameters.map((v) =>
    typeof v === 'string' && v.startsWith(MARK) && v.endsWith('\u0000') ? v.slice(MARK.length, -1) : null,
  );
  for (const key of read) {
    if (!slots.includes(key)) throw new Error(`prepared query: parameter ${key} is not a bound value of the compiled query`);
  }
  if (compiled.sql.includes(MARK)) throw new Error('prepared query: a parameter ended up in the SQL text');
  return { sql: compiled.sql, query: compiled.query, queryId: compiled.queryId, constants: compiled.parameters, slots };
}

export function prepared<P extends object, R>(build: (db: Db, p: P) => Compilable<R>): Prepared<P, R> {
  // One template per Kysely instance (keyed by its adapter, which its transactions share): the SQL differs per dialect.
  const templates = new WeakMap<object, Template>();
  const bind = (db: DbOrTx, params: P): CompiledQuery<R> => {
    const key = db.getExecutor().adapter;
    let t = templates.get(key);
    if (!t) {
      t = compileTemplate(db, build);
      templates.set(key, t);
    }
    const values = params as Record<string, unknown>;
    const parameters = new Array<unknown>(t.slots.length);
    for (let i = 0; i < parameters.length; i++) {
      const name = t.slots[i]!;
      parameters[i] = name === null ? t.constants[i] : values[name];
    }
    return { sql: t.sql, query: t.query, queryId: t.queryId, parameters };
  };
  return {
    bind,
    execute: (db, params) => db.executeQuery<R>(bind(db, params)),
  };
}
