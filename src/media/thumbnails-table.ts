import type { DbOrTx } from '../db/schema.js';
import type { MediaThumbnailRow } from './tables.js';

export async function selectThumbnails(db: DbOrTx, mediaId: string): Promise<MediaThumbnailRow[]> {
  return db.selectFrom('media_thumbnails').selectAll().where('media_id', '=', mediaId).execute();
}

/** Inserts the thumbnail; an identical one made concurrently (another node) wins silently. */
export async function insertThumbnail(db: DbOrTx, row: MediaThumbnailRow): Promise<void> {
  await db
    .insertInto('media_thumbnails')
    .values(row)
    .onConflict((oc) => oc.columns(['media_id', 'width', 'height', 'method', 'animated']).doNothing())
    .execute();
}

export async function deleteThumbnailsOf(db: DbOrTx, mediaId: string): Promise<string[]> {
  const rows = await db.deleteFrom('media_thumbnails').where('media_id', '=', mediaId).returning('sha256').execute();
  return rows.map((r) => r.sha256);
}
