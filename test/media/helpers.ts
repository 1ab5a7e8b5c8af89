/** Shared by the media tests: images made with sharp, and raw-byte requests over real HTTP. */
import sharp from 'sharp';
import type { TestServer } from '../helpers/server.js';

export interface RawResponse {
  status: number;
  headers: Headers;
  bytes: Buffer;
  /** The body parsed as JSON, when it is JSON. */
  json: any;
}

export async function rawRequest(
  server: TestServer,
  method: string,
  path: string,
  opts: { token?: string; body?: Buffer | string; headers?: Record<string, string> } = {},
): Promise<RawResponse> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  const res = await fetch(server.url + path, { method, headers, body: opts.body });
  const bytes = Buffer.from(await res.arrayBuffer());
  let json: unknown;
  if ((res.headers.get('content-type') ?? '').startsWith('application/json')) {
    try {
      json = JSON.parse(bytes.toString('utf8'));
    } catch {
      json = undefined;
    }
  }
  return { status: res.status, headers: res.headers, bytes, json };
}

/** Uploads through `POST /_matrix/media/v3/upload`; answers the mxc URI's server name and media id. */
export async function upload(
  server: TestServer,
  token: string,
  body: Buffer,
  contentType: string,
  fileName?: string,
): Promise<{ mxc: string; serverName: string; mediaId: string }> {
  const q = fileName === undefined ? '' : `?filename=${encodeURIComponent(fileName)}`;
  const res = await rawRequest(server, 'POST', `/_matrix/media/v3/upload${q}`, { token, body, headers: { 'content-type': contentType } });
  if (res.status !== 200) throw new Error(`upload failed: ${res.status} ${res.bytes.toString()}`);
  const mxc = res.json.content_uri as string;
  const m = /^mxc:\/\/([^/]+)\/([A-Za-z0-9_-]+)$/.exec(mxc);
  if (!m) throw new Error(`not an mxc URI: ${mxc}`);
  return { mxc, serverName: m[1], mediaId: m[2] };
}

/** A photo-like JPEG (a gradient, so it compresses like a picture), optionally with an EXIF orientation. */
export async function makeJpeg(width: number, height: number, opts: { orientation?: number; exif?: boolean } = {}): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      // Left half red, right half blue, a green gradient downwards: orientation is visible in the pixels.
      raw[i] = x < width / 2 ? 220 : 20;
      raw[i + 1] = Math.floor((y / height) * 255);
      raw[i + 2] = x < width / 2 ? 20 : 220;
    }
  }
  let img = sharp(raw, { raw: { width, height, channels: 3 } });
  if (opts.orientation || opts.exif) {
    img = img.withMetadata({ orientation: opts.orientation, exif: opts.exif ? { IFD0: { Copyright: 'Hearth test', Make: 'TestCam' } } : undefined });
  }
  return img.jpeg({ quality: 85 }).toBuffer();
}

export async function makePng(width: number, height: number): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 4, background: { r: 10, g: 200, b: 90, alpha: 0.5 } } }).png().toBuffer();
}

/** An animated GIF of `frames` frames (each a different colour). */
export async function makeAnimatedGif(width: number, height: number, frames = 3): Promise<Buffer> {
  const frame = Buffer.alloc(width * height * 4);
  const all: Buffer[] = [];
  for (let f = 0; f < frames; f++) {
    for (let i = 0; i < width * height; i++) frame.set([f * 80, 255 - f * 80, 100, 255], i * 4);
    all.push(Buffer.from(frame));
  }
  return sharp(Buffer.concat(all), { raw: { width, height: height * frames, channels: 4, pageHeight: height } } as never)
    .gif({ delay: Array(frames).fill(100), loop: 0 })
    .toBuffer();
}

export const PDF_BYTES = Buffer.from(
  '%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n',
);

export const SVG_BYTES = Buffer.from(
  '<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100"><script>alert(1)</script><rect width="100" height="100" fill="red"/></svg>',
);

export const MEDIA_CSP =
  "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; style-src 'unsafe-inline'; media-src 'self'; object-src 'self';";
