/**
 * Media of other servers (server-server "Content Repository"): fetched on first request over
 * `/_matrix/federation/v1/media/{download,thumbnail}` (multipart, bytes inline or behind a
 * `Location`), or the legacy `/_matrix/media/v3` endpoints with `allow_remote=false` when the
 * origin answers 404 M_UNRECOGNIZED; streamed into the MediaStore, then recorded in
 * `remote_media` (or `remote_media_thumbnails`), so a row always has its bytes. Concurrent
 * requests for one file on this node share one fetch.
 */
import { Transform, type Readable } from 'node:stream';
import { parse as parseDisposition } from 'content-disposition';
import type { Logger } from 'pino';
import type { Db, Tx } from '../db/schema.js';
import { FederationRequestError, type FederationClient, type RawAnswer as RemoteAnswer } from '../federation/client.js';
import { MediaError, mediaNotFound } from './errors.js';
import type { ContentLock } from './content-lock.js';
import type { MediaStore } from './media-store.js';
import { MultipartError, boundaryOf, decodeMultipart } from './multipart.js';
import { insertRemoteThumbnail, selectRemoteMedia, selectRemoteThumbnail, touchRemoteMedia, upsertRemoteMedia } from './remote-media-table.js';
import type { RemoteMediaRow, RemoteThumbnailRow } from './tables.js';
import type { ThumbnailSpec } from './thumbnail-sizes.js';
import { normaliseContentType, normaliseFileName } from './upload.js';

/** How stale `last_access_ts` may get before a read records the access (saves a write per download). */
const TOUCH_EVERY_MS = 60_000;
/** Largest error body read from a remote server. */
const MAX_ERROR_BYTES = 64 * 1024;
const MAX_THUMBNAIL_BYTES = 20 * 1024 * 1024;

interface Fetched {
  contentType: string;
  uploadName: string | null;
  body: Readable;
}

export class RemoteMedia {
  private readonly inFlight = new Map<string, Promise<unknown>>();

  constructor(
    private readonly db: Db,
    private readonly store: MediaStore,
    private readonly content: ContentLock,
    /** Undefined when federation is disabled: remote media is then not found. */
    private readonly client: Pick<FederationClient, 'getRaw' | 'getLocation'> | undefined,
    private readonly logger: Logger,
    private readonly now: () => number,
    private readonly maxBytes: number,
  ) {}

  /** The cached copy of `serverName/mediaId`, fetched now if there is none. */
  async get(serverName: string, mediaId: string, timeoutMs: number): Promise<RemoteMediaRow> {
    const cached = await selectRemoteMedia(this.db, serverName, mediaId);
    if (cached && (await this.store.has(cached.sha256))) {
      if (this.now() - cached.last_access_ts > TOUCH_EVERY_MS) await touchRemoteMedia(this.db, serverName, mediaId, this.now());
      return cached;
    }
    return this.once(`d/${serverName}/${mediaId}`, () => this.download(serverName, mediaId, timeoutMs));
  }

  /** The origin server's thumbnail for the box `want`, cached by that box. */
  async thumbnail(serverName: string, mediaId: string, want: ThumbnailSpec, animated: boolean, timeoutMs: number): Promise<RemoteThumbnailRow> {
    const key = { server_name: serverName, media_id: mediaId, width: want.width, height: want.height, method: want.method, animated: animated ? 1 : 0 };
    const cached = await selectRemoteThumbnail(this.db, key);
    if (cached && (await this.store.has(cached.sha256))) return cached;
    return this.once(`t/${serverName}/${mediaId}/${want.width}x${want.height}/${want.method}/${key.animated}`, async () => {
      const q = `width=${want.width}&height=${want.height}&method=${want.method}&animated=${animated}&timeout_ms=${timeoutMs}`;
      const fetched = await this.fetch(
        serverName,
        `/_matrix/federation/v1/media/thumbnail/${encodeURIComponent(mediaId)}?${q}`,
        `/_matrix/media/v3/thumbnail/${encodeURIComponent(serverName)}/${encodeURIComponent(mediaId)}?${q}&allow_remote=false`,
        timeoutMs,
      );
      const stored = await this.storeBody(serverName, fetched.body, Math.min(this.maxBytes, MAX_THUMBNAIL_BYTES));
      const row: RemoteThumbnailRow = { ...key, content_type: fetched.contentType, sha256: stored.sha256, size: stored.size, created_ts: this.now() };
      await this.record(stored.sha256, (trx) => insertRemoteThumbnail(trx, row));
      return row;
    });
  }

  private async once<T>(key: string, work: () => Promise<T>): Promise<T> {
    const running = this.inFlight.get(key) as Promise<T> | undefined;
    if (running) return running;
    const p = work().finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, p);
    return p;
  }

  private async download(serverName: string, mediaId: string, timeoutMs: number): Promise<RemoteMediaRow> {
    const id = encodeURIComponent(mediaId);
    const fetched = await this.fetch(
      serverName,
      `/_matrix/federation/v1/media/download/${id}?timeout_ms=${timeoutMs}`,
      `/_matrix/media/v3/download/${encodeURIComponent(serverName)}/${id}?allow_remote=false&timeout_ms=${timeoutMs}`,
      timeoutMs,
    );
    const stored = await this.storeBody(serverName, fetched.body, this.maxBytes);
    const now = this.now();
    const row: RemoteMediaRow = {
      server_name: serverName,
      media_id: mediaId,
      content_type: fetched.contentType,
      upload_name: fetched.uploadName,
      size: stored.size,
      sha256: stored.sha256,
      fetched_ts: now,
      last_access_ts: now,
    };
    await this.record(stored.sha256, (trx) => upsertRemoteMedia(trx, row));
    return row;
  }

  /** Streams the fetched bytes into the store; a connection lost midway is the origin's failure (502), not ours. */
  private async storeBody(serverName: string, body: Readable, limit: number) {
    try {
      return await this.store.put(limited(body, limit));
    } catch (e) {
      if (e instanceof MediaError) throw e;
      this.logger.info({ server: serverName, err: (e as Error).message }, 'remote media transfer failed');
      throw new MediaError('remote_failed', `The transfer from ${serverName} failed`);
    }
  }

  /** Commits the row of stored bytes; if that fails, bytes nothing refers to are removed. */
  private async record(sha256: string, write: (trx: Tx) => Promise<void>): Promise<void> {
    try {
      await this.content.commit(sha256, write);
    } catch (e) {
      await this.content.dropIfUnreferenced(sha256);
      throw e;
    }
  }

  /** The media part of the federation answer, or of the legacy one when the origin does not know the new endpoint. */
  private async fetch(serverName: string, path: string, legacyPath: string, timeoutMs: number): Promise<Fetched> {
    if (!this.client) throw mediaNotFound('Media of other servers is not available: federation is disabled');
    const waitMs = timeoutMs + 10_000;
    try {
      const answer = await this.client.getRaw(serverName, path, waitMs);
      if (answer.status === 200) return await this.fromMultipart(serverName, answer, waitMs);
      const error = await errorOf(answer);
      if (!isUnrecognized(answer.status, error.errcode)) throw remoteError(serverName, answer.status, error);
      this.logger.debug({ server: serverName }, 'federation media endpoint unknown; using the legacy one');
      const legacy = await this.client.getRaw(serverName, legacyPath, waitMs);
      if (legacy.status !== 200) throw remoteError(serverName, legacy.status, await errorOf(legacy));
      return fromSinglePart(legacy);
    } catch (e) {
      if (e instanceof MediaError) throw e;
      if (e instanceof FederationRequestError || e instanceof MultipartError) {
        this.logger.info({ server: serverName, err: e.message }, 'remote media fetch failed');
        throw new MediaError('remote_failed', `Could not fetch the media from ${serverName}: ${e.message}`);
      }
      throw e;
    }
  }

  private async fromMultipart(serverName: string, answer: RemoteAnswer, timeoutMs: number): Promise<Fetched> {
    const boundary = boundaryOf(headerOf(answer.headers['content-type']));
    if (!boundary) {
      await answer.body.dump().catch(() => {});
      throw new MultipartError('The answer is not multipart/mixed with a boundary');
    }
    const part = await decodeMultipart(answer.body, boundary);
    const location = part.headers.location;
    if (location === undefined) return fromHeaders(part.headers['content-type'], part.headers['content-disposition'], part.body);
    // The bytes are elsewhere; that URL's own headers describe them.
    part.body.resume();
    const there = await this.client!.getLocation(serverName, location, timeoutMs);
    if (there.status !== 200) {
      await there.body.dump().catch(() => {});
      throw new MediaError('remote_failed', `${serverName}'s media location answered HTTP ${there.status}`);
    }
    return fromSinglePart(there);
  }
}

function headerOf(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function fromSinglePart(answer: RemoteAnswer): Fetched {
  return fromHeaders(headerOf(answer.headers['content-type']), headerOf(answer.headers['content-disposition']), answer.body);
}

function fromHeaders(contentType: string | undefined, disposition: string | undefined, body: Readable): Fetched {
  let uploadName: string | null = null;
  if (disposition) {
    try {
      uploadName = normaliseFileName(parseDisposition(disposition).parameters.filename);
    } catch {
      // A malformed disposition only loses the file name.
    }
  }
  return { contentType: normaliseContentType(contentType), uploadName, body };
}

async function errorOf(answer: RemoteAnswer): Promise<{ errcode?: string; error?: string }> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const c of answer.body) {
      size += (c as Buffer).length;
      if (size > MAX_ERROR_BYTES) {
        answer.body.destroy();
        break;
      }
      chunks.push(c as Buffer);
    }
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { errcode?: unknown; error?: unknown };
    return { errcode: typeof body.errcode === 'string' ? body.errcode : undefined, error: typeof body.error === 'string' ? body.error : undefined };
  } catch {
    return {};
  }
}

/** Whether the origin does not know the endpoint (spec: then fall back to the legacy one). */
function isUnrecognized(status: number, errcode: string | undefined): boolean {
  return errcode === 'M_UNRECOGNIZED' || status === 405 || status === 501;
}

function remoteError(serverName: string, status: number, error: { errcode?: string; error?: string }): MediaError {
  const why = error.error ?? `HTTP ${status}`;
  if (status === 404) return mediaNotFound(`${serverName} does not have this media`);
  if (error.errcode === 'M_NOT_YET_UPLOADED') return new MediaError('not_yet_uploaded', 'Content has not yet been uploaded');
  if (error.errcode === 'M_TOO_LARGE') return new MediaError('remote_failed', `${serverName}: ${why}`, 'M_TOO_LARGE');
  if (status === 400) return new MediaError('cannot_thumbnail', `${serverName}: ${why}`);
  return new MediaError('remote_failed', `${serverName} answered: ${why}`);
}

/** Passes at most `limit` bytes; more is a 502 M_TOO_LARGE (the spec's answer for remote content too large). */
function limited(body: Readable, limit: number): Readable {
  let seen = 0;
  const gate = new Transform({
    transform(chunk: Buffer, _enc, done) {
      seen += chunk.length;
      if (seen > limit) done(new MediaError('remote_failed', 'The remote media is larger than this server accepts', 'M_TOO_LARGE'));
      else done(null, chunk);
    },
  });
  body.once('error', (e) => gate.destroy(e instanceof MultipartError ? new MediaError('remote_failed', e.message) : e));
  gate.once('error', () => body.destroy());
  return body.pipe(gate);
}
