import type { Kysely, Transaction } from 'kysely';

/**
 * All tables, as Kysely sees them. Each domain adds its own tables to this
 * interface from its `tables.ts` with declaration merging:
 *
 *   declare module '../db/schema.js' { interface Tables { users: UsersRow } }
 *
 * so the one typed query layer knows every table while each domain keeps
 * its own table definitions beside its store.
 *
 * Portable column conventions (SQLite and PostgreSQL): `text` for strings
 * and JSON, `bigint` for positions and timestamps (read back as numbers),
 * `integer` 0/1 for booleans.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-interface
export interface Tables {
  schema_migrations: { domain: string; version: number; name: string; applied_ts: number };
  stream_positions: { stream: string; pos: number };
}

export type Db = Kysely<Tables>;
export type Tx = Transaction<Tables>;
/** A connection or a transaction: store functions accept either. */
export type DbOrTx = Kysely<Tables> | Transaction<Tables>;

export type Dialect = 'sqlite' | 'postgres';
