import { sql } from 'kysely';
import type { DbOrTx, Dialect } from '../db/schema.js';
import { dbNowMs } from './db-clock.js';
import './tables.js';

/**
 * Lease rows (CLUSTER.md 5): whoever finds a lease expired (or already
 * theirs) takes it with the next epoch; renewals and fenced writes name the
 * epoch, so an ex-holder's cannot succeed.
 */
export async function takeLease(db: DbOrTx, dialect: Dialect, name: string, holder: string, ttlMs: number): Promise<number | null> {
  const now = dbNowMs(dialect);
  const row = await db
    .insertInto('cluster_leases')
    .values({ name, holder, epoch: 1, expires_ts: sql<number>`${now} + ${ttlMs}` })
    .onConflict((oc) =>
      oc
        .column('name')
        .doUpdateSet({ holder, epoch: sql<number>`cluster_leases.epoch + 1`, expires_ts: sql<number>`${now} + ${ttlMs}` })
        .where((eb) => eb.or([eb('cluster_leases.expires_ts', '<', now), eb('cluster_leases.holder', '=', holder)])),
    )
    .returning('epoch')
    .executeTakeFirst();
  return row ? Number(row.epoch) : null;
}

/** Extends, in one statement, those of `leases` that `holder` still has at their epoch; returns the names extended. */
export async function renewLeases(db: DbOrTx, dialect: Dialect, holder: string, leases: Array<{ name: string; epoch: number }>, ttlMs: number): Promise<Set<string>> {
  if (leases.length === 0) return new Set();
  const now = dbNowMs(dialect);
  const rows = await db
    .updateTable('cluster_leases')
    .set({ expires_ts: sql<number>`${now} + ${ttlMs}` })
    .where('holder', '=', holder)
    .where('expires_ts', '>=', now)
    .where((eb) => eb.or(leases.map((l) => eb.and([eb('name', '=', l.name), eb('epoch', '=', l.epoch)]))))
    .returning('name')
    .execute();
  return new Set(rows.map((r) => r.name));
}

/**
 * In the caller's transaction: true if `holder` has the lease at `epoch` and
 * it has not expired. On PostgreSQL the row is share-locked, so a takeover
 * waits for this transaction to end and cannot slip in before its commit.
 */
export async function checkLease(trx: DbOrTx, dialect: Dialect, name: string, holder: string, epoch: number): Promise<boolean> {
  let q = trx
    .selectFrom('cluster_leases')
    .select('epoch')
    .where('name', '=', name)
    .where('holder', '=', holder)
    .where('epoch', '=', epoch)
    .where('expires_ts', '>', dbNowMs(dialect));
  if (dialect === 'postgres') q = q.forShare();
  return (await q.executeTakeFirst()) !== undefined;
}

/** Gives the lease up at once (another node may take it without waiting for expiry). */
export async function dropLease(db: DbOrTx, name: string, holder: string, epoch: number): Promise<void> {
  await db.updateTable('cluster_leases').set({ expires_ts: 0 }).where('name', '=', name).where('holder', '=', holder).where('epoch', '=', epoch).execute();
}
