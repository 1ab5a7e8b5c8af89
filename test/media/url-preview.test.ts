/**
 * `preview_url` against pages this test serves on 127.0.0.1 (and 127.0.0.2): OpenGraph tags, the
 * `<title>` fallback, oEmbed discovery (its fields win over the page's), og:image stored as mxc
 * with its size and dimensions, an hour's cache; and the SSRF guard: loopback refused by default,
 * allowed by `media.url_preview_allow`, and a redirect or an oEmbed link from an allowed host into
 * a refused range (by address or by a name that resolves there) refused.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { makePng, rawRequest } from './helpers.js';

describe('URL previews', { timeout: 60_000 }, () => {
  let site: Server;
  let site2: Server;
  let base: string;
  /** The same site on 127.0.0.2, the one address the `narrow` server may reach. */
  let base2: string;
  let image: Buffer;
  const hits = new Map<string, number>();
  let allowed: TestServer;
  let strict: TestServer;
  let narrow: TestServer;
  let alice: TestUser;
  let bob: TestUser;
  let carol: TestUser;
  const oembedLink = (href: string) => `<link rel="alternate" type="application/json+oembed" href="${href}" title="oEmbed">`;

  before(async () => {
    image = await makePng(120, 80);
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      const path = req.url ?? '/';
      const json = (body: unknown) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(typeof body === 'string' ? body : JSON.stringify(body));
      };
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
        case '/to-localhost':
          // A name, not an address: only the lookup the socket connects with sees where it leads.
          res.writeHead(302, { location: `http://localhost:${new URL(base).port}/page` });
          res.end();
          return;
        case '/video':
          res.writeHead(200, { 'content-type': 'text/html' });
          res.end(`<html><head><title>Page title</title><meta property="og:description" content="From the page">
            <meta property="og:image" content="/missing.png"><meta property="og:image:width" content="5">
            ${oembedLink('/oembed/video.json?format=json')}</head><body></body></html>`);
          return;
        case '/oembed/video.json?format=json':
          // The thumbnail URL is relative to this document: /oembed/thumb.png, not /thumb.png.
          return json({ version: '1.0', type: 'video', title: 'A video & more', provider_name: 'HearthTube', thumbnail_url: 'thumb.png', html: '<iframe src="https://example.org/embed"></iframe>' });
        case '/oembed/thumb.png':
          res.writeHead(200, { 'content-type': 'image/png' });
          res.end(image);
          return;
        case '/post':
          res.writeHead(200, { 'content-type': 'text/html' });
          res.end(`<html><head><title>A post</title>${oembedLink(`${base}/oembed/post.json`)}</head></html>`);
          return;
        case '/oembed/post.json':
          return json({ version: '1.0', type: 'rich', provider_name: 'Chirp', author_name: 'someone', html: '<blockquote><p>Hello <b>world</b>,\n  again</p><script>evil()</script></blockquote>' });
        case '/photo':
          res.writeHead(200, { 'content-type': 'text/html' });
          res.end(`<html><head><title>Photo page</title>${oembedLink('/oembed/photo.json')}</head></html>`);
          return;
        case '/oembed/photo.json':
          return json({ version: '1.0', type: 'photo', title: 'A photo', url: '/img.png', width: 4000, height: 3000 });
        case '/broken-oembed':
          res.writeHead(200, { 'content-type': 'text/html' });
          res.end(`<html><head><title>Still here</title>${oembedLink('/oembed/broken.json')}</head></html>`);
          return;
        case '/oembed/broken.json':
          return json('{"type": "video", "title": ');
        case '/oembed-elsewhere':
          res.writeHead(200, { 'content-type': 'text/html' });
          res.end(`<html><head><title>Elsewhere</title>${oembedLink(`http://localhost:${new URL(base).port}/oembed/video.json?format=json`)}</head></html>`);
          return;
        default:
          res.writeHead(404);
          res.end();
      }
    };
    site = createServer(handler);
    site2 = createServer(handler);
    await new Promise<void>((r) => site.listen(0, '127.0.0.1', r));
    await new Promise<void>((r) => site2.listen(0, '127.0.0.2', r));
    base = `http://127.0.0.1:${(site.address() as { port: number }).port}`;
    base2 = `http://127.0.0.2:${(site2.address() as { port: number }).port}`;
    allowed = await startTestServer({ config: { media: { url_preview_allow: ['127.0.0.0/8'] } } });
    strict = await startTestServer();
    narrow = await startTestServer({ config: { media: { url_preview_allow: ['127.0.0.2/32'] } } });
    alice = await allowed.registerUser();
    bob = await strict.registerUser();
    carol = await narrow.registerUser();
  });

  after(async () => {
    await allowed?.stop();
    await strict?.stop();
    await narrow?.stop();
    await new Promise((r) => site?.close(r));
    await new Promise((r) => site2?.close(r));
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

  it('a redirect to a name that resolves into a refused range is refused, after DNS resolution', async () => {
    const reachable = await preview(narrow, carol.accessToken, `${base2}/plain`);
    assert.equal(reachable.status, 200, 'the allowed address previews');
    const before = hits.get('/page');
    const res = await preview(narrow, carol.accessToken, `${base2}/to-localhost`);
    assert.equal(res.status, 403, res.bytes.toString());
    assert.equal(res.json.errcode, 'M_FORBIDDEN');
    assert.equal(hits.get('/page'), before, 'no request reached 127.0.0.1');
  });

  it('oEmbed: the discovered JSON wins over the page; a video thumbnail is fetched relative to the oEmbed document', async () => {
    const res = await preview(allowed, alice.accessToken, `${base}/video`);
    assert.equal(res.status, 200, res.bytes.toString());
    const og = res.json;
    assert.equal(og['og:title'], 'A video & more', 'the oEmbed title, not the <title>');
    assert.equal(og['og:site_name'], 'HearthTube');
    assert.equal(og['og:type'], 'video.other');
    assert.equal(og['og:description'], 'From the page', 'kept: the embed has no text');
    assert.match(og['og:image'], new RegExp(`^mxc://${allowed.serverName}/[A-Za-z0-9]{24,}$`));
    assert.equal(og['og:image:width'], 120, 'the thumbnail as stored, not the page\'s image');
    assert.equal(hits.get('/oembed/thumb.png'), 1);
    assert.equal(hits.get('/missing.png'), undefined, 'the page\'s own image is replaced by the oEmbed one');
  });

  it('oEmbed: a rich embed\'s text is the description; a photo is the image, measured', async () => {
    const post = await preview(allowed, alice.accessToken, `${base}/post`);
    assert.equal(post.status, 200);
    assert.deepEqual(post.json, { 'og:title': 'A post', 'og:site_name': 'Chirp', 'og:description': 'Hello world, again' });
    const photo = await preview(allowed, alice.accessToken, `${base}/photo`);
    assert.equal(photo.status, 200);
    assert.equal(photo.json['og:title'], 'A photo');
    assert.equal(photo.json['og:image:width'], 120, 'measured, not the 4000 the oEmbed claims');
    assert.equal(photo.json['og:image:height'], 80);
    assert.equal(photo.json['matrix:image:size'], image.length);
  });

  it('oEmbed that cannot be had (bad JSON, or a refused address) leaves the page\'s own preview', async () => {
    const broken = await preview(allowed, alice.accessToken, `${base}/broken-oembed`);
    assert.equal(broken.status, 200);
    assert.deepEqual(broken.json, { 'og:title': 'Still here' });
    const before = hits.get('/oembed/video.json?format=json');
    const elsewhere = await preview(narrow, carol.accessToken, `${base2}/oembed-elsewhere`);
    assert.equal(elsewhere.status, 200, elsewhere.bytes.toString());
    assert.deepEqual(elsewhere.json, { 'og:title': 'Elsewhere' });
    assert.equal(hits.get('/oembed/video.json?format=json'), before, 'the oEmbed fetch went through the guard: 127.0.0.1 is refused');
  });
});
