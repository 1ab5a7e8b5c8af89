/**
 * `preview_url`: fetch a page through the GuardedFetcher, read its OpenGraph tags and, when the
 * page names one, its oEmbed JSON (fetched through the same guard; what it says wins over the
 * page's tags), store the `og:image` in the media repository (served as an mxc URI, with its
 * size and dimensions), and cache the answer for an hour. An image URL previews as the image
 * itself.
 */
import type { Logger } from 'pino';
import type { Db } from '../db/schema.js';
import { OutboundRefused } from '../http/outbound-guard.js';
import { essence } from './content-headers.js';
import { MediaError } from './errors.js';
import { FetchFailed, type GuardedFetcher } from './guarded-fetch.js';
import { openGraphFromOEmbed } from './oembed.js';
import { decodeHtml, parseHead } from './opengraph.js';
import { isThumbnailable } from './thumbnailer.js';
import { deleteExpiredPreviews, selectPreview, upsertPreview } from './url-previews-table.js';
import type { LocalMediaRow } from './tables.js';

const CACHE_MS = 60 * 60 * 1000;
const MAX_PAGE_BYTES = 10 * 1024 * 1024;
const MAX_OEMBED_BYTES = 1024 * 1024;
const TIMEOUT_MS = 10_000;

export interface PreviewImageSink {
  /** Stores fetched image bytes as server-owned media; answers its mxc URI and row. */
  storeImage(bytes: Buffer, contentType: string): Promise<{ mxc: string; row: LocalMediaRow }>;
  /** Upright dimensions of a stored image, when it can be read. */
  dimensions(row: LocalMediaRow): Promise<{ width: number; height: number } | undefined>;
}

export class UrlPreviews {
  private readonly inFlight = new Map<string, Promise<Record<string, unknown>>>();

  constructor(
    private readonly db: Db,
    private readonly fetcher: GuardedFetcher,
    private readonly images: PreviewImageSink,
    private readonly logger: Logger,
    private readonly now: () => number,
    private readonly maxImageBytes: number,
  ) {}

  async preview(url: string): Promise<Record<string, unknown>> {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new MediaError('bad_request', 'url is not a valid URL');
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new MediaError('bad_request', 'Only http and https URLs can be previewed');
    const key = parsed.toString();
    const cached = await selectPreview(this.db, key, this.now());
    if (cached) return cached;
    let work = this.inFlight.get(key);
    if (!work) {
      work = this.build(key).finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, work);
    }
    return work;
  }

  private async build(url: string): Promise<Record<string, unknown>> {
    const page = await this.fetch(url, MAX_PAGE_BYTES);
    if (page.status < 200 || page.status >= 300) throw new MediaError('preview_failed', `The page answered HTTP ${page.status}`);
    const type = essence(page.contentType);
    let og: Record<string, unknown> = {};
    if (type === 'text/html' || type === 'application/xhtml+xml') {
      const head = parseHead(decodeHtml(page.body, page.contentType));
      const tags = overlay(head.og, head.oembedHref ? await this.oembedTags(head.oembedHref, page.url) : {});
      // The page's own image keys describe a URL we do not serve; they are replaced by the stored copy's.
      og = Object.fromEntries(Object.entries(tags).filter(([k]) => !k.startsWith('og:image')));
      const image = tags['og:image'] ?? tags['og:image:url'] ?? tags['og:image:secure_url'];
      if (image) Object.assign(og, await this.imageTags(image, page.url, tags));
    } else if (isThumbnailable(type)) {
      Object.assign(og, await this.describeImage(page.body, type, {}));
    }
    await upsertPreview(this.db, url, og, this.now(), CACHE_MS);
    await deleteExpiredPreviews(this.db, this.now());
    return og;
  }

  /** The `og:image*` keys for the page's image, fetched and stored; none when it cannot be had. */
  private async imageTags(src: string, pageUrl: string, tags: Record<string, string>): Promise<Record<string, unknown>> {
    try {
      const imageUrl = new URL(src, pageUrl).toString();
      const image = await this.fetch(imageUrl, this.maxImageBytes);
      const type = essence(image.contentType);
      if (image.status !== 200 || !isThumbnailable(type)) return {};
      return await this.describeImage(image.body, type, tags);
    } catch (err) {
      // The page still previews without its picture.
      this.logger.debug({ err, src }, 'preview image not fetched');
      return {};
    }
  }

  /** The OpenGraph keys of the page's oEmbed JSON; none when it cannot be had. */
  private async oembedTags(href: string, pageUrl: string): Promise<Record<string, string>> {
    try {
      const res = await this.fetch(new URL(href, pageUrl).toString(), MAX_OEMBED_BYTES, 'application/json');
      if (res.status !== 200) return {};
      const tags = openGraphFromOEmbed(JSON.parse(res.body.toString('utf8')));
      // A relative image URL is relative to the oEmbed document, not to the page.
      if (tags['og:image']) tags['og:image'] = new URL(tags['og:image'], res.url).toString();
      return tags;
    } catch (err) {
      // The page still previews from its own tags.
      this.logger.debug({ err, href }, 'oEmbed not fetched');
      return {};
    }
  }

  private async describeImage(bytes: Buffer, type: string, tags: Record<string, string>): Promise<Record<string, unknown>> {
    const { mxc, row } = await this.images.storeImage(bytes, type);
    const out: Record<string, unknown> = { 'og:image': mxc, 'og:image:type': type, 'matrix:image:size': bytes.length };
    const dims = await this.images.dimensions(row).catch(() => undefined);
    const declaredW = Number(tags['og:image:width']);
    const declaredH = Number(tags['og:image:height']);
    const width = dims?.width ?? (Number.isInteger(declaredW) && declaredW > 0 ? declaredW : undefined);
    const height = dims?.height ?? (Number.isInteger(declaredH) && declaredH > 0 ? declaredH : undefined);
    if (width !== undefined) out['og:image:width'] = width;
    if (height !== undefined) out['og:image:height'] = height;
    return out;
  }

  private async fetch(url: string, maxBytes: number, accept = 'text/html,application/xhtml+xml,image/*;q=0.9,*/*;q=0.5') {
    try {
      return await this.fetcher.get(url, { maxBytes, timeoutMs: TIMEOUT_MS, accept });
    } catch (e) {
      if (e instanceof OutboundRefused) throw new MediaError('forbidden', 'That address may not be previewed');
      if (e instanceof FetchFailed) throw new MediaError('preview_failed', e.message);
      if (e instanceof MediaError) throw e;
      throw new MediaError('preview_failed', `The URL could not be fetched: ${(e as Error).message}`);
    }
  }
}

/** The page's tags overlaid with its oEmbed's; an oEmbed image replaces the page's image with all its keys. */
function overlay(page: Record<string, string>, oembed: Record<string, string>): Record<string, string> {
  const base = oembed['og:image'] ? Object.fromEntries(Object.entries(page).filter(([k]) => !k.startsWith('og:image'))) : page;
  return { ...base, ...oembed };
}
