import { sql } from 'kysely';
import { hashLockKey } from './migrate.js';
import type { Dialect, Tx } from './schema.js';

/**
 * Serialises transactions that read a row, change it in code and write it
 * back (a tag added to `m.tag`, a receipt that only moves forward), so that
 * no concurrent writer's change is lost. Call it first in the transaction;
 * the lock is held until commit or rollback.
 *
 * PostgreSQL: a transaction-scoped advisory lock on (space, key). It works
 * whether or not the row exists yet (`select ... for update` locks nothing
 * when the row is missing, and two first writers would both insert). The
 * two-key form `(int4, int4)` is a key space of its own, apart from the
 * one-key locks of the room pipeline and the migrations. Two keys that hash
 * alike only make unrelated writers wait for each other.
 *
 * SQLite: nothing to take. Kysely's SQLite driver has one connection, and a
 * transaction holds it from BEGIN to COMMIT, so no other statement (and no
 * other transaction) runs in between, across awaits included.
 */
export async function lockForUpdate(trx: Tx, dialect: Dialect, space: string, key: string): Promise<void> {
  if (dialect !== 'postgres') return;
  await sql`select pg_advisory_xact_lock(${hashLockKey(space)}::int4, ${hashLockKey(key)}::int4)`.execute(trx);
}
