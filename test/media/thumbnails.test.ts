/**
 * Thumbnails (content_repo.md, "Thumbnails"): crop fills the box, scale keeps the aspect ratio,
 * a request is answered with the nearest size at least as large, never upscaled (the original
 * when it is small enough), EXIF orientation applied and metadata stripped, animation only when
 * asked, and SVG never rasterised.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { MEDIA_CSP, SVG_BYTES, makeAnimatedGif, makeJpeg, makePng, rawRequest, upload } from './helpers.js';

describe('media thumbnails', { timeout: 90_000 }, () => {
  let server: TestServer;
  let alice: TestUser;
  let photo: { mediaId: string; bytes: Buffer };

  before(async () => {
    server = await startTestServer();
    alice = await server.registerUser();
    const bytes = await makeJpeg(1000, 500);
    photo = { mediaId: (await upload(server, alice.accessToken, bytes, 'image/jpeg', 'wide.jpg')).mediaId, bytes };
  });
  after(async () => {
    await server?.stop();
  });

  async function thumb(mediaId: string, query: string) {
    return rawRequest(server, 'GET', `/_matrix/client/v1/media/thumbnail/${server.serverName}/${mediaId}?${query}`, { token: alice.accessToken });
  }

  async function dims(bytes: Buffer) {
    const m = await sharp(bytes).metadata();
    return { width: m.width, height: m.height, format: m.format, pages: m.pages ?? 1, exif: m.exif, orientation: m.orientation };
  }

  it('the spec\'s five sizes are made for an image after upload and recorded', async () => {
    await server.hs.ctx.services.media.thumbnails.whenReady(photo.mediaId);
    const rows = await server.hs.ctx.db
      .selectFrom('media_thumbnails')
      .select(['width', 'height', 'method', 'animated'])
      .where('media_id', '=', photo.mediaId)
      .orderBy('width')
      .execute();
    assert.deepEqual(
      rows.map((r) => `${r.width}x${r.height} ${r.method}`),
      ['32x32 crop', '96x96 crop', '320x240 scale', '640x480 scale', '800x600 scale'],
    );
  });

  it('crop fills the box exactly; scale keeps the aspect ratio inside it', async () => {
    const crop = await thumb(photo.mediaId, 'width=96&height=96&method=crop');
    assert.equal(crop.status, 200);
    assert.equal(crop.headers.get('content-type'), 'image/jpeg');
    assert.equal(crop.headers.get('content-disposition'), 'inline; filename="thumbnail.jpeg"');
    assert.equal(crop.headers.get('content-security-policy'), MEDIA_CSP);
    assert.deepEqual((await dims(crop.bytes)).width, 96);
    assert.deepEqual((await dims(crop.bytes)).height, 96);

    const scale = await thumb(photo.mediaId, 'width=320&height=240&method=scale');
    const s = await dims(scale.bytes);
    assert.deepEqual([s.width, s.height], [320, 160], '1000x500 scaled into 320x240 is 320x160');
  });

  it('a request between sizes gets the nearest larger one; method defaults to scale', async () => {
    const small = await dims((await thumb(photo.mediaId, 'width=50&height=50&method=crop')).bytes);
    assert.deepEqual([small.width, small.height], [96, 96], '50x50 crop is answered by 96x96 crop');
    const mid = await dims((await thumb(photo.mediaId, 'width=400&height=300')).bytes);
    assert.deepEqual([mid.width, mid.height], [640, 320], '400x300 scale is answered by 640x480 scale');
  });

  it('a size larger than every standard one is made on demand, cached, and never upscaled', async () => {
    const res = await thumb(photo.mediaId, 'width=900&height=900&method=scale');
    const d = await dims(res.bytes);
    assert.deepEqual([d.width, d.height], [900, 450]);
    const rows = await server.hs.ctx.db.selectFrom('media_thumbnails').select('width').where('media_id', '=', photo.mediaId).where('width', '=', 900).execute();
    assert.equal(rows.length, 1, 'the on-demand size is cached');
    // Asking for more than the original answers with the original bytes.
    const big = await thumb(photo.mediaId, 'width=2000&height=2000&method=scale');
    assert.equal(big.status, 200);
    assert.ok(big.bytes.equals(photo.bytes), 'the original, not an upscaled copy');
    assert.match(big.headers.get('content-disposition') ?? '', /^inline/);
  });

  it('an image smaller than the request is served as it is', async () => {
    const png = await makePng(20, 10);
    const { mediaId } = await upload(server, alice.accessToken, png, 'image/png');
    const res = await thumb(mediaId, 'width=32&height=32&method=crop');
    assert.equal(res.status, 200);
    assert.ok(res.bytes.equals(png));
    assert.equal(res.headers.get('content-type'), 'image/png');
  });

  it('an EXIF-rotated JPEG comes out upright, and its metadata is stripped', async () => {
    // Stored 1200x600 with orientation 6 (rotate 90° clockwise to view): upright it is 600x1200.
    const rotated = await makeJpeg(1200, 600, { orientation: 6, exif: true });
    const before = await dims(rotated);
    assert.equal(before.orientation, 6);
    assert.ok(before.exif, 'the fixture carries EXIF');
    const { mediaId } = await upload(server, alice.accessToken, rotated, 'image/jpeg');
    const res = await thumb(mediaId, 'width=320&height=240&method=scale');
    const d = await dims(res.bytes);
    assert.deepEqual([d.width, d.height], [120, 240], 'portrait, as the camera meant it');
    assert.equal(d.orientation, undefined, 'no orientation tag left');
    assert.equal(d.exif, undefined, 'no EXIF left');
    // The pixels moved too: the stored image's left half (red) is the top half once upright, its
    // right half (blue) the bottom; unrotated, the top-right corner would be blue.
    const { data, info } = await sharp(res.bytes).raw().toBuffer({ resolveWithObject: true });
    const px = (x: number, y: number) => [...data.subarray((y * info.width + x) * info.channels, (y * info.width + x) * info.channels + 3)];
    const topRight = px(info.width - 2, 2);
    const bottomLeft = px(2, info.height - 2);
    assert.ok(topRight[0] > 150 && topRight[2] < 100, `top-right pixel is red once upright: ${topRight}`);
    assert.ok(bottomLeft[2] > 150 && bottomLeft[0] < 100, `bottom-left pixel is blue once upright: ${bottomLeft}`);
  });

  it('an animated GIF gets an animated WebP when animated=true, a still image otherwise', async () => {
    const gif = await makeAnimatedGif(400, 300, 3);
    const { mediaId } = await upload(server, alice.accessToken, gif, 'image/gif');
    const animated = await thumb(mediaId, 'width=96&height=96&method=crop&animated=true');
    assert.equal(animated.status, 200);
    assert.equal(animated.headers.get('content-type'), 'image/webp');
    const a = await dims(animated.bytes);
    assert.equal(a.format, 'webp');
    assert.equal(a.pages, 3, 'all three frames');
    assert.deepEqual([a.width, a.height], [96, 96]);

    for (const q of ['width=96&height=96&method=crop', 'width=96&height=96&method=crop&animated=false']) {
      const still = await thumb(mediaId, q);
      assert.equal(still.headers.get('content-type'), 'image/png');
      const s = await dims(still.bytes);
      assert.equal(s.pages, 1, `a still image for ${q}`);
    }
    // Even when the original is small enough to serve as it is, animated=false gets a still image.
    const stillWhole = await thumb(mediaId, 'width=800&height=800&animated=false');
    assert.equal((await dims(stillWhole.bytes)).pages, 1);
    assert.ok(!stillWhole.bytes.equals(gif));
  });

  it('animated=true on a still image behaves as animated=false', async () => {
    const res = await thumb(photo.mediaId, 'width=96&height=96&method=crop&animated=true');
    assert.equal(res.headers.get('content-type'), 'image/jpeg');
  });

  it('SVG and non-images are never thumbnailed: 400', async () => {
    for (const [bytes, type] of [[SVG_BYTES, 'image/svg+xml'], [Buffer.from('%PDF-1.4'), 'application/pdf']] as const) {
      const { mediaId } = await upload(server, alice.accessToken, bytes, type);
      const res = await thumb(mediaId, 'width=32&height=32');
      assert.equal(res.status, 400, type);
      assert.equal(res.json.errcode, 'M_UNKNOWN');
    }
  });

  it('bad dimensions are 400 M_INVALID_PARAM; corrupt image data is 400, not 500', async () => {
    for (const q of ['width=0&height=32', 'width=-5&height=32', 'width=abc&height=32', 'height=32', 'width=32&height=32&method=stretch']) {
      const res = await thumb(photo.mediaId, q);
      assert.equal(res.status, 400, q);
      assert.equal(res.json.errcode, 'M_INVALID_PARAM', q);
    }
    const { mediaId } = await upload(server, alice.accessToken, Buffer.from('not really a png'), 'image/png');
    const res = await thumb(mediaId, 'width=32&height=32');
    assert.equal(res.status, 400);
  });

  it('the legacy thumbnail endpoint serves the same thumbnails without a token', async () => {
    const res = await rawRequest(server, 'GET', `/_matrix/media/v3/thumbnail/${server.serverName}/${photo.mediaId}?width=32&height=32&method=crop`);
    assert.equal(res.status, 200);
    const d = await dims(res.bytes);
    assert.deepEqual([d.width, d.height], [32, 32]);
  });
});
