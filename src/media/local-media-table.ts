import { sql } from 'kysely';
import type { DbOrTx } from '../db/schema.js';
import type { LocalMediaRow } from './tables.js';

export async function insertMedia(db: DbOrTx, row: LocalMediaRow): Promise<void> {
  await db.insertInto('local_media').values(row).execute();
}

export async function selectMedia(db: DbOrTx, mediaId: string): Promise<LocalMediaRow | undefined> {
  return db.selectFrom('local_media').selectAll().where('media_id', '=', mediaId).executeTakeFirst();
}

/**
 * Fills a pending (`create`d) row with its content. False when the row is no longer pending
 * (another PUT won the race).
 */
export async function completePendingMedia(
  db: DbOrTx,
  mediaId: string,
  content: { content_type: string; upload_name: string | null; size: number; sha256: string; uploaded_ts: number; last_access_ts: number },
): Promise<boolean> {
  const res = await db
    .updateTable('local_media')
    .set({ ...content, unused_expires_ts: null })
    .where('media_id', '=', mediaId)
    .where('sha256', 'is', null)
    .executeTakeFirst();
  return Number(res.numUpdatedRows) > 0;
}

/** Bytes of content a user has uploaded. */
export async function selectUserUsage(db: DbOrTx, userId: string): Promise<number> {
  const row = await db
    .selectFrom('local_media')
    .select(sql<string | number | null>`sum(size)`.as('total'))
    .where('user_id', '=', userId)
    .executeTakeFirst();
  return Number(row?.total ?? 0);
}

/** A user's `create`d ids that are neither uploaded nor expired. */
export async function countPendingMedia(db: DbOrTx, userId: string, now: number): Promise<number> {
  const row = await db
    .selectFrom('local_media')
    .select((eb) => eb.fn.countAll<string | number>().as('n'))
    .where('user_id', '=', userId)
    .where('sha256', 'is', null)
    .where('unused_expires_ts', '>', now)
    .executeTakeFirst();
  return Number(row?.n ?? 0);
}

/** Forgets a user's `create`d ids whose time to upload has passed. */
export async function deleteExpiredPending(db: DbOrTx, userId: string, now: number): Promise<void> {
  await db
    .deleteFrom('local_media')
    .where('user_id', '=', userId)
    .where('sha256', 'is', null)
    .where('unused_expires_ts', '<=', now)
    .execute();
}

export async function deleteMediaRow(db: DbOrTx, mediaId: string): Promise<void> {
  await db.deleteFrom('local_media').where('media_id', '=', mediaId).execute();
}

/** Whether any media item or thumbnail, local or cached from another server, still refers to these bytes. */
export async function contentIsReferenced(db: DbOrTx, sha256: string): Promise<boolean> {
  for (const table of ['local_media', 'media_thumbnails', 'remote_media', 'remote_media_thumbnails'] as const) {
    const hit = await db.selectFrom(table).select('sha256').where('sha256', '=', sha256).limit(1).executeTakeFirst();
    if (hit) return true;
  }
  return false;
}

/** Ids of the media a user uploaded (or `create`d). */
export async function selectMediaIdsOfUser(db: DbOrTx, userId: string): Promise<string[]> {
  const rows = await db.selectFrom('local_media').select('media_id').where('user_id', '=', userId).execute();
  return rows.map((r) => r.media_id);
}

/** Ids of media created before `before`, larger than `sizeGt` bytes when given. */
export async function selectMediaIdsBefore(db: DbOrTx, before: number, sizeGt: number): Promise<string[]> {
  const rows = await db.selectFrom('local_media').select('media_id').where('created_ts', '<', before).where('size', '>', sizeGt).execute();
  return rows.map((r) => r.media_id);
}

/** Which of `ids` exist. */
export async function selectExistingMediaIds(db: DbOrTx, ids: string[]): Promise<string[]> {
  if (ids.length === 0) return [];
  const rows = await db.selectFrom('local_media').select('media_id').where('media_id', 'in', ids).execute();
  return rows.map((r) => r.media_id);
}

/** Records that the media was served at `now`. */
export async function touchMedia(db: DbOrTx, mediaId: string, now: number): Promise<void> {
  await db.updateTable('local_media').set({ last_access_ts: now }).where('media_id', '=', mediaId).execute();
}

/** Uploaded media last served before `before`, oldest first. */
export async function selectMediaIdsNotServedSince(db: DbOrTx, before: number, limit: number): Promise<string[]> {
  const rows = await db
    .selectFrom('local_media')
    .select('media_id')
    .where('last_access_ts', '<', before)
    .where('sha256', 'is not', null)
    .orderBy('last_access_ts')
    .limit(limit)
    .execute();
  return rows.map((r) => r.media_id);
}
