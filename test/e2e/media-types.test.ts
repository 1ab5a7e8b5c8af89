/**
 * End to end with matrix-js-sdk over authenticated media (client-server `/_matrix/client/v1/media`):
 * a JPEG, a PNG, an animated GIF, a PDF and an SVG are uploaded with `uploadContent`, downloaded
 * through the URLs the SDK builds and compared byte for byte; the images are thumbnailed (crop,
 * scale, animated when asked); every answer carries the safety headers of content_repo.md
 * ("Serving inline content": the SVG and the PDF are never inline); an upload over the limit is
 * refused with 413 M_TOO_LARGE; and a user of a second Hearth server reads the same media, which
 * that server fetches from the first over federation.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { MatrixClient } from 'matrix-js-sdk';
import sharp from 'sharp';
import { startPair, type Pair } from '../federation/federation-helpers.js';
import { createSdkClient, sdkLogin, stopClients } from '../helpers/matrix-client.js';
import { MEDIA_CSP, PDF_BYTES, SVG_BYTES, makeAnimatedGif, makeJpeg, makePng } from '../media/helpers.js';

const MAX_UPLOAD = 1024 * 1024;

interface Sample {
  name: string;
  type: string;
  bytes: Buffer;
  /** Whether a browser may show it inline (content_repo.md's list). */
  inline: boolean;
  mxc?: string;
}

describe('media of every type through matrix-js-sdk, locally and over federation', { timeout: 120_000 }, () => {
  let pair: Pair;
  let alice: MatrixClient;
  let bob: MatrixClient;
  const samples: Sample[] = [];

  before(async () => {
    pair = await startPair({}, { a: { media: { max_upload_bytes: MAX_UPLOAD } } });
    const aliceUser = await pair.a.registerUser(`alice${process.pid}`);
    const bobUser = await pair.b.registerUser(`bob${process.pid}`);
    alice = await createSdkClient(pair.a.url, await sdkLogin(pair.a.url, aliceUser));
    bob = await createSdkClient(pair.b.url, await sdkLogin(pair.b.url, bobUser));
    samples.push(
      { name: 'photo.jpg', type: 'image/jpeg', bytes: await makeJpeg(800, 600), inline: true },
      { name: 'drawing.png', type: 'image/png', bytes: await makePng(500, 250), inline: true },
      { name: 'moving.gif', type: 'image/gif', bytes: await makeAnimatedGif(200, 150, 4), inline: true },
      { name: 'paper.pdf', type: 'application/pdf', bytes: PDF_BYTES, inline: false },
      { name: 'picture.svg', type: 'image/svg+xml', bytes: SVG_BYTES, inline: false },
    );
  });
  after(async () => {
    await stopClients(alice, bob);
    await pair?.stop();
  });

  /** GET of a URL the SDK built, with the client's token. */
  async function get(client: MatrixClient, url: string | null): Promise<{ status: number; headers: Headers; bytes: Buffer }> {
    assert.ok(url, 'the SDK built a URL');
    assert.ok(url.includes('/_matrix/client/v1/media/'), `authenticated media URL: ${url}`);
    const res = await fetch(url, { headers: { authorization: `Bearer ${client.getAccessToken()}` } });
    return { status: res.status, headers: res.headers, bytes: Buffer.from(await res.arrayBuffer()) };
  }

  function assertSafetyHeaders(headers: Headers, sample: Sample, what: string): void {
    assert.equal(headers.get('content-security-policy'), MEDIA_CSP, `${what}: CSP`);
    assert.match(headers.get('content-security-policy')!, /^sandbox;/);
    assert.equal(headers.get('x-content-type-options'), 'nosniff', `${what}: nosniff`);
    const disposition = headers.get('content-disposition') ?? '';
    assert.match(disposition, sample.inline ? /^inline\b/ : /^attachment\b/, `${what}: disposition ${disposition}`);
    assert.ok(disposition.includes(sample.name), `${what}: file name in ${disposition}`);
  }

  it('uploads each type and downloads the same bytes with safety headers', async () => {
    for (const s of samples) {
      const up = await alice.uploadContent(s.bytes, { type: s.type, name: s.name });
      assert.match(up.content_uri, /^mxc:\/\/a\.test\/[A-Za-z0-9_-]+$/);
      s.mxc = up.content_uri;
      const res = await get(alice, alice.mxcUrlToHttp(s.mxc, undefined, undefined, undefined, false, true, true));
      assert.equal(res.status, 200, s.name);
      assert.ok(res.bytes.equals(s.bytes), `${s.name}: downloaded bytes are the uploaded ones`);
      assert.equal(res.headers.get('content-type'), s.type, s.name);
      assertSafetyHeaders(res.headers, s, s.name);
    }
  });

  it('thumbnails the images by crop and by scale', async () => {
    const [jpeg, png] = samples;
    const crop = await get(alice, alice.mxcUrlToHttp(jpeg.mxc!, 96, 96, 'crop', false, true, true));
    assert.equal(crop.status, 200);
    assert.equal(crop.headers.get('content-type'), 'image/jpeg');
    assert.equal(crop.headers.get('x-content-type-options'), 'nosniff');
    assert.match(crop.headers.get('content-security-policy') ?? '', /^sandbox;/);
    const cropMeta = await sharp(crop.bytes).metadata();
    assert.deepEqual([cropMeta.width, cropMeta.height], [96, 96]);

    // Scale keeps the 2:1 aspect ratio inside the 320x240 box.
    const scaled = await get(alice, alice.mxcUrlToHttp(png.mxc!, 320, 240, 'scale', false, true, true));
    assert.equal(scaled.status, 200);
    assert.equal(scaled.headers.get('content-type'), 'image/png');
    const scaledMeta = await sharp(scaled.bytes).metadata();
    assert.deepEqual([scaledMeta.width, scaledMeta.height], [320, 160]);
  });

  it('thumbnails the GIF animated only when asked', async () => {
    const gif = samples[2];
    const base = alice.mxcUrlToHttp(gif.mxc!, 96, 96, 'crop', false, true, true)!;
    const still = await get(alice, base);
    assert.equal(still.status, 200);
    assert.equal((await sharp(still.bytes, { animated: true }).metadata()).pages ?? 1, 1, 'a still thumbnail by default');
    const moving = await get(alice, `${base}&animated=true`);
    assert.equal(moving.status, 200);
    assert.match(moving.headers.get('content-type') ?? '', /^image\/(webp|gif)$/);
    const meta = await sharp(moving.bytes, { animated: true }).metadata();
    assert.equal(meta.pages, 4, 'every frame kept');
    assert.deepEqual([meta.width, meta.pageHeight], [96, 96]);
  });

  it('refuses to thumbnail the PDF and the SVG', async () => {
    for (const s of samples.slice(3)) {
      const res = await get(alice, alice.mxcUrlToHttp(s.mxc!, 96, 96, 'crop', false, true, true));
      assert.equal(res.status, 400, s.name);
      assert.notEqual(res.headers.get('content-type'), s.type, `${s.name}: the original is not served as a thumbnail`);
    }
  });

  it('refuses an upload over the limit with M_TOO_LARGE', async () => {
    await assert.rejects(alice.uploadContent(Buffer.alloc(MAX_UPLOAD + 1, 7), { type: 'application/octet-stream', name: 'big.bin' }), (e: unknown) => {
      const err = e as { errcode?: string; httpStatus?: number };
      assert.equal(err.errcode, 'M_TOO_LARGE');
      assert.equal(err.httpStatus, 413);
      return true;
    });
  });

  it("a user of a second server reads the first server's media over federation", async () => {
    for (const s of samples) {
      const res = await get(bob, bob.mxcUrlToHttp(s.mxc!, undefined, undefined, undefined, false, true, true));
      assert.equal(res.status, 200, `${s.name} through b.test`);
      assert.ok(res.bytes.equals(s.bytes), `${s.name}: the bytes fetched over federation are the uploaded ones`);
      assert.equal(res.headers.get('content-type'), s.type, s.name);
      assertSafetyHeaders(res.headers, s, `${s.name} through b.test`);
    }
    const thumb = await get(bob, bob.mxcUrlToHttp(samples[0].mxc!, 96, 96, 'crop', false, true, true));
    assert.equal(thumb.status, 200);
    const meta = await sharp(thumb.bytes).metadata();
    assert.deepEqual([meta.width, meta.height], [96, 96]);
  });
});
