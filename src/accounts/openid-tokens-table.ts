/** openid_tokens: tokens a user handed to a third party (a widget, Element Call), by digest, until they expire. */
import type { DbOrTx } from '../db/schema.js';

declare module '../db/schema.js' {
  interface Tables {
    openid_tokens: OpenIdTokenRow;
  }
}

export interface OpenIdTokenRow {
  /** sha256 of the token, hex (secrets.tokenHash). */
  token_hash: string;
  user_id: string;
  expires_ts: number;
}

/** Stores a token and drops the expired ones, so the table holds only live tokens. */
export async function insertOpenIdToken(db: DbOrTx, row: OpenIdTokenRow, now: number): Promise<void> {
  await db.deleteFrom('openid_tokens').where('expires_ts', '<=', now).execute();
  await db.insertInto('openid_tokens').values(row).execute();
}

/** The user a live token was issued to. */
export async function selectOpenIdUser(db: DbOrTx, tokenHash: string, now: number): Promise<string | null> {
  const row = await db
    .selectFrom('openid_tokens')
    .select('user_id')
    .where('token_hash', '=', tokenHash)
    .where('expires_ts', '>', now)
    .executeTakeFirst();
  return row?.user_id ?? null;
}
