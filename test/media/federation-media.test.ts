/**
 * Federation media (server-server content_repository.yaml, server-server-api.md "Content
 * Repository"): a.test serves its media as multipart/mixed to authenticated servers; a user of
 * b.test downloads and thumbnails a.test's media through b.test, which caches it. Against a
 * stand-in origin c.test: the `Location` form, the legacy fallback on 404 M_UNRECOGNIZED (with
 * allow_remote=false), and one upstream fetch for concurrent requests.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { signRequest } from '../../src/federation/x-matrix.js';
import { boundaryOf, decodeMultipart, encodeMultipart } from '../../src/media/multipart.js';
import { F, httpServer, json, keyServer, signedRequest, startPair, type Pair } from '../federation/federation-helpers.js';
import type { TestUser } from '../helpers/server.js';
import { MEDIA_CSP, makePng, rawRequest, upload } from './helpers.js';

describe('federation media', { timeout: 120_000 }, () => {
  let pair: Pair;
  let alice: TestUser;
  let bob: TestUser;
  let c: Awaited<ReturnType<typeof keyServer>>;
  let origin: Awaited<ReturnType<typeof httpServer>>;
  let png: Buffer;
  let aMedia: { mediaId: string };
  const authHeaders: string[] = [];

  /** c.test's media: `inline` (bytes in the multipart), `moved` (a Location), `old` (a server without the federation endpoints). */
  const originFiles: Record<string, { bytes: Buffer; type: string }> = {};

  before(async () => {
    png = await makePng(400, 300);
    originFiles.inline = { bytes: Buffer.from('inline bytes from c.test '.repeat(1000)), type: 'text/plain' };
    originFiles.moved = { bytes: Buffer.from('bytes behind a Location'), type: 'application/pdf' };
    originFiles.old = { bytes: Buffer.from('served by the legacy endpoint'), type: 'text/plain' };
    originFiles.slow = { bytes: Buffer.alloc(300_000, 7), type: 'application/octet-stream' };
    originFiles.thumb = { bytes: png, type: 'image/png' };
    originFiles.huge = { bytes: Buffer.alloc(600_000, 3), type: 'application/octet-stream' };
    originFiles.cut = { bytes: Buffer.alloc(10_000, 4), type: 'application/octet-stream' };
    origin = await httpServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://c.test');
      const fed = /^\/_matrix\/federation\/v1\/media\/(download|thumbnail)\/([^/]+)$/.exec(url.pathname);
      if (fed) {
        authHeaders.push(req.headers.authorization ?? '');
        const file = originFiles[fed[2]];
        if (fed[2] === 'old') return json(res, 404, { errcode: 'M_UNRECOGNIZED', error: 'Unrecognized request' });
        if (!file) return json(res, 404, { errcode: 'M_NOT_FOUND', error: 'no such media' });
        const boundary = 'c0ffee';
        res.writeHead(200, { 'content-type': `multipart/mixed; boundary=${boundary}` });
        const headers: Record<string, string> =
          fed[2] === 'moved' ? { Location: `${origin.url}/files/moved` } : { 'Content-Type': file.type, 'Content-Disposition': 'attachment; filename="from-c.bin"' };
        const body = encodeMultipart(boundary, {}, headers, fed[2] === 'moved' ? undefined : Readable.from([file.bytes]));
        if (fed[2] === 'cut') {
          // The connection ends before the closing delimiter.
          void buffer(body).then((all) => res.end(all.subarray(0, all.length - 30)));
          return;
        }
        // The slow file keeps its callers waiting, so that they overlap.
        setTimeout(() => body.pipe(res), fed[2] === 'slow' ? 500 : 0);
        return;
      }
      if (url.pathname === '/files/moved') {
        res.writeHead(200, { 'content-type': originFiles.moved.type, 'content-disposition': 'attachment; filename="moved.pdf"' });
        return res.end(originFiles.moved.bytes);
      }
      if (url.pathname === '/_matrix/media/v3/thumbnail/c.test/old') {
        assert.equal(url.searchParams.get('allow_remote'), 'false');
        res.writeHead(200, { 'content-type': 'image/png' });
        return res.end(png);
      }
      if (url.pathname === '/_matrix/media/v3/download/c.test/old') {
        assert.equal(url.searchParams.get('allow_remote'), 'false');
        res.writeHead(200, { 'content-type': 'text/plain', 'content-disposition': 'inline; filename="old.txt"' });
        return res.end(originFiles.old.bytes);
      }
      json(res, 404, { errcode: 'M_UNRECOGNIZED', error: 'Unrecognized request' });
    });
    c = await keyServer('k.test');
    // a.test's legacy endpoints serve nothing (frozen since 1970): b.test can only have a.test's
    // media through the federation endpoints.
    pair = await startPair({ 'c.test': origin.url, 'k.test': c.url }, { a: { media: { legacy_freeze_ts: 1 } }, b: { media: { max_upload_bytes: 500_000 } } });
    alice = await pair.a.registerUser('media_alice');
    bob = await pair.b.registerUser('media_bob');
    aMedia = await upload(pair.a, alice.accessToken, png, 'image/png', 'square.png');
    await pair.a.hs.ctx.services.media.thumbnails.whenReady(aMedia.mediaId);
  });
  after(async () => {
    await pair?.stop();
    await origin?.close();
    await c?.close();
  });

  it('a.test serves its media to an authenticated server as multipart/mixed', async () => {
    const path = `${F}/media/download/${aMedia.mediaId}`;
    const res = await fetch(pair.a.url + path, { headers: { authorization: signedAuth(path) } });
    assert.equal(res.status, 200);
    const boundary = boundaryOf(res.headers.get('content-type') ?? undefined);
    assert.ok(boundary, res.headers.get('content-type') ?? '');
    const part = await decodeMultipart(Readable.fromWeb(res.body as never), boundary);
    assert.deepEqual(part.metadata, {});
    assert.equal(part.headers['content-type'], 'image/png');
    assert.equal(part.headers['content-disposition'], 'inline; filename="square.png"');
    assert.deepEqual(await buffer(part.body), png);
  });

  it('a thumbnail over federation is a resized image in the second part', async () => {
    const path = `${F}/media/thumbnail/${aMedia.mediaId}?width=96&height=96&method=crop`;
    const res = await fetch(pair.a.url + path, { headers: { authorization: signedAuth(path) } });
    assert.equal(res.status, 200);
    const part = await decodeMultipart(Readable.fromWeb(res.body as never), boundaryOf(res.headers.get('content-type') ?? undefined)!);
    assert.equal(part.headers['content-type'], 'image/png');
    const meta = await sharp(await buffer(part.body)).metadata();
    assert.deepEqual([meta.width, meta.height], [96, 96]);
  });

  it('unsigned requests are refused; unknown media is M_NOT_FOUND', async () => {
    const unsigned = await pair.a.request('GET', `${F}/media/download/${aMedia.mediaId}`);
    assert.equal(unsigned.status, 401);
    assert.equal(unsigned.body.errcode, 'M_UNAUTHORIZED');
    const missing = await signedRequest(pair.a, 'GET', `${F}/media/download/NoSuchMedia`, { origin: 'k.test', key: c.key });
    assert.equal(missing.status, 404);
    assert.equal(missing.body.errcode, 'M_NOT_FOUND');
  });

  it('a user of b.test downloads and thumbnails media uploaded on a.test, over the federation endpoints', async () => {
    for (const legacyPath of [`/_matrix/media/v3/download/a.test/${aMedia.mediaId}`, `/_matrix/media/v3/thumbnail/a.test/${aMedia.mediaId}?width=32&height=32`]) {
      assert.equal((await rawRequest(pair.a, 'GET', legacyPath)).status, 404, `a.test's legacy endpoint is closed: ${legacyPath}`);
    }
    const dl = await rawRequest(pair.b, 'GET', `/_matrix/client/v1/media/download/a.test/${aMedia.mediaId}`, { token: bob.accessToken });
    assert.equal(dl.status, 200);
    assert.deepEqual(dl.bytes, png);
    assert.equal(dl.headers.get('content-type'), 'image/png');
    assert.equal(dl.headers.get('content-disposition'), 'inline; filename="square.png"');
    assert.equal(dl.headers.get('content-security-policy'), MEDIA_CSP);
    const cached = await pair.b.hs.ctx.db.selectFrom('remote_media').selectAll().where('server_name', '=', 'a.test').execute();
    assert.equal(cached.length, 1);
    assert.equal(cached[0]!.size, png.length);

    const th = await rawRequest(pair.b, 'GET', `/_matrix/client/v1/media/thumbnail/a.test/${aMedia.mediaId}?width=32&height=32&method=crop`, { token: bob.accessToken });
    assert.equal(th.status, 200);
    assert.equal(th.headers.get('content-type'), 'image/png');
    const meta = await sharp(th.bytes).metadata();
    assert.deepEqual([meta.width, meta.height], [32, 32]);

    // The legacy unauthenticated endpoint does not fetch for anyone.
    const legacy = await rawRequest(pair.b, 'GET', `/_matrix/media/v3/download/a.test/${aMedia.mediaId}`);
    assert.equal(legacy.status, 404);
  });

  it('media missing on the origin is M_NOT_FOUND, and a bad server name is too', async () => {
    const res = await rawRequest(pair.b, 'GET', '/_matrix/client/v1/media/download/a.test/NoSuchMedia', { token: bob.accessToken });
    assert.equal(res.status, 404);
    assert.equal(res.json.errcode, 'M_NOT_FOUND');
    const bad = await rawRequest(pair.b, 'GET', '/_matrix/client/v1/media/download/bad_name!/abc', { token: bob.accessToken });
    assert.equal(bad.status, 404);
  });

  it('five concurrent requests for one remote file make one upstream fetch; later ones are served from the cache', async () => {
    const path = `${F}/media/download/slow`;
    const before = origin.hits.get(`${path}?timeout_ms=20000`) ?? 0;
    const answers = await Promise.all(
      Array.from({ length: 5 }, () => rawRequest(pair.b, 'GET', '/_matrix/client/v1/media/download/c.test/slow', { token: bob.accessToken })),
    );
    for (const a of answers) {
      assert.equal(a.status, 200);
      assert.deepEqual(a.bytes, originFiles.slow.bytes);
    }
    const again = await rawRequest(pair.b, 'GET', '/_matrix/client/v1/media/download/c.test/slow', { token: bob.accessToken });
    assert.deepEqual(again.bytes, originFiles.slow.bytes);
    assert.equal((origin.hits.get(`${path}?timeout_ms=20000`) ?? 0) - before, 1);
    // Signed by b.test, for c.test.
    assert.match(authHeaders.at(-1)!, /^X-Matrix origin="b.test",destination="c.test",key="ed25519:[^"]+",sig="[^"]+"$/);
  });

  it('bytes inline in the multipart keep the type and file name the origin gave', async () => {
    const res = await rawRequest(pair.b, 'GET', '/_matrix/client/v1/media/download/c.test/inline', { token: bob.accessToken });
    assert.equal(res.status, 200);
    assert.deepEqual(res.bytes, originFiles.inline.bytes);
    assert.equal(res.headers.get('content-type'), 'text/plain');
    assert.equal(res.headers.get('content-disposition'), 'inline; filename="from-c.bin"');
  });

  it('a Location part is followed, and the type and name come from that answer', async () => {
    const res = await rawRequest(pair.b, 'GET', '/_matrix/client/v1/media/download/c.test/moved', { token: bob.accessToken });
    assert.equal(res.status, 200);
    assert.deepEqual(res.bytes, originFiles.moved.bytes);
    assert.equal(res.headers.get('content-type'), 'application/pdf');
    assert.equal(res.headers.get('content-disposition'), 'attachment; filename="moved.pdf"');
  });

  it('an origin without the federation endpoints is asked on the legacy one, with allow_remote=false', async () => {
    const res = await rawRequest(pair.b, 'GET', '/_matrix/client/v1/media/download/c.test/old', { token: bob.accessToken });
    assert.equal(res.status, 200);
    assert.deepEqual(res.bytes, originFiles.old.bytes);
    assert.equal(res.headers.get('content-disposition'), 'inline; filename="old.txt"');
    assert.equal(origin.hits.get('/_matrix/media/v3/download/c.test/old?allow_remote=false&timeout_ms=20000'), 1);
  });

  it('a thumbnail from an origin without the federation endpoints comes from its legacy thumbnail endpoint', async () => {
    const res = await rawRequest(pair.b, 'GET', '/_matrix/client/v1/media/thumbnail/c.test/old?width=64&height=64&method=scale', { token: bob.accessToken });
    assert.equal(res.status, 200, res.bytes.toString());
    assert.equal(res.headers.get('content-type'), 'image/png');
    assert.deepEqual(res.bytes, png);
    const legacy = [...origin.hits.entries()].filter(([k]) => k.startsWith('/_matrix/media/v3/thumbnail/c.test/old?'));
    assert.equal(legacy.length, 1);
    assert.match(legacy[0]![0], /width=64&height=64&method=scale/);
  });

  it('remote media over the size limit, or cut short, is 502 and leaves nothing cached', async () => {
    const huge = await rawRequest(pair.b, 'GET', '/_matrix/client/v1/media/download/c.test/huge', { token: bob.accessToken });
    assert.equal(huge.status, 502);
    assert.equal(huge.json.errcode, 'M_TOO_LARGE');
    const cut = await rawRequest(pair.b, 'GET', '/_matrix/client/v1/media/download/c.test/cut', { token: bob.accessToken });
    assert.equal(cut.status, 502);
    assert.equal(cut.json.errcode, 'M_UNKNOWN');
    const rows = await pair.b.hs.ctx.db.selectFrom('remote_media').select('media_id').where('media_id', 'in', ['huge', 'cut']).execute();
    assert.deepEqual(rows, []);
    assert.deepEqual(readdirSync(join(pair.b.dataDir, 'media', 'tmp')), []);
  });

  it('a remote thumbnail is fetched once per size and cached', async () => {
    const q = 'width=64&height=64&method=scale';
    for (let i = 0; i < 2; i++) {
      const res = await rawRequest(pair.b, 'GET', `/_matrix/client/v1/media/thumbnail/c.test/thumb?${q}`, { token: bob.accessToken });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'image/png');
      assert.deepEqual(res.bytes, png);
    }
    const hits = [...origin.hits.entries()].filter(([k]) => k.startsWith(`${F}/media/thumbnail/thumb?`));
    assert.equal(hits.length, 1);
    assert.equal(hits[0]![1], 1);
  });

  /** The X-Matrix header of k.test (a key server a.test fetches the key from) for a GET of `path` on a.test. */
  function signedAuth(path: string): string {
    return signRequest({ method: 'GET', uri: path, origin: 'k.test', destination: 'a.test' }, c.key);
  }
});
