import type { DbOrTx } from '../db/schema.js';

/** The cached preview of `url`, unless it has expired. */
export async function selectPreview(db: DbOrTx, url: string, now: number): Promise<Record<string, unknown> | undefined> {
  const row = await db.selectFrom('url_previews').select('og').where('url', '=', url).where('expires_ts', '>', now).executeTakeFirst();
  return row ? (JSON.parse(row.og) as Record<string, unknown>) : undefined;
}

export async function upsertPreview(db: DbOrTx, url: string, og: Record<string, unknown>, now: number, ttlMs: number): Promise<void> {
  const row = { url, og: JSON.stringify(og), fetched_ts: now, expires_ts: now + ttlMs };
  await db
    .insertInto('url_previews')
    .values(row)
    .onConflict((oc) => oc.column('url').doUpdateSet({ og: row.og, fetched_ts: row.fetched_ts, expires_ts: row.expires_ts }))
    .execute();
}

export async function deleteExpiredPreviews(db: DbOrTx, now: number): Promise<void> {
  await db.deleteFrom('url_previews').where('expires_ts', '<=', now).execute();
}
