import type { DbOrTx } from '../db/schema.js';

export async function insertNonce(db: DbOrTx, nonce: string, ts: number): Promise<void> {
  await db.insertInto('registration_nonces').values({ nonce, created_ts: ts }).execute();
}

/** Removes the nonce and says whether it existed and was issued at or after `notBefore`: a nonce is good once. */
export async function takeNonce(db: DbOrTx, nonce: string, notBefore: number): Promise<boolean> {
  const row = await db.deleteFrom('registration_nonces').where('nonce', '=', nonce).returning('created_ts').executeTakeFirst();
  return row !== undefined && row.created_ts >= notBefore;
}

export async function deleteNoncesBefore(db: DbOrTx, ts: number): Promise<void> {
  await db.deleteFrom('registration_nonces').where('created_ts', '<', ts).execute();
}
