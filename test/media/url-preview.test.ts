/**
 * `preview_url` against pages this test serves on 127.0.0.1: OpenGraph tags, the `<title>`
 * fallback, og:image stored as mxc with its size and dimensions, an hour's cache; and the SSRF
 * guard: loopback refused by default, allowed by `media.url_preview_allow`, and a redirect from an
 * allowed host into a private range refused.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { makePng, rawRequest } from './helpers.js';

describe('URL previews', { timeout: 60_000 }, () => {
  let site: Server;
  let base: string;
  let image: Buffer;
  const hits = new Map<string, number>();
  let allowed: TestServer;
  let strict: TestServer;
  let alice: TestUser;
  let bob: TestUser;

  before(async () => {
    image = await makePng(120, 80);
    site = createServer((req, res) => {
      const path = req.url ?? '/';
      hits.set(path, (hits.get(path) ?? 0) + 1);
      switch (path) {
        case '/page':
          res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
          res.end(`<!doctype html><html><head><title>Ignored title</title>
            <meta property="og:title" content="Hearth &amp; friends">
            <meta property="og:description" content="A page about Hearth">
            <meta property="og:image" content="/img.png">
            <meta property="og:image:width" content="999">
            <meta property="og:type" content="website">
            </head><body><meta property="og:title" content="not in the head"></body></html>`);
          return;
        case '/plain':
          res.writeHead(200, { 'content-type': 'text/html' });
          res.end('<html><head><title>  Just a\n title </title><meta name="description" content="described"></head><body>hi</body></html>');
          return;
        case '/img.png':
          res.writeHead(200, { 'content-type': 'image/png', 'content-length': image.length });
          res.end(image);
          return;
        case '/to-page':
          res.writeHead(302, { location: '/page' });
          res.end();
          return;
        case '/to-private':
          res.writeHead(302, { location: 'http://10.1.2.3/secret' });
          res.end();
          return;
        case '/to-metadata':
          res.writeHead(301, { location: 'http://169.254.169.254/latest/meta-data/' });
          res.end();
          return;
        case '/loop':
          res.writeHead(302, { location: '/loop' });
          res.end();
          return;
        default:
          res.writeHead(404);
          res.end();
      }
    });
    await new Promise<void>((r) => site.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(site.address() as { port: number }).port}`;
    allowed = await startTestServer({ config: { media: { url_preview_allow: ['127.0.0.0/8'] } } });
    strict = await startTestServer();
    alice = await allowed.registerUser();
    bob = await strict.registerUser();
  });

  after(async () => {
    await allowed?.stop();
    await strict?.stop();
    await new Promise((r) => site?.close(r));
  });

  const preview = (server: TestServer, token: string, url: string, prefix = '/_matrix/client/v1/media') =>
    rawRequest(server, 'GET', `${prefix}/preview_url?url=${encodeURIComponent(url)}`, { token });

  it('reads OpenGraph tags from the head and stores og:image as mxc with its size and dimensions', async () => {
    const res = await preview(allowed, alice.accessToken, `${base}/page`);
    assert.equal(res.status, 200, res.bytes.toString());
    const og = res.json;
    assert.equal(og['og:title'], 'Hearth & friends');
    assert.equal(og['og:description'], 'A page about Hearth');
    assert.equal(og['og:type'], 'website');
    assert.match(og['og:image'], new RegExp(`^mxc://${allowed.serverName}/[A-Za-z0-9]{24,}$`));
    assert.equal(og['og:image:type'], 'image/png');
    assert.equal(og['og:image:width'], 120, 'measured, not the page\'s claim');
    assert.equal(og['og:image:height'], 80);
    assert.equal(og['matrix:image:size'], image.length);
    const dl = await rawRequest(allowed, 'GET', `/_matrix/client/v1/media/download/${og['og:image'].slice(6)}`, { token: alice.accessToken });
    assert.equal(dl.status, 200);
    assert.ok(dl.bytes.equals(image), 'the stored image is the page\'s image');
  });

  it('falls back to <title> and meta description; the legacy path answers too', async () => {
    const res = await preview(allowed, alice.accessToken, `${base}/plain`, '/_matrix/media/v3');
    assert.equal(res.status, 200);
    assert.deepEqual(res.json, { 'og:title': 'Just a title', 'og:description': 'described' });
  });

  it('an image URL previews as the image', async () => {
    const res = await preview(allowed, alice.accessToken, `${base}/img.png`);
    assert.equal(res.status, 200);
    assert.equal(res.json['og:image:width'], 120);
    const meta = await sharp((await rawRequest(allowed, 'GET', `/_matrix/client/v1/media/download/${res.json['og:image'].slice(6)}`, { token: alice.accessToken })).bytes).metadata();
    assert.equal(meta.width, 120);
  });

  it('follows a redirect within allowed hosts; answers are cached for an hour', async () => {
    const first = await preview(allowed, alice.accessToken, `${base}/to-page`);
    assert.equal(first.status, 200);
    assert.equal(first.json['og:title'], 'Hearth & friends');
    const before = hits.get('/to-page');
    const second = await preview(allowed, alice.accessToken, `${base}/to-page`);
    assert.deepEqual(second.json, first.json);
    assert.equal(hits.get('/to-page'), before, 'the second answer came from the cache');
  });

  it('a redirect from an allowed host into a private or link-local range is refused', async () => {
    for (const path of ['/to-private', '/to-metadata']) {
      const res = await preview(allowed, alice.accessToken, `${base}${path}`);
      assert.equal(res.status, 403, path);
      assert.equal(res.json.errcode, 'M_FORBIDDEN');
    }
  });

  it('too many redirects fail; so do non-http schemes and garbage', async () => {
    const loop = await preview(allowed, alice.accessToken, `${base}/loop`);
    assert.equal(loop.status, 502);
    assert.equal(hits.get('/loop'), 6, 'the first request and 5 redirects');
    for (const url of ['file:///etc/passwd', 'not a url', 'gopher://127.0.0.1/']) {
      const res = await preview(allowed, alice.accessToken, url);
      assert.equal(res.status, 400, url);
    }
  });

  it('by default, loopback, private and mapped addresses are refused, by literal or by name', async () => {
    const port = new URL(base).port;
    const before = hits.get('/page');
    for (const url of [
      `${base}/page`,
      `http://localhost:${port}/page`,
      `http://[::1]:${port}/page`,
      `http://[::ffff:127.0.0.1]:${port}/page`,
      `http://[::ffff:7f00:1]:${port}/page`,
      `http://0.0.0.0:${port}/page`,
      `http://2130706433:${port}/page`,
    ]) {
      const res = await preview(strict, bob.accessToken, url);
      assert.equal(res.status, 403, `${url}: ${res.bytes.toString()}`);
      assert.equal(res.json.errcode, 'M_FORBIDDEN', url);
    }
    assert.equal(hits.get('/page'), before, 'no request reached the page');
  });
});
