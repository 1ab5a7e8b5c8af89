import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect, sql, type LogEvent } from 'kysely';
import postgres from 'postgres';
import { PostgresJsDialect, type PoolUsage } from './postgres-driver.js';
import type { Db, Dialect } from './schema.js';
import { registerPostgresHandle } from './pg-pipeline.js';
import { registerSqliteHandle } from './sqlite-sync.js';

export interface Database {
  db: Db;
  dialect: Dialect;
  /** PostgreSQL: the connection pool's size and use. SQLite has one connection and no pool. */
  pool?: PoolUsage;
  close(): Promise<void>;
}

export interface ConnectOptions {
  /** A SQLite file path (or ':memory:') or a postgres:// URL. */
  url: string;
  sqliteSynchronous?: 'FULL' | 'NORMAL';
  poolSize?: number;
}

/** HEARTH_LOG_SQL=1 prints every query with its duration to stderr (for finding N+1 patterns). */
const printSql = process.env.HEARTH_LOG_SQL ? (text: string, ms: number) => process.stderr.write(`sql ${ms.toFixed(2)}ms ${text}\n`) : undefined;
const sqlLog: ((e: LogEvent) => void) | undefined = printSql ? (e: LogEvent) => printSql(e.query.sql, e.queryDurationMillis) : undefined;

/**
 * Seconds before reconnecting after `retries` failed attempts. postgres.js's
 * default grows to 20 s, so a node would stay away that long after its
 * database came back (a failover, a cut link); a cluster node retries within a second.
 */
export function reconnectDelaySeconds(retries: number): number {
  return Math.min(0.05 * 2 ** retries, 1);
}

export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//.test(url);
}

export async function connectDatabase(opts: ConnectOptions): Promise<Database> {
  if (isPostgresUrl(opts.url)) {
    const pool: PoolUsage = { size: opts.poolSize ?? 10, inUse: 0 };
    const client = postgres(opts.url, {
      max: pool.size,
      onnotice: () => {},
      // int8 columns hold positions and timestamps, all below 2^53.
      types: {
        bigint: { to: 20, from: [20], serialize: (x: number) => String(x), parse: (x: string) => Number(x) },
      },
      target_session_attrs: 'primary',
      keep_alive: 30,
      // postgres.js waits 30 s by default for a new connection's startup, and the queries queued
      // for that connection wait with it. During a failover a database that has not answered the
      // startup within 5 s is given up and tried again, as the bus does.
      connect_timeout: 5,
      backoff: reconnectDelaySeconds,
    } as postgres.Options<Record<string, postgres.PostgresType>>);
    const db = new Kysely<never>({ dialect: new PostgresJsDialect(client, pool), log: sqlLog }) as unknown as Db;
    await sql`select 1`.execute(db);
    registerPostgresHandle(db, client, pool);
    return { db, dialect: 'postgres', pool, close: () => db.destroy() };
  }
  const file = new BetterSqlite3(opts.url);
  file.pragma('journal_mode = WAL');
  file.pragma(`synchronous = ${opts.sqliteSynchronous ?? 'FULL'}`);
  file.pragma('foreign_keys = ON');
  file.pragma('busy_timeout = 5000');
  // 8 MB of pages: a page SQLite lets go is still in the operating system's cache, a read away,
  // while its own cache stays resident once filled. 16 MB put the initial sync of a user in
  // 1,000 rooms over 150 MB of RSS; with 8 MB it is 10 MB lower and about as fast.
  file.pragma('cache_size = -8000');
  file.pragma('temp_store = MEMORY');
  const prepare = statementCache(file);
  const db = new Kysely<never>({ dialect: new SqliteDialect({ database: withPrepare(file, prepare) }), log: sqlLog }) as unknown as Db;
  registerSqliteHandle(db, { file, prepare, log: printSql });
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
function statementCache(file: BetterSqlite3.Database, max = 1000): (text: string) => BetterSqlite3.Statement {
  const cache = new Map<string, BetterSqlite3.Statement>();
  return (text: string) => {
    let stmt = cache.get(text);
    if (!stmt) {
      if (cache.size >= max) cache.clear();
      stmt = file.prepare(withConstantLimits(text));
      cache.set(text, stmt);
    }
    return stmt;
  };
}

/**
 * SQLite's planner uses the value bound to a bare `LIMIT ?` or `OFFSET ?`,
 * so binding that parameter expires the statement and every run prepares it
 * again: a statement of a hundred `LIMIT ?` subqueries (the timelines of a
 * hundred rooms in an initial sync) ran four times slower than with the value
 * written in. Cast, the value is an expression the planner does not read,
 * and the prepared statement is kept. Kysely's `.limit()` and `.offset()`
 * write bare parameters.
 */
export function withConstantLimits(text: string): string {
  return text.replace(/\b(limit|offset)\s+\?(?!\d)/gi, '$1 cast(? as integer)');
}

/** The database as Kysely's driver sees it, with `prepare` going through the cache. */
function withPrepare(file: BetterSqlite3.Database, prepare: (text: string) => BetterSqlite3.Statement): BetterSqlite3.Database {
  return new Proxy(file, {
    get(target, prop, receiver) {
      if (prop === 'prepare') return prepare;
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}
