/**
 * Uploads and downloads over real HTTP: the bytes come back unchanged, with the stored
 * Content-Type, a Content-Disposition that is inline only for safe types (never SVG or PDF), the
 * file name encoded per RFC 6266, and the sandboxing headers on every answer.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { MEDIA_CSP, PDF_BYTES, SVG_BYTES, makeAnimatedGif, makeJpeg, makePng, rawRequest, upload } from './helpers.js';

describe('media upload and download', { timeout: 60_000 }, () => {
  let server: TestServer;
  let alice: TestUser;

  before(async () => {
    server = await startTestServer();
    alice = await server.registerUser();
  });
  after(async () => {
    await server?.stop();
  });

  function assertSafetyHeaders(h: Headers) {
    assert.equal(h.get('content-security-policy'), MEDIA_CSP);
    assert.equal(h.get('cross-origin-resource-policy'), 'cross-origin');
    assert.equal(h.get('x-content-type-options'), 'nosniff');
  }

  const cases: { name: string; type: string; make: () => Promise<Buffer>; file: string; disposition: 'inline' | 'attachment' }[] = [
    { name: 'JPEG', type: 'image/jpeg', make: () => makeJpeg(64, 48), file: 'photo.jpg', disposition: 'inline' },
    { name: 'PNG', type: 'image/png', make: () => makePng(20, 10), file: 'pic.png', disposition: 'inline' },
    { name: 'animated GIF', type: 'image/gif', make: () => makeAnimatedGif(30, 20), file: 'anim.gif', disposition: 'inline' },
    { name: 'PDF', type: 'application/pdf', make: async () => PDF_BYTES, file: 'paper.pdf', disposition: 'attachment' },
    { name: 'SVG', type: 'image/svg+xml', make: async () => SVG_BYTES, file: 'drawing.svg', disposition: 'attachment' },
  ];

  for (const c of cases) {
    it(`a ${c.name} comes back byte for byte with its type, ${c.disposition} disposition and the safety headers`, async () => {
      const bytes = await c.make();
      const { serverName, mediaId, mxc } = await upload(server, alice.accessToken, bytes, c.type, c.file);
      assert.equal(serverName, server.serverName);
      assert.match(mediaId, /^[A-Za-z0-9]{24,}$/, 'media ids are 24+ random base62 characters');
      assert.ok(mxc.startsWith('mxc://'));

      const res = await rawRequest(server, 'GET', `/_matrix/client/v1/media/download/${serverName}/${mediaId}`, { token: alice.accessToken });
      assert.equal(res.status, 200);
      assert.ok(res.bytes.equals(bytes), 'the same bytes');
      assert.equal(res.headers.get('content-type'), c.type);
      assert.equal(res.headers.get('content-length'), String(bytes.length));
      assert.equal(res.headers.get('content-disposition'), `${c.disposition}; filename="${c.file}"`);
      assertSafetyHeaders(res.headers);

      // The file name in the path overrides the stored one.
      const named = await rawRequest(server, 'GET', `/_matrix/client/v1/media/download/${serverName}/${mediaId}/other.bin`, {
        token: alice.accessToken,
      });
      assert.equal(named.status, 200);
      assert.ok(named.bytes.equals(bytes));
      assert.equal(named.headers.get('content-disposition'), `${c.disposition}; filename="other.bin"`);
    });
  }

  it('SVG is never served inline, whatever the file name says', async () => {
    const { mediaId } = await upload(server, alice.accessToken, SVG_BYTES, 'image/svg+xml', 'looks-like.png');
    const res = await rawRequest(server, 'GET', `/_matrix/client/v1/media/download/${server.serverName}/${mediaId}`, { token: alice.accessToken });
    assert.match(res.headers.get('content-disposition') ?? '', /^attachment;/);
    assert.equal(res.headers.get('content-type'), 'image/svg+xml');
  });

  it('HTML uploaded as text/html is an attachment under the sandboxing CSP', async () => {
    const html = Buffer.from('<html><script>alert(document.cookie)</script></html>');
    const { mediaId } = await upload(server, alice.accessToken, html, 'text/html');
    const res = await rawRequest(server, 'GET', `/_matrix/client/v1/media/download/${server.serverName}/${mediaId}`, { token: alice.accessToken });
    assert.equal(res.headers.get('content-disposition'), 'attachment');
    assertSafetyHeaders(res.headers);
  });

  it('a non-ASCII file name is encoded per RFC 5987 (filename*)', async () => {
    const { mediaId } = await upload(server, alice.accessToken, Buffer.from('hello'), 'text/plain', '日本語 notes.txt');
    const res = await rawRequest(server, 'GET', `/_matrix/client/v1/media/download/${server.serverName}/${mediaId}`, { token: alice.accessToken });
    assert.equal(res.bytes.toString(), 'hello');
    const cd = res.headers.get('content-disposition') ?? '';
    assert.match(cd, /^inline; /);
    assert.ok(cd.includes(`filename*=UTF-8''${encodeURIComponent('日本語')}%20notes.txt`), cd);
  });

  it('an upload without a Content-Type is stored as application/octet-stream, served as an attachment', async () => {
    const res = await fetch(`${server.url}/_matrix/media/v3/upload`, {
      method: 'POST',
      headers: { authorization: `Bearer ${alice.accessToken}` },
      body: new Uint8Array([1, 2, 3]),
    });
    assert.equal(res.status, 200);
    const mxc = ((await res.json()) as { content_uri: string }).content_uri;
    const dl = await rawRequest(server, 'GET', `/_matrix/client/v1/media/download/${mxc.slice(6)}`, { token: alice.accessToken });
    assert.deepEqual([...dl.bytes], [1, 2, 3]);
    assert.equal(dl.headers.get('content-type'), 'application/octet-stream');
    assert.equal(dl.headers.get('content-disposition'), 'attachment');
  });

  it('a JSON file is stored as it is, not parsed', async () => {
    const json = Buffer.from('{"not": "parsed", "n": [1, 2, 3]}   ');
    const { mediaId } = await upload(server, alice.accessToken, json, 'application/json', 'data.json');
    const res = await rawRequest(server, 'GET', `/_matrix/client/v1/media/download/${server.serverName}/${mediaId}`, { token: alice.accessToken });
    assert.ok(res.bytes.equals(json));
    assert.equal(res.headers.get('content-disposition'), 'inline; filename="data.json"');
  });

  it('control characters and quotes in a file name cannot break the header', async () => {
    const { mediaId } = await upload(server, alice.accessToken, Buffer.from('x'), 'text/plain', 'a"b\r\nSet-Cookie: x=1.txt');
    const res = await rawRequest(server, 'GET', `/_matrix/client/v1/media/download/${server.serverName}/${mediaId}`, { token: alice.accessToken });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('set-cookie'), null);
    assert.equal(res.headers.get('content-disposition'), 'inline; filename="a\\"b__Set-Cookie: x=1.txt"');
    const viaPath = await rawRequest(server, 'GET', `/_matrix/client/v1/media/download/${server.serverName}/${mediaId}/evil%0D%0ASet-Cookie%3A%20x%3D1`, {
      token: alice.accessToken,
    });
    assert.equal(viaPath.status, 200);
    assert.equal(viaPath.headers.get('set-cookie'), null);
    assert.equal(viaPath.headers.get('content-disposition'), 'inline; filename="evil__Set-Cookie: x=1"');
  });

  it('byte ranges are served for seeking in audio and video: 206 with Content-Range, 416 past the end', async () => {
    const bytes = Buffer.from('0123456789abcdefghij');
    const { mediaId } = await upload(server, alice.accessToken, bytes, 'video/mp4', 'clip.mp4');
    const path = `/_matrix/client/v1/media/download/${server.serverName}/${mediaId}`;
    const whole = await rawRequest(server, 'GET', path, { token: alice.accessToken });
    assert.equal(whole.headers.get('accept-ranges'), 'bytes');
    for (const [range, body, contentRange] of [
      ['bytes=0-3', '0123', 'bytes 0-3/20'],
      ['bytes=10-', 'abcdefghij', 'bytes 10-19/20'],
      ['bytes=-5', 'fghij', 'bytes 15-19/20'],
      ['bytes=18-100', 'ij', 'bytes 18-19/20'],
    ]) {
      const res = await rawRequest(server, 'GET', path, { token: alice.accessToken, headers: { range } });
      assert.equal(res.status, 206, range);
      assert.equal(res.bytes.toString(), body, range);
      assert.equal(res.headers.get('content-range'), contentRange);
      assert.equal(res.headers.get('content-length'), String(body.length));
      assert.equal(res.headers.get('content-security-policy'), MEDIA_CSP);
    }
    const past = await rawRequest(server, 'GET', path, { token: alice.accessToken, headers: { range: 'bytes=20-' } });
    assert.equal(past.status, 416);
    assert.equal(past.headers.get('content-range'), 'bytes */20');
    const multi = await rawRequest(server, 'GET', path, { token: alice.accessToken, headers: { range: 'bytes=0-1,4-5' } });
    assert.equal(multi.status, 200, 'several ranges get the whole content');
    assert.ok(multi.bytes.equals(bytes));
  });

  it('an empty upload is a zero-byte file', async () => {
    const { mediaId } = await upload(server, alice.accessToken, Buffer.alloc(0), 'text/plain');
    const res = await rawRequest(server, 'GET', `/_matrix/client/v1/media/download/${server.serverName}/${mediaId}`, { token: alice.accessToken });
    assert.equal(res.status, 200);
    assert.equal(res.bytes.length, 0);
  });

  it('the authenticated endpoints need an access token', async () => {
    const { mediaId } = await upload(server, alice.accessToken, Buffer.from('x'), 'text/plain');
    const res = await rawRequest(server, 'GET', `/_matrix/client/v1/media/download/${server.serverName}/${mediaId}`);
    assert.equal(res.status, 401);
    assert.equal(res.json.errcode, 'M_MISSING_TOKEN');
    const up = await rawRequest(server, 'POST', '/_matrix/media/v3/upload', { body: Buffer.from('x'), headers: { 'content-type': 'text/plain' } });
    assert.equal(up.status, 401);
  });

  it('unknown and malformed ids are 404 M_NOT_FOUND; a server that cannot be reached is 502', async () => {
    for (const path of [
      `/_matrix/client/v1/media/download/${server.serverName}/AAAAAAAAAAAAAAAAAAAAAAAA`,
      `/_matrix/client/v1/media/download/${server.serverName}/bad.id`,
      `/_matrix/client/v1/media/download/other.example/bad.id`,
    ]) {
      const res = await rawRequest(server, 'GET', path, { token: alice.accessToken });
      assert.equal(res.status, 404, path);
      assert.equal(res.json.errcode, 'M_NOT_FOUND', path);
      assert.equal(res.headers.get('content-security-policy'), MEDIA_CSP, 'error answers carry the CSP too');
    }
    for (const path of [
      `/_matrix/client/v1/media/download/other.example/AAAAAAAAAAAAAAAAAAAAAAAA`,
      `/_matrix/client/v1/media/thumbnail/other.example/AAAAAAAAAAAAAAAAAAAAAAAA?width=32&height=32`,
    ]) {
      const res = await rawRequest(server, 'GET', path, { token: alice.accessToken });
      assert.equal(res.status, 502, path);
      assert.equal(res.json.errcode, 'M_UNKNOWN', path);
      assert.equal(res.headers.get('content-security-policy'), MEDIA_CSP, 'error answers carry the CSP too');
    }
  });

  it('GET config gives m.upload.size', async () => {
    for (const path of ['/_matrix/client/v1/media/config', '/_matrix/media/v3/config']) {
      const res = await rawRequest(server, 'GET', path, { token: alice.accessToken });
      assert.equal(res.status, 200);
      assert.deepEqual(res.json, { 'm.upload.size': 50 * 1024 * 1024 });
    }
  });

  it('an upload of 3 MB streams through and comes back identical', async () => {
    const big = Buffer.alloc(3 * 1024 * 1024);
    for (let i = 0; i < big.length; i += 4) big.writeUInt32LE((i * 2654435761) >>> 0, i);
    const { mediaId } = await upload(server, alice.accessToken, big, 'application/octet-stream', 'blob.bin');
    const res = await rawRequest(server, 'GET', `/_matrix/client/v1/media/download/${server.serverName}/${mediaId}`, { token: alice.accessToken });
    assert.ok(res.bytes.equals(big));
  });
});
