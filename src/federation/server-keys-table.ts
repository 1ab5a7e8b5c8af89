import type { DbOrTx } from '../db/schema.js';
import type { ServerKeyRow } from './tables.js';

export async function selectServerKeys(db: DbOrTx, server: string): Promise<ServerKeyRow[]> {
  return db.selectFrom('federation_server_keys').selectAll().where('server_name', '=', server).execute();
}

/** Stores the keys of one verified response, replacing what was known of those key ids. */
export async function upsertServerKeys(db: DbOrTx, rows: ServerKeyRow[]): Promise<void> {
  for (const row of rows) {
    await db
      .insertInto('federation_server_keys')
      .values(row)
      .onConflict((oc) =>
        oc.columns(['server_name', 'key_id']).doUpdateSet({
          public_key: row.public_key,
          valid_until_ts: row.valid_until_ts,
          expired_ts: row.expired_ts,
          fetched_ts: row.fetched_ts,
          response_json: row.response_json,
        }),
      )
      .execute();
  }
}
