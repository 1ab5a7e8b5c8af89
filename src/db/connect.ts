import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect, sql } from 'kysely';
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
    const db = new Kysely<never>({ dialect: new PostgresJsDialect(client) }) as unknown as Db;
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
  const db = new Kysely<never>({ dialect: new SqliteDialect({ database: file }) }) as unknown as Db;
  return {
    db,
    dialect: 'sqlite',
    close: async () => {
      await db.destroy();
    },
  };
}
