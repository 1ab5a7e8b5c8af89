import type { DbOrTx } from '../db/schema.js';
import type { UiaSessionRow } from './tables.js';

export async function insertUiaSession(db: DbOrTx, row: UiaSessionRow): Promise<void> {
  await db.insertInto('uia_sessions').values(row).execute();
}

export async function getUiaSession(db: DbOrTx, sessionId: string): Promise<UiaSessionRow | undefined> {
  return db.selectFrom('uia_sessions').selectAll().where('session_id', '=', sessionId).executeTakeFirst();
}

export async function updateUiaSession(
  db: DbOrTx,
  sessionId: string,
  set: Partial<Pick<UiaSessionRow, 'completed' | 'body_hash' | 'results'>>,
): Promise<void> {
  await db.updateTable('uia_sessions').set(set).where('session_id', '=', sessionId).execute();
}

export async function deleteUiaSessionsBefore(db: DbOrTx, ts: number): Promise<void> {
  await db.deleteFrom('uia_sessions').where('created_ts', '<', ts).execute();
}

/** Ends a session: what it completed cannot authorise another request. */
export async function deleteUiaSession(db: DbOrTx, sessionId: string): Promise<void> {
  await db.deleteFrom('uia_sessions').where('session_id', '=', sessionId).execute();
}
