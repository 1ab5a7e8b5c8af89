import type { DbOrTx } from '../db/schema.js';
import type { ThreepidValidationSessionRow } from './tables.js';

/** SQL for `threepid_validation_sessions`. */

export async function selectValidationSession(db: DbOrTx, sid: string): Promise<ThreepidValidationSessionRow | undefined> {
  return db.selectFrom('threepid_validation_sessions').selectAll().where('sid', '=', sid).executeTakeFirst();
}

export async function selectValidationSessionBySecret(
  db: DbOrTx,
  medium: string,
  address: string,
  clientSecret: string,
): Promise<ThreepidValidationSessionRow | undefined> {
  return db
    .selectFrom('threepid_validation_sessions')
    .selectAll()
    .where('medium', '=', medium)
    .where('address', '=', address)
    .where('client_secret', '=', clientSecret)
    .executeTakeFirst();
}

/**
 * Records a token sent for (medium, address, client_secret): a new session, or the existing one
 * with the new token and attempt. A concurrent request for the same triple leaves one row.
 */
export async function upsertValidationSession(db: DbOrTx, row: ThreepidValidationSessionRow): Promise<void> {
  await db
    .insertInto('threepid_validation_sessions')
    .values(row)
    .onConflict((oc) =>
      oc.columns(['medium', 'address', 'client_secret']).doUpdateSet({
        last_send_attempt: row.last_send_attempt,
        token_hash: row.token_hash,
        next_link: row.next_link,
      }),
    )
    .execute();
}

export async function markValidated(db: DbOrTx, sid: string, ts: number): Promise<void> {
  await db.updateTable('threepid_validation_sessions').set({ validated_ts: ts }).where('sid', '=', sid).where('validated_ts', 'is', null).execute();
}

export async function deleteValidationSessionsBefore(db: DbOrTx, ts: number): Promise<void> {
  await db.deleteFrom('threepid_validation_sessions').where('created_ts', '<', ts).execute();
}
