/** login_tokens: single-use `m.login.token` tokens (POST /login/get_token), by digest, until used or expired. */
import type { DbOrTx } from '../db/schema.js';

declare module '../db/schema.js' {
  interface Tables {
    login_tokens: LoginTokenRow;
  }
}

export interface LoginTokenRow {
  /** sha256 of the token, hex (secrets.tokenHash). */
  token_hash: string;
  user_id: string;
  expires_ts: number;
}

/** Stores a token and drops the expired ones, so the table holds only live tokens. */
export async function insertLoginToken(db: DbOrTx, row: LoginTokenRow, now: number): Promise<void> {
  await db.deleteFrom('login_tokens').where('expires_ts', '<=', now).execute();
  await db.insertInto('login_tokens').values(row).execute();
}

/**
 * Uses up a live token: the row is deleted and its user returned in one statement, so two logins
 * racing with one token (on one node or two) cannot both get it.
 */
export async function consumeLoginToken(db: DbOrTx, tokenHash: string, now: number): Promise<string | null> {
  const row = await db.deleteFrom('login_tokens').where('token_hash', '=', tokenHash).returning(['user_id', 'expires_ts']).executeTakeFirst();
  return row && row.expires_ts > now ? row.user_id : null;
}
