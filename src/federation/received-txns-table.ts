import type { DbOrTx } from '../db/schema.js';

/** The answer given to a transaction already processed, if any. */
export async function selectTxnResponse(db: DbOrTx, origin: string, txnId: string): Promise<unknown | undefined> {
  const row = await db
    .selectFrom('federation_received_txns')
    .select('response_json')
    .where('origin', '=', origin)
    .where('txn_id', '=', txnId)
    .executeTakeFirst();
  return row ? JSON.parse(row.response_json) : undefined;
}

export async function insertTxnResponse(db: DbOrTx, origin: string, txnId: string, response: unknown, now: number): Promise<void> {
  await db
    .insertInto('federation_received_txns')
    .values({ origin, txn_id: txnId, response_json: JSON.stringify(response), received_ts: now })
    .onConflict((oc) => oc.columns(['origin', 'txn_id']).doNothing())
    .execute();
}

/** Drops the answers to transactions received before `beforeTs`; returns how many went. */
export async function deleteTxnResponsesBefore(db: DbOrTx, beforeTs: number): Promise<number> {
  const r = await db.deleteFrom('federation_received_txns').where('received_ts', '<', beforeTs).executeTakeFirst();
  return Number(r.numDeletedRows);
}
