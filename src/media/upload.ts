/**
 * Receiving an upload: the body streams through a size check into the MediaStore (never
 * held whole in memory), and only once the bytes are durable is the row committed. Over
 * `max_upload_bytes` is `too_large`; over the user's remaining quota is `quota_exceeded`.
 */
import { Transform, type Readable } from 'node:stream';
import type { Db } from '../db/schema.js';
import { MediaError } from './errors.js';
import type { ContentLock } from './content-lock.js';
import { completePendingMedia, insertMedia, selectUserUsage } from './local-media-table.js';
import type { MediaStore } from './media-store.js';
import type { LocalMediaRow } from './tables.js';

export interface UploadLimits {
  maxUploadBytes: number;
  userQuotaBytes: number;
}

export interface UploadInput {
  userId: string;
  contentType: string | undefined;
  fileName: string | undefined;
  /** The request body. It is read, never destroyed: a refused upload is drained so the client gets its answer. */
  body: Readable;
  /** The Content-Length the client declared, when it did. */
  declaredLength: number | undefined;
}

const MEDIA_TYPE = /^[A-Za-z0-9!#$&^_.+-]+\/[A-Za-z0-9!#$&^_.+-]+(\s*;\s*[A-Za-z0-9!#$&^_.+-]+=("[^"\r\n]*"|[A-Za-z0-9!#$&^_.+-]+))*$/;

/** The Content-Type to store: what the client sent when it is a well-formed media type. */
export function normaliseContentType(value: string | undefined): string {
  const v = value?.trim();
  return v && v.length <= 255 && MEDIA_TYPE.test(v) ? v : 'application/octet-stream';
}

/** A file name to keep: without control characters or path separators. */
export function normaliseFileName(value: string | undefined): string | null {
  if (!value) return null;
  // eslint-disable-next-line no-control-regex
  const v = value.replace(/[\u0000-\u001f\u007f/\\]/g, '_').slice(0, 255);
  return v.length > 0 ? v : null;
}

/** Passes bytes through until `limit`; past it fails with the error `over()` makes. */
function sizeLimit(limit: number, over: () => MediaError): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      seen += chunk.length;
      if (seen > limit) done(over());
      else done(null, chunk);
    },
  });
}

/** The body piped through the limit; the source is drained (not destroyed) if the limit trips. */
function limitedBody(body: Readable, limit: number, over: () => MediaError): Readable {
  const limited = sizeLimit(limit, over);
  limited.once('error', () => {
    body.unpipe(limited);
    body.resume();
  });
  body.once('close', () => {
    // The client went away mid-body: nothing is stored, and nobody is left to answer.
    if (!body.readableEnded && !limited.destroyed) limited.destroy(new MediaError('bad_request', 'The upload was interrupted'));
  });
  body.once('error', () => limited.destroy(new MediaError('bad_request', 'The upload was interrupted')));
  return body.pipe(limited);
}

export class Uploader {
  constructor(
    private readonly db: Db,
    private readonly store: MediaStore,
    private readonly content: ContentLock,
    private readonly limits: UploadLimits,
    private readonly now: () => number,
  ) {}

  private quotaError(): MediaError {
    return new MediaError('quota_exceeded', `This upload would exceed your storage quota of ${this.limits.userQuotaBytes} bytes`);
  }

  private tooLarge(): MediaError {
    return new MediaError('too_large', `Uploads are limited to ${this.limits.maxUploadBytes} bytes`);
  }

  /**
   * Stores the body. With `pendingId`, fills that `create`d row (the caller checked it is the
   * user's and still pending); otherwise inserts a row under `newId`.
   */
  async receive(input: UploadInput, target: { newId: string } | { pendingId: string }): Promise<LocalMediaRow> {
    const { maxUploadBytes, userQuotaBytes } = this.limits;
    const remaining = userQuotaBytes - (await selectUserUsage(this.db, input.userId));
    const declared = input.declaredLength;
    if (declared !== undefined && declared > maxUploadBytes) throw this.tooLarge();
    if (declared !== undefined && declared > remaining) throw this.quotaError();
    const limit = Math.min(maxUploadBytes, Math.max(0, remaining));
    const over = () => (limit === maxUploadBytes ? this.tooLarge() : this.quotaError());
    const stored = await this.store.put(limitedBody(input.body, limit, over));

    const now = this.now();
    const content = {
      content_type: normaliseContentType(input.contentType),
      upload_name: normaliseFileName(input.fileName),
      size: stored.size,
      sha256: stored.sha256,
      uploaded_ts: now,
      last_access_ts: now,
    };
    try {
      return await this.content.commit(stored.sha256, async (trx) => {
        // Concurrent uploads by the same user are checked again against what has committed since.
        if ((await selectUserUsage(trx, input.userId)) + stored.size > userQuotaBytes) throw this.quotaError();
        if ('newId' in target) {
          const row: LocalMediaRow = { media_id: target.newId, user_id: input.userId, created_ts: now, unused_expires_ts: null, ...content };
          await insertMedia(trx, row);
          return row;
        }
        if (!(await completePendingMedia(trx, target.pendingId, content))) {
          throw new MediaError('cannot_overwrite', 'Media already uploaded');
        }
        const row = await trx.selectFrom('local_media').selectAll().where('media_id', '=', target.pendingId).executeTakeFirstOrThrow();
        return row;
      });
    } catch (e) {
      await this.content.dropIfUnreferenced(stored.sha256);
      throw e;
    }
  }
}
