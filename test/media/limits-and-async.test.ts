/**
 * Size limit (413 M_TOO_LARGE), per-user quota (403 M_USER_LIMIT_EXCEEDED, Matrix 1.18), the
 * asynchronous create + PUT flow with its errors, waiting downloads, and admin deletion.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { rawRequest, upload } from './helpers.js';

const MAX = 60_000;
const QUOTA = 100_000;

/** A body sent chunked, without Content-Length, so the server must count as it reads. */
function chunked(total: number, chunk = 8192): { body: ReadableStream<Uint8Array>; duplex: 'half' } {
  let sent = 0;
  return {
    body: new ReadableStream({
      pull(c) {
        if (sent >= total) return c.close();
        const n = Math.min(chunk, total - sent);
        sent += n;
        c.enqueue(new Uint8Array(n).fill(7));
      },
    }),
    duplex: 'half',
  };
}

describe('media limits, quota and asynchronous uploads', { timeout: 60_000 }, () => {
  let server: TestServer;
  let alice: TestUser;
  let bob: TestUser;

  before(async () => {
    server = await startTestServer({ config: { media: { max_upload_bytes: MAX, user_quota_bytes: QUOTA } } });
    alice = await server.registerUser();
    bob = await server.registerUser();
  });
  after(async () => {
    await server?.stop();
  });

  async function postChunked(token: string, total: number) {
    const res = await fetch(`${server.url}/_matrix/media/v3/upload`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
      ...chunked(total),
    } as RequestInit);
    return { status: res.status, json: (await res.json()) as any };
  }

  it('an upload over max_upload_bytes is 413 M_TOO_LARGE, declared or streamed', async () => {
    const declared = await rawRequest(server, 'POST', '/_matrix/media/v3/upload', {
      token: bob.accessToken,
      body: Buffer.alloc(MAX + 1),
      headers: { 'content-type': 'application/octet-stream' },
    });
    assert.equal(declared.status, 413);
    assert.equal(declared.json.errcode, 'M_TOO_LARGE');
    const streamed = await postChunked(bob.accessToken, MAX + 20_000);
    assert.equal(streamed.status, 413);
    assert.equal(streamed.json.errcode, 'M_TOO_LARGE');
    // Exactly the limit is fine, and nothing of the refused uploads was kept.
    const ok = await postChunked(bob.accessToken, MAX);
    assert.equal(ok.status, 200, JSON.stringify(ok.json));
    const rows = await server.hs.ctx.db.selectFrom('local_media').select('size').where('user_id', '=', bob.userId).execute();
    assert.deepEqual(rows.map((r) => Number(r.size)), [MAX]);
  });

  it('the per-user quota refuses the upload that would pass it: 403 M_USER_LIMIT_EXCEEDED', async () => {
    await upload(server, alice.accessToken, Buffer.alloc(40_000, 1), 'application/octet-stream');
    await upload(server, alice.accessToken, Buffer.alloc(40_000, 2), 'application/octet-stream');
    const declared = await rawRequest(server, 'POST', '/_matrix/media/v3/upload', {
      token: alice.accessToken,
      body: Buffer.alloc(40_000, 3),
      headers: { 'content-type': 'application/octet-stream' },
    });
    assert.equal(declared.status, 403);
    assert.equal(declared.json.errcode, 'M_USER_LIMIT_EXCEEDED');
    assert.equal(typeof declared.json.info_uri, 'string', 'the spec requires info_uri');
    const streamed = await postChunked(alice.accessToken, 40_000);
    assert.equal(streamed.status, 403);
    assert.equal(streamed.json.errcode, 'M_USER_LIMIT_EXCEEDED');
    // What still fits is accepted; another user has a quota of their own.
    await upload(server, alice.accessToken, Buffer.alloc(20_000, 4), 'application/octet-stream');
    const other = await server.registerUser();
    await upload(server, other.accessToken, Buffer.alloc(40_000, 5), 'application/octet-stream');
  });

  it('a client that goes away mid-upload leaves no row and no partial file', async () => {
    const quitter = await server.registerUser();
    await new Promise<void>((resolve) => {
      const req = httpRequest(`${server.url}/_matrix/media/v3/upload`, {
        method: 'POST',
        headers: { authorization: `Bearer ${quitter.accessToken}`, 'content-type': 'application/octet-stream', 'content-length': 50_000 },
      });
      req.on('error', () => resolve());
      req.write(Buffer.alloc(20_000, 9), () => setTimeout(() => req.destroy(), 100));
      req.on('close', () => resolve());
    });
    const staging = join(server.dataDir, 'media', 'tmp');
    for (let i = 0; i < 50 && readdirSync(staging).some((n) => n.endsWith('.part')); i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(readdirSync(staging).filter((n) => n.endsWith('.part')), [], 'the partial file is removed');
    const rows = await server.hs.ctx.db.selectFrom('local_media').select('media_id').where('user_id', '=', quitter.userId).execute();
    assert.equal(rows.length, 0);
  });

  it('create then PUT: the content appears under the created id; a waiting download gets it', async () => {
    const carol = await server.registerUser();
    const created = await rawRequest(server, 'POST', '/_matrix/media/v1/create', { token: carol.accessToken, body: '{}', headers: { 'content-type': 'application/json' } });
    assert.equal(created.status, 200);
    const mxc = created.json.content_uri as string;
    assert.match(mxc, new RegExp(`^mxc://${server.serverName}/[A-Za-z0-9]{24,}$`));
    assert.ok(created.json.unused_expires_at > Date.now() + 23 * 3600_000, 'expires in about 24 hours');
    const [, serverName, mediaId] = /^mxc:\/\/([^/]+)\/(.+)$/.exec(mxc)!;
    const dlPath = `/_matrix/client/v1/media/download/${serverName}/${mediaId}`;

    const notYet = await rawRequest(server, 'GET', `${dlPath}?timeout_ms=100`, { token: carol.accessToken });
    assert.equal(notYet.status, 504);
    assert.equal(notYet.json.errcode, 'M_NOT_YET_UPLOADED');

    const waiting = rawRequest(server, 'GET', `${dlPath}?timeout_ms=10000`, { token: carol.accessToken });
    await new Promise((r) => setTimeout(r, 100));

    const byBob = await rawRequest(server, 'PUT', `/_matrix/media/v3/upload/${serverName}/${mediaId}`, {
      token: bob.accessToken,
      body: Buffer.from('bob was here'),
      headers: { 'content-type': 'text/plain' },
    });
    assert.equal(byBob.status, 403);
    assert.equal(byBob.json.errcode, 'M_FORBIDDEN');

    const put = await rawRequest(server, 'PUT', `/_matrix/media/v3/upload/${serverName}/${mediaId}?filename=later.txt`, {
      token: carol.accessToken,
      body: Buffer.from('uploaded later'),
      headers: { 'content-type': 'text/plain' },
    });
    assert.equal(put.status, 200);
    assert.deepEqual(put.json, {});

    const got = await waiting;
    assert.equal(got.status, 200);
    assert.equal(got.bytes.toString(), 'uploaded later');
    assert.equal(got.headers.get('content-disposition'), 'inline; filename="later.txt"');

    const again = await rawRequest(server, 'PUT', `/_matrix/media/v3/upload/${serverName}/${mediaId}`, {
      token: carol.accessToken,
      body: Buffer.from('overwrite'),
      headers: { 'content-type': 'text/plain' },
    });
    assert.equal(again.status, 409);
    assert.equal(again.json.errcode, 'M_CANNOT_OVERWRITE_MEDIA');
    const still = await rawRequest(server, 'GET', dlPath, { token: carol.accessToken });
    assert.equal(still.bytes.toString(), 'uploaded later');
  });

  it('PUT to an id that was never created, or on another server, is 404 M_NOT_FOUND', async () => {
    for (const path of [`${server.serverName}/AAAAAAAAAAAAAAAAAAAAAAAA`, 'other.example/AAAAAAAAAAAAAAAAAAAAAAAA']) {
      const res = await rawRequest(server, 'PUT', `/_matrix/media/v3/upload/${path}`, { token: alice.accessToken, body: Buffer.from('x') });
      assert.equal(res.status, 404, path);
      assert.equal(res.json.errcode, 'M_NOT_FOUND');
    }
    // An id uploaded directly (not created) cannot be PUT to either.
    const { mediaId } = await upload(server, bob.accessToken, Buffer.from('direct'), 'text/plain');
    const res = await rawRequest(server, 'PUT', `/_matrix/media/v3/upload/${server.serverName}/${mediaId}`, { token: bob.accessToken, body: Buffer.from('x') });
    assert.equal(res.status, 409);
  });

  it('a user may hold only so many pending ids: 429 M_LIMIT_EXCEEDED', async () => {
    const dave = await server.registerUser();
    for (let i = 0; i < 10; i++) {
      const res = await rawRequest(server, 'POST', '/_matrix/media/v1/create', { token: dave.accessToken });
      assert.equal(res.status, 200);
    }
    const res = await rawRequest(server, 'POST', '/_matrix/media/v1/create', { token: dave.accessToken });
    assert.equal(res.status, 429);
    assert.equal(res.json.errcode, 'M_LIMIT_EXCEEDED');
  });

  it('an admin deletes a media item: it is gone, its file too unless other media shares it', async () => {
    const admin = await server.registerUser(undefined, { admin: true });
    const erin = await server.registerUser();
    const bytes = Buffer.from('shared bytes ' + Date.now());
    const first = await upload(server, erin.accessToken, bytes, 'text/plain');
    const second = await upload(server, erin.accessToken, bytes, 'text/plain');
    const row = await server.hs.ctx.db.selectFrom('local_media').select('sha256').where('media_id', '=', first.mediaId).executeTakeFirstOrThrow();
    const file = join(server.dataDir, 'media', row.sha256!.slice(0, 2), row.sha256!.slice(2, 4), row.sha256!);
    assert.ok(existsSync(file), `stored at ${file}`);

    const denied = await rawRequest(server, 'DELETE', `/_synapse/admin/v1/media/${server.serverName}/${first.mediaId}`, { token: erin.accessToken });
    assert.equal(denied.status, 403);

    const del = await rawRequest(server, 'DELETE', `/_synapse/admin/v1/media/${server.serverName}/${first.mediaId}`, { token: admin.accessToken });
    assert.equal(del.status, 200);
    assert.deepEqual(del.json, { deleted_media: [first.mediaId], total: 1 });
    const gone = await rawRequest(server, 'GET', `/_matrix/client/v1/media/download/${server.serverName}/${first.mediaId}`, { token: erin.accessToken });
    assert.equal(gone.status, 404);
    assert.ok(existsSync(file), 'the same bytes are still used by the second upload');
    const kept = await rawRequest(server, 'GET', `/_matrix/client/v1/media/download/${server.serverName}/${second.mediaId}`, { token: erin.accessToken });
    assert.ok(kept.bytes.equals(bytes));

    await rawRequest(server, 'DELETE', `/_synapse/admin/v1/media/${server.serverName}/${second.mediaId}`, { token: admin.accessToken });
    assert.ok(!existsSync(file), 'the file goes with the last media item that used it');
    const again = await rawRequest(server, 'DELETE', `/_synapse/admin/v1/media/${server.serverName}/${second.mediaId}`, { token: admin.accessToken });
    assert.equal(again.status, 404);
  });
});
