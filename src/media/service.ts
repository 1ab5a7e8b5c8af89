/**
 * The media repository: local uploads (direct, and `create` then `PUT`), downloads, thumbnails,
 * URL previews and admin deletion. Bytes live in a MediaStore; rows in `local_media` are
 * committed only after their bytes are durable. Media of other servers is fetched over
 * federation and cached in the same store (remote-media.ts).
 */
import { EventEmitter } from 'node:events';
import { readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { HearthConfig } from '../config/schema.js';
import type { Db, Dialect } from '../db/schema.js';
import type { FederationClient } from '../federation/client.js';
import type { RoomsService } from '../rooms/service.js';
import { ConfigError } from '../config/validate.js';
import { createOutboundGuard, isCidrList, outboundAllowFromEnv } from '../http/outbound-guard.js';
import { ContentLock } from './content-lock.js';
import { DiskMediaStore } from './disk-store.js';
import { MediaError, mediaNotFound } from './errors.js';
import { GuardedFetcher } from './guarded-fetch.js';
import {
  countPendingMedia,
  deleteExpiredPending,
  deleteMediaRow,
  insertMedia,
  selectMedia,
  touchMedia,
} from './local-media-table.js';
import type { ByteRange, MediaStore } from './media-store.js';
import { isValidMediaId, mxcUri, newMediaId } from './media-id.js';
import type { LocalMediaRow } from './tables.js';
import { RemoteMedia } from './remote-media.js';
import { MediaRetention } from './retention.js';
import { S3MediaStore } from './s3-store.js';
import { Thumbnailer } from './thumbnailer.js';
import { deleteThumbnailsOf } from './thumbnails-table.js';
import { Uploader, type UploadInput } from './upload.js';
import { UrlPreviews } from './url-preview.js';

/** How long a `create`d id waits for its content (the spec recommends 24 hours). */
const UNUSED_ID_LIFETIME_MS = 24 * 60 * 60 * 1000;
/** Pending `create`d ids one user may hold at once (more is 429 M_LIMIT_EXCEEDED). */
const MAX_PENDING_PER_USER = 10;
/** Longest a download waits for a pending upload, whatever the client asks. */
const MAX_WAIT_MS = 60_000;
/** How stale a local item's `last_access_ts` may get before a download records the access. */
const TOUCH_EVERY_MS = 60_000;
/** Owner of media the server stores for itself (URL preview images); outside every user's quota. */
const SERVER_OWNER = '';

export interface MediaServiceDeps {
  db: Db;
  dialect: Dialect;
  config: HearthConfig;
  serverName: string;
  /** The room events the purge by room reads (retention.ts). */
  rooms: Pick<RoomsService, 'storedEventsOfRoom'>;
  /** Fetches other servers' media; undefined when federation is disabled. */
  federation: Pick<FederationClient, 'getRaw' | 'getLocation'> | undefined;
  dataDir: string;
  logger: Logger;
  now(): number;
}

export class MediaService {
  readonly store: MediaStore;
  readonly thumbnails: Thumbnailer;
  readonly previews: UrlPreviews;
  readonly remote: RemoteMedia;
  readonly retention: MediaRetention;
  private readonly uploader: Uploader;
  private readonly content: ContentLock;
  private readonly fetcher: GuardedFetcher;
  private readonly uploaded = new EventEmitter().setMaxListeners(0);
  private readonly db: Db;
  private readonly mediaConfig: HearthConfig['media'];
  private readonly mediaRoot: string;

  constructor(private readonly deps: MediaServiceDeps) {
    this.db = deps.db;
    this.mediaConfig = deps.config.media;
    this.mediaRoot = join(deps.dataDir, 'media');
    const s3 = this.mediaConfig.s3;
    this.store = s3
      ? new S3MediaStore({ ...s3, endpoint: s3.endpoint ?? '', force_path_style: s3.force_path_style ?? false }, join(this.mediaRoot, 'tmp'))
      : new DiskMediaStore(this.mediaRoot);
    this.content = new ContentLock(this.db, deps.dialect, this.store);
    this.uploader = new Uploader(
      this.db,
      this.store,
      this.content,
      { maxUploadBytes: this.mediaConfig.max_upload_bytes, userQuotaBytes: this.mediaConfig.user_quota_bytes },
      deps.now,
    );
    this.thumbnails = new Thumbnailer(this.db, this.store, this.content, deps.logger, deps.now);
    const fromEnv = outboundAllowFromEnv();
    if (!isCidrList(fromEnv)) throw new ConfigError('(environment)', 'HEARTH_OUTBOUND_ALLOW', 'must be comma-separated CIDRs like "10.0.0.0/8"');
    this.remote = new RemoteMedia(this.db, this.store, this.content, deps.federation, deps.logger, deps.now, this.mediaConfig.max_upload_bytes);
    this.retention = new MediaRetention({
      db: this.db,
      store: this.store,
      content: this.content,
      serverName: deps.serverName,
      rooms: deps.rooms,
      logger: deps.logger,
      now: deps.now,
      deleteLocal: (mediaId) => this.delete(deps.serverName, mediaId),
      remoteLifetimeMs: this.mediaConfig.remote_cache_lifetime_ms,
      localLifetimeMs: this.mediaConfig.local_lifetime_ms,
      orphanGraceMs: this.mediaConfig.orphan_grace_ms,
      intervalMs: this.mediaConfig.retention_interval_ms,
    });
    const guard = createOutboundGuard([...this.mediaConfig.url_preview_allow, ...fromEnv]);
    this.fetcher = new GuardedFetcher(guard, 'Hearth (URL preview; +https://matrix.org)');
    this.previews = new UrlPreviews(
      this.db,
      this.fetcher,
      { storeImage: (b, t) => this.storeServerMedia(b, t), dimensions: (row) => this.thumbnails.imageInfo(row) },
      deps.logger,
      deps.now,
      Math.min(this.mediaConfig.max_upload_bytes, 10 * 1024 * 1024),
    );
  }

  /** Partial uploads left by a crash are removed at start (their rows were never committed). */
  async start(): Promise<void> {
    const staging = join(this.mediaRoot, 'tmp');
    const names = await readdir(staging).catch(() => [] as string[]);
    await Promise.all(names.filter((n) => n.endsWith('.part')).map((n) => unlink(join(staging, n)).catch(() => {})));
    this.retention.start();
  }

  async stop(): Promise<void> {
    await this.retention.stop();
    await this.thumbnails.drain();
    await this.fetcher.close();
    if (this.store instanceof S3MediaStore) await this.store.close();
  }

  get serverName(): string {
    return this.deps.serverName;
  }

  isLocal(serverName: string): boolean {
    return serverName === this.deps.serverName;
  }

  get maxUploadBytes(): number {
    return this.mediaConfig.max_upload_bytes;
  }

  /** `POST /upload`: stores the body under a new id. */
  async upload(input: UploadInput): Promise<string> {
    const row = await this.uploader.receive(input, { newId: newMediaId() });
    this.afterUpload(row);
    return mxcUri(this.deps.serverName, row.media_id);
  }

  /** `POST /create`: a new id to upload to later. */
  async create(userId: string): Promise<{ content_uri: string; unused_expires_at: number }> {
    const now = this.deps.now();
    await deleteExpiredPending(this.db, userId, now);
    if ((await countPendingMedia(this.db, userId, now)) >= MAX_PENDING_PER_USER) {
      throw new MediaError('rate_limited', 'Too many pending uploads; upload to or let expire the ones you have');
    }
    const row: LocalMediaRow = {
      media_id: newMediaId(),
      user_id: userId,
      content_type: null,
      upload_name: null,
      size: 0,
      sha256: null,
      created_ts: now,
      uploaded_ts: null,
      unused_expires_ts: now + UNUSED_ID_LIFETIME_MS,
    };
    await insertMedia(this.db, row);
    return { content_uri: mxcUri(this.deps.serverName, row.media_id), unused_expires_at: row.unused_expires_ts! };
  }

  /** `PUT /upload/{serverName}/{mediaId}`: the content of an id from `create`. */
  async uploadTo(serverName: string, mediaId: string, input: UploadInput): Promise<void> {
    const row = serverName === this.deps.serverName && isValidMediaId(mediaId) ? await selectMedia(this.db, mediaId) : undefined;
    if (!row) throw mediaNotFound('Unknown media ID');
    if (row.user_id !== input.userId) throw new MediaError('forbidden', 'This media ID was created by another user');
    if (row.sha256 !== null) throw new MediaError('cannot_overwrite', 'Media already uploaded');
    if (row.unused_expires_ts !== null && row.unused_expires_ts <= this.deps.now()) throw mediaNotFound('This media ID has expired');
    const done = await this.uploader.receive(input, { pendingId: mediaId });
    this.afterUpload(done);
  }

  private afterUpload(row: LocalMediaRow): void {
    this.uploaded.emit(row.media_id);
    this.thumbnails.pregenerate(row);
  }

  /**
   * The uploaded media `serverName/mediaId`, waiting up to `timeoutMs` for a pending upload.
   * `uploadedBefore` (the legacy freeze) hides media created at or after that time.
   */
  async get(serverName: string, mediaId: string, opts: { timeoutMs?: number; uploadedBefore?: number | null } = {}): Promise<LocalMediaRow> {
    if (serverName !== this.deps.serverName) throw mediaNotFound(`Media of other servers (${serverName}) is not served here`);
    if (!isValidMediaId(mediaId)) throw mediaNotFound();
    let row = await selectMedia(this.db, mediaId);
    if (!row || (opts.uploadedBefore != null && row.created_ts >= opts.uploadedBefore)) throw mediaNotFound();
    if (row.sha256 === null) row = await this.waitForUpload(mediaId, Math.min(opts.timeoutMs ?? 20_000, MAX_WAIT_MS));
    await this.noteAccess(row);
    return row;
  }

  /** Keeps `last_access_ts` (what `media.local_lifetime_ms` counts from) within a fraction of the lifetime, not one write per download. */
  private async noteAccess(row: LocalMediaRow): Promise<void> {
    const lifetime = this.mediaConfig.local_lifetime_ms;
    const every = lifetime === null ? TOUCH_EVERY_MS : Math.min(TOUCH_EVERY_MS, lifetime / 4);
    const now = this.deps.now();
    if (now - Number(row.last_access_ts ?? row.uploaded_ts ?? 0) <= every) return;
    await touchMedia(this.db, row.media_id, now);
    row.last_access_ts = now;
  }

  private async waitForUpload(mediaId: string, timeoutMs: number): Promise<LocalMediaRow> {
    const deadline = this.deps.now() + timeoutMs;
    for (;;) {
      const left = deadline - this.deps.now();
      if (left > 0) {
        // Woken by an upload on this node; the short poll covers uploads that land on another node.
        await new Promise<void>((resolve) => {
          const wake = () => {
            clearTimeout(timer);
            this.uploaded.off(mediaId, wake);
            resolve();
          };
          const timer = setTimeout(wake, Math.min(left, 500));
          this.uploaded.on(mediaId, wake);
        });
      }
      const row = await selectMedia(this.db, mediaId);
      if (!row) throw mediaNotFound();
      if (row.sha256 !== null) return row;
      if (this.deps.now() >= deadline) throw new MediaError('not_yet_uploaded', 'Content has not yet been uploaded');
    }
  }

  async open(sha256: string, range?: ByteRange): Promise<Readable> {
    const stream = await this.store.open(sha256, range);
    if (!stream) throw mediaNotFound('The content of this media is missing');
    return stream;
  }

  /** Admin: deletes a local media item, its thumbnails, and their bytes when nothing else uses them. */
  async delete(serverName: string, mediaId: string): Promise<void> {
    if (serverName !== this.deps.serverName) throw mediaNotFound('Only local media can be deleted');
    const row = isValidMediaId(mediaId) ? await selectMedia(this.db, mediaId) : undefined;
    if (!row) throw mediaNotFound();
    // Thumbnails still being made would land after the deletion.
    await this.thumbnails.whenReady(mediaId);
    const hashes = await this.db.transaction().execute(async (trx) => {
      const thumbs = await deleteThumbnailsOf(trx, mediaId);
      await deleteMediaRow(trx, mediaId);
      return [...thumbs, ...(row.sha256 ? [row.sha256] : [])];
    });
    this.thumbnails.forget(mediaId);
    for (const sha of new Set(hashes)) await this.content.dropIfUnreferenced(sha);
  }

  /** Stores bytes the server fetched itself (a preview's image). */
  private async storeServerMedia(bytes: Buffer, contentType: string): Promise<{ mxc: string; row: LocalMediaRow }> {
    const stored = await this.store.put(Readable.from([bytes]));
    const now = this.deps.now();
    const row: LocalMediaRow = {
      media_id: newMediaId(),
      user_id: SERVER_OWNER,
      content_type: contentType,
      upload_name: null,
      size: stored.size,
      sha256: stored.sha256,
      created_ts: now,
      uploaded_ts: now,
      unused_expires_ts: null,
      last_access_ts: now,
    };
    await this.content.commit(stored.sha256, (trx) => insertMedia(trx, row));
    this.thumbnails.pregenerate(row);
    return { mxc: mxcUri(this.deps.serverName, row.media_id), row };
  }
}
