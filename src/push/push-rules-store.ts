import { sql } from 'kysely';
import type { Dialect, DbOrTx, Tx } from '../db/schema.js';
import { chunks } from './chunk.js';
import type { PushRulesRow } from './tables.js';

export async function getPushRulesRows(db: DbOrTx, userIds: string[]): Promise<PushRulesRow[]> {
  const out: PushRulesRow[] = [];
  for (const part of chunks(userIds)) {
    out.push(...(await db.selectFrom('push_rules').selectAll().where('user_id', 'in', part).execute()));
  }
  return out;
}

export async function getPushRulesRow(db: DbOrTx, userId: string): Promise<PushRulesRow | undefined> {
  return db.selectFrom('push_rules').selectAll().where('user_id', '=', userId).executeTakeFirst();
}

/**
 * Reads a user's document for a read-modify-write: on PostgreSQL the row is
 * created if missing and locked until commit, so concurrent edits serialise
 * (SQLite has a single writer anyway).
 */
export async function lockPushRulesRow(trx: Tx, dialect: Dialect, userId: string): Promise<PushRulesRow | undefined> {
  if (dialect !== 'postgres') return getPushRulesRow(trx, userId);
  await trx
    .insertInto('push_rules')
    .values({ user_id: userId, json: 'null', updated_ts: 0 })
    .onConflict((oc) => oc.column('user_id').doNothing())
    .execute();
  const row = await sql<PushRulesRow>`select user_id, json, updated_ts from push_rules where user_id = ${userId} for update`.execute(trx);
  const r = row.rows[0];
  return r && r.json !== 'null' ? { ...r, updated_ts: Number(r.updated_ts) } : undefined;
}

export async function putPushRules(db: DbOrTx, row: PushRulesRow): Promise<void> {
  await db
    .insertInto('push_rules')
    .values(row)
    .onConflict((oc) => oc.column('user_id').doUpdateSet({ json: row.json, updated_ts: row.updated_ts }))
    .execute();
}
