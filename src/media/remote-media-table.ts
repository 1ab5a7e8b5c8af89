/** SQL of the remote media cache: `remote_media` and `remote_media_thumbnails`. */
import type { DbOrTx } from '../db/schema.js';
import type { RemoteMediaRow, RemoteThumbnailRow } from './tables.js';

export async function selectRemoteMedia(db: DbOrTx, serverName: string, mediaId: string): Promise<RemoteMediaRow | undefined> {
  return db.selectFrom('remote_media').selectAll().where('server_name', '=', serverName).where('media_id', '=', mediaId).executeTakeFirst();
}

/** Records fetched media; a copy stored meanwhile by another node is replaced by this one. */
export async function upsertRemoteMedia(db: DbOrTx, row: RemoteMediaRow): Promise<void> {
  await db
    .insertInto('remote_media')
    .values(row)
    .onConflict((oc) =>
      oc.columns(['server_name', 'media_id']).doUpdateSet({
        content_type: row.content_type,
        upload_name: row.upload_name,
        size: row.size,
        sha256: row.sha256,
        fetched_ts: row.fetched_ts,
        last_access_ts: row.last_access_ts,
      }),
    )
    .execute();
}

export async function touchRemoteMedia(db: DbOrTx, serverName: string, mediaId: string, now: number): Promise<void> {
  await db.updateTable('remote_media').set({ last_access_ts: now }).where('server_name', '=', serverName).where('media_id', '=', mediaId).execute();
}

export async function selectRemoteThumbnail(
  db: DbOrTx,
  key: Pick<RemoteThumbnailRow, 'server_name' | 'media_id' | 'width' | 'height' | 'method' | 'animated'>,
): Promise<RemoteThumbnailRow | undefined> {
  return db
    .selectFrom('remote_media_thumbnails')
    .selectAll()
    .where('server_name', '=', key.server_name)
    .where('media_id', '=', key.media_id)
    .where('width', '=', key.width)
    .where('height', '=', key.height)
    .where('method', '=', key.method)
    .where('animated', '=', key.animated)
    .executeTakeFirst();
}

export async function insertRemoteThumbnail(db: DbOrTx, row: RemoteThumbnailRow): Promise<void> {
  await db
    .insertInto('remote_media_thumbnails')
    .values(row)
    .onConflict((oc) => oc.columns(['server_name', 'media_id', 'width', 'height', 'method', 'animated']).doNothing())
    .execute();
}

/** Remote media not served since `before`, oldest first. */
export async function selectStaleRemoteMedia(db: DbOrTx, before: number, limit: number): Promise<Pick<RemoteMediaRow, 'server_name' | 'media_id'>[]> {
  return db
    .selectFrom('remote_media')
    .select(['server_name', 'media_id'])
    .where('last_access_ts', '<', before)
    .orderBy('last_access_ts')
    .limit(limit)
    .execute();
}

/** Forgets one cached remote item and its thumbnails; answers the hashes they used. */
export async function deleteRemoteMedia(db: DbOrTx, serverName: string, mediaId: string): Promise<string[]> {
  const thumbs = await db
    .deleteFrom('remote_media_thumbnails')
    .where('server_name', '=', serverName)
    .where('media_id', '=', mediaId)
    .returning('sha256')
    .execute();
  const media = await db.deleteFrom('remote_media').where('server_name', '=', serverName).where('media_id', '=', mediaId).returning('sha256').execute();
  return [...thumbs, ...media].map((r) => r.sha256);
}

/** Forgets remote thumbnails fetched before `before`; answers the hashes they used. */
export async function deleteStaleRemoteThumbnails(db: DbOrTx, before: number): Promise<string[]> {
  const rows = await db.deleteFrom('remote_media_thumbnails').where('created_ts', '<', before).returning('sha256').execute();
  return rows.map((r) => r.sha256);
}
