import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect, sql, type LogEvent } from 'kysely';
import postgres from 'postgres';
import { PostgresJsDialect } from './postgres-driver.js';
import type { Db, Dialect } from './schema.js';

export interface Database {
  db: Db;
  dialect: Dialect;
  close(): Promise<void>;
}

export interface ConnectOptions {
  /** A SQLite file path (or ':memory:') or a postgres:// URL. */
  url: string;
  sqliteSynchronous?: 'FULL' | 'NORMAL';
  poolSize?: number;
}

/** HEARTH_LOG_SQL=1 prints every query with its duration to stderr (for finding N+1 patterns). */
const sqlLog: ((e: LogEvent) => void) | undefined = process.env.HEARTH_LOG_SQL
  ? (e: LogEvent) => process.stderr.write(`sql ${e.queryDurationMillis.toFixed(2)}ms ${e.query.sql}\n`)
  : undefined;

export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//.test(url);
}

export async function connectDatabase(opts: ConnectOptions): Promise<Database> {
  if (isPostgresUrl(opts.url)) {
    const client = postgres(opts.url, {
      max: opts.poolSize ?? 10,
      onnotice: () => {},
      // int8 columns hold positions and timestamps, all below 2^53.
      types: {
        bigint: { to: 20, from: [20], serialize: (x: number) => String(x), parse: (x: string) => Number(x) },
      },
      target_session_attrs: 'primary',
      keep_alive: 30,
    } as postgres.Options<Record<string, postgres.PostgresType>>);
    const db = new Kysely<never>({ dialect: new PostgresJsDialect(client), log: sqlLog }) as unknown as Db;
    await sql`select 1`.execute(db);
    return { db, dialect: 'postgres', close: () => db.destroy() };
  }
  const file = new BetterSqlite3(opts.url);
  file.pragma('journal_mode = WAL');
  file.pragma(`synchronous = ${opts.sqliteSynchronous ?? 'FULL'}`);
  file.pragma('foreign_keys = ON');
  file.pragma('busy_timeout = 5000');
  file.pragma('cache_size = -16000');
  file.pragma('temp_store = MEMORY');
  const db = new Kysely<never>({ dialect: new SqliteDialect({ database: withStatementCache(file) }), log: sqlLog }) as unknown as Db;
  return {
    db,
    dialect: 'sqlite',
    close: async () => {
      await db.destroy();
    },
  };
}

/**
 * Kysely prepares every query afresh; SQLite's prepare costs as much as a
 * small query, so statements are kept by SQL text. Bounded: queries with
 * `in (...)` lists of varying length make many texts, so the cache is simply
 * emptied when full.
 */
function withStatementCache(file: BetterSqlite3.Database, max = 1000): BetterSqlite3.Database {
  const cache = new Map<string, BetterSqlite3.Statement>();
  return new Proxy(file, {
    get(target, prop, receiver) {
      if (prop === 'prepare') {
        return (text: string) => {
          let stmt = cache.get(text);
          if (!stmt) {
            if (cache.size >= max) cache.clear();
            stmt = target.prepare(text);
            cache.set(text, stmt);
          }
          return stmt;
        };
      }
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}
