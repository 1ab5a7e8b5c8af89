/** Row types of the media domain's tables (see migrations.ts). */

declare module '../db/schema.js' {
  interface Tables {
    local_media: LocalMediaRow;
    media_thumbnails: MediaThumbnailRow;
    url_previews: UrlPreviewRow;
    remote_media: RemoteMediaRow;
    remote_media_thumbnails: RemoteThumbnailRow;
  }
}

/**
 * Media uploaded to this server. A row made by `POST /create` has no content yet (`sha256` null)
 * until its `PUT`; a row with a `sha256` always has its file in the MediaStore (the file is
 * written and synced before the row is committed).
 */
export interface LocalMediaRow {
  media_id: string;
  user_id: string;
  content_type: string | null;
  upload_name: string | null;
  /** Bytes; 0 while pending. */
  size: number;
  sha256: string | null;
  created_ts: number;
  /** When the content arrived; null while pending. */
  uploaded_ts: number | null;
  /** For a pending `create`d id: after this the id can no longer be uploaded to. */
  unused_expires_ts: number | null;
  /** When it was last served (kept to a minute or so); set on upload, null while pending. */
  last_access_ts?: number | null;
}

/** A generated thumbnail of a local media item, stored in the MediaStore like any content. */
export interface MediaThumbnailRow {
  media_id: string;
  width: number;
  height: number;
  /** 'crop' | 'scale'. */
  method: string;
  /** 1 when the thumbnail is animated. */
  animated: number;
  content_type: string;
  sha256: string;
  size: number;
  created_ts: number;
}

/** A cached URL preview (the OpenGraph object served by `preview_url`). */
export interface UrlPreviewRow {
  url: string;
  /** The JSON object served to clients. */
  og: string;
  fetched_ts: number;
  expires_ts: number;
}

/**
 * Media of another server, fetched over federation and cached: the row is committed only after
 * its bytes are durable in the MediaStore, like a local upload's.
 */
export interface RemoteMediaRow {
  server_name: string;
  media_id: string;
  content_type: string;
  upload_name: string | null;
  size: number;
  sha256: string;
  fetched_ts: number;
  /** Last time a client was served it (or a thumbnail of it): the cache expires by this. */
  last_access_ts: number;
}

/** A thumbnail of remote media, as the origin server made it for the box asked for. */
export interface RemoteThumbnailRow {
  server_name: string;
  media_id: string;
  width: number;
  height: number;
  method: string;
  animated: number;
  content_type: string;
  sha256: string;
  size: number;
  created_ts: number;
}
