/**
 * Thumbnails with sharp (libvips). An image's standard sizes are made in the background right
 * after its upload; other sizes on first request. Each is stored in the MediaStore and recorded in
 * `media_thumbnails` under the box that was asked for, so it is made once. EXIF orientation is
 * applied, and the output carries no metadata (sharp writes none unless asked).
 *
 * sharp is loaded on first use: a server that never thumbnails does not pay for libvips.
 */
import { Readable } from 'node:stream';
import { buffer as readAll } from 'node:stream/consumers';
import type { Logger } from 'pino';
import type { Sharp, SharpOptions } from 'sharp';
import { boundedCache } from '../bounded-cache.js';
import type { Db } from '../db/schema.js';
import type { ContentLock } from './content-lock.js';
import { essence } from './content-headers.js';
import { MediaError, mediaNotFound } from './errors.js';
import type { MediaStore } from './media-store.js';
import type { LocalMediaRow, MediaThumbnailRow } from './tables.js';
import { insertThumbnail, selectThumbnails } from './thumbnails-table.js';
import { STANDARD_THUMBNAILS, chooseThumbnail, outputSize, type ThumbnailSpec } from './thumbnail-sizes.js';

type SharpFactory = (input?: Buffer, options?: SharpOptions) => Sharp;

/** Types libvips decodes safely and the spec lets us serve inline. SVG is never rasterised. */
const THUMBNAILABLE = new Set(['image/jpeg', 'image/png', 'image/gif', 'image/webp']);
/** Images larger than this (decoded pixels) are not thumbnailed: 413 M_TOO_LARGE. */
const MAX_INPUT_PIXELS = 100_000_000;

export interface ImageInfo {
  /** Upright (EXIF-oriented) dimensions. */
  width: number;
  height: number;
  animated: boolean;
}

/** What to send for a thumbnail request: stored bytes and their type. */
export interface ThumbnailAnswer {
  sha256: string;
  size: number;
  contentType: string;
}

let sharpModule: Promise<SharpFactory> | undefined;
function loadSharp(): Promise<SharpFactory> {
  sharpModule ??= import('sharp').then((m) => {
    const s = m.default;
    // One libvips worker and no operation cache: a small box shares its cores with everything else.
    s.concurrency(1);
    s.cache(false);
    return s as unknown as SharpFactory;
  });
  return sharpModule;
}

export function isThumbnailable(contentType: string | null): boolean {
  return contentType !== null && THUMBNAILABLE.has(essence(contentType));
}

export class Thumbnailer {
  private readonly info = boundedCache<string, ImageInfo>(1000);
  private readonly inFlight = new Map<string, Promise<MediaThumbnailRow>>();
  private readonly pregenerating = new Map<string, Promise<void>>();

  constructor(
    private readonly db: Db,
    private readonly store: MediaStore,
    private readonly content: ContentLock,
    private readonly logger: Logger,
    private readonly now: () => number,
  ) {}

  /** Starts making the standard sizes of a new image; `whenReady` resolves when they are done. */
  pregenerate(media: LocalMediaRow): void {
    if (!isThumbnailable(media.content_type)) return;
    const work = (async () => {
      const original = await this.imageInfo(media);
      for (const spec of STANDARD_THUMBNAILS) {
        if (chooseThumbnail(spec, original, []).kind === 'original') continue;
        await this.ensure(media, spec, false);
      }
    })()
      .catch((err) => {
        // An upload that only claims to be an image is the uploader's business; anything else is ours.
        if (err instanceof MediaError) this.logger.debug({ err, media_id: media.media_id }, 'no thumbnails for this upload');
        else this.logger.warn({ err, media_id: media.media_id }, 'thumbnail pre-generation failed');
      })
      .finally(() => this.pregenerating.delete(media.media_id));
    this.pregenerating.set(media.media_id, work);
  }

  /** Resolves once the background thumbnails of `mediaId` (if any are being made) are stored. */
  async whenReady(mediaId: string): Promise<void> {
    await this.pregenerating.get(mediaId);
  }

  /** The thumbnail to serve for `want` (animated only when asked and the image is), or 'original'. */
  async thumbnail(media: LocalMediaRow, want: ThumbnailSpec, animated: boolean): Promise<ThumbnailAnswer | 'original'> {
    if (!isThumbnailable(media.content_type)) {
      throw new MediaError('cannot_thumbnail', `Cannot make thumbnails of ${media.content_type ?? 'unknown content'}`);
    }
    await this.whenReady(media.media_id);
    const original = await this.imageInfo(media);
    const wantAnimated = animated && original.animated;
    const existing = (await selectThumbnails(this.db, media.media_id)).filter((t) => (t.animated === 1) === wantAnimated);
    const available = [...existing.map((t) => ({ width: t.width, height: t.height, method: t.method as ThumbnailSpec['method'] })), ...STANDARD_THUMBNAILS];
    const choice = chooseThumbnail(want, original, available);
    let spec: ThumbnailSpec;
    if (choice.kind === 'original') {
      // The original is small enough, unless it moves and the client did not ask for motion.
      if (!original.animated || wantAnimated) return 'original';
      spec = { width: original.width, height: original.height, method: 'scale' };
    } else {
      spec = choice.spec;
    }
    const row = await this.ensure(media, spec, wantAnimated);
    return { sha256: row.sha256, size: row.size, contentType: row.content_type };
  }

  /** The stored thumbnail of `spec`, made now if it does not exist yet (once, however many ask). */
  private async ensure(media: LocalMediaRow, spec: ThumbnailSpec, animated: boolean): Promise<MediaThumbnailRow> {
    const key = `${media.media_id}/${spec.width}x${spec.height}/${spec.method}/${animated ? 1 : 0}`;
    const running = this.inFlight.get(key);
    if (running) return running;
    const work = (async () => {
      const found = (await selectThumbnails(this.db, media.media_id)).find(
        (t) => t.width === spec.width && t.height === spec.height && t.method === spec.method && t.animated === (animated ? 1 : 0),
      );
      if (found) return found;
      const made = await this.render(media, spec, animated);
      const stored = await this.store.put(Readable.from([made.data]));
      const row: MediaThumbnailRow = {
        media_id: media.media_id,
        width: spec.width,
        height: spec.height,
        method: spec.method,
        animated: animated ? 1 : 0,
        content_type: made.contentType,
        sha256: stored.sha256,
        size: stored.size,
        created_ts: this.now(),
      };
      await this.content.commit(stored.sha256, (trx) => insertThumbnail(trx, row));
      return row;
    })().finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, work);
    return work;
  }

  private async originalBytes(media: LocalMediaRow): Promise<Buffer> {
    const stream = media.sha256 ? await this.store.open(media.sha256) : undefined;
    if (!stream) throw mediaNotFound();
    return readAll(stream);
  }

  async imageInfo(media: LocalMediaRow): Promise<ImageInfo> {
    const cached = this.info.get(media.media_id);
    if (cached) return cached;
    const sharp = await loadSharp();
    const meta = await sharp(await this.originalBytes(media), { limitInputPixels: MAX_INPUT_PIXELS })
      .metadata()
      .catch(() => {
        throw new MediaError('cannot_thumbnail', 'The image could not be read');
      });
    if (!meta.width || !meta.height) throw new MediaError('cannot_thumbnail', 'The image has no dimensions');
    if (meta.width * meta.height * (meta.pages ?? 1) > MAX_INPUT_PIXELS) throw new MediaError('too_large', 'The image is too large to thumbnail');
    const info: ImageInfo = {
      width: meta.autoOrient?.width ?? meta.width,
      height: meta.autoOrient?.height ?? meta.height,
      animated: (meta.pages ?? 1) > 1,
    };
    this.info.set(media.media_id, info);
    return info;
  }

  private async render(media: LocalMediaRow, spec: ThumbnailSpec, animated: boolean): Promise<{ data: Buffer; contentType: string }> {
    const sharp = await loadSharp();
    const original = await this.imageInfo(media);
    const size = outputSize(spec, original);
    let img = sharp(await this.originalBytes(media), { animated, limitInputPixels: MAX_INPUT_PIXELS })
      .rotate()
      .resize({ width: size.width, height: size.height, fit: spec.method === 'crop' ? 'cover' : 'inside', withoutEnlargement: true });
    const type = essence(media.content_type ?? '');
    let contentType: string;
    // The spec prefers WebP for animation; JPEG stays JPEG; anything else becomes PNG.
    if (animated) {
      img = img.webp({ quality: 80 });
      contentType = 'image/webp';
    } else if (type === 'image/jpeg') {
      img = img.jpeg({ quality: 80 });
      contentType = 'image/jpeg';
    } else {
      img = img.png();
      contentType = 'image/png';
    }
    try {
      return { data: await img.toBuffer(), contentType };
    } catch (err) {
      this.logger.info({ err, media_id: media.media_id }, 'thumbnailing failed');
      throw new MediaError('cannot_thumbnail', 'The image could not be thumbnailed');
    }
  }

  /** Waits for every thumbnail being made (at shutdown, before the database closes). */
  async drain(): Promise<void> {
    await Promise.all([...this.pregenerating.values(), ...[...this.inFlight.values()].map((p) => p.catch(() => {}))]);
  }

  forget(mediaId: string): void {
    this.info.delete(mediaId);
  }
}
