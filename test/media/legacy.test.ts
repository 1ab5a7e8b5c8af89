/**
 * The legacy unauthenticated `/_matrix/media/v3` endpoints: upload still works; download and
 * thumbnail serve everything by default, and only media created before `media.legacy_freeze_ts`
 * when the operator sets a freeze (content_repo.md: servers SHOULD freeze, at their choosing).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { makePng, rawRequest, upload } from './helpers.js';

describe('legacy media endpoints', { timeout: 60_000 }, () => {
  const servers: TestServer[] = [];
  after(async () => {
    for (const s of servers) await s.stop();
  });

  it('without a freeze, legacy upload, download and thumbnail serve everything, unauthenticated', async () => {
    const server = await startTestServer();
    servers.push(server);
    const alice = await server.registerUser();
    const png = await makePng(64, 64);
    for (const version of ['v3', 'r0']) {
      const up = await rawRequest(server, 'POST', `/_matrix/media/${version}/upload?filename=a.png`, {
        token: alice.accessToken,
        body: png,
        headers: { 'content-type': 'image/png' },
      });
      assert.equal(up.status, 200, version);
      const id = (up.json.content_uri as string).split('/').pop();
      const dl = await rawRequest(server, 'GET', `/_matrix/media/${version}/download/${server.serverName}/${id}`);
      assert.equal(dl.status, 200);
      assert.ok(dl.bytes.equals(png));
      assert.equal(dl.headers.get('content-disposition'), 'inline; filename="a.png"');
      const named = await rawRequest(server, 'GET', `/_matrix/media/${version}/download/${server.serverName}/${id}/b.png`);
      assert.equal(named.headers.get('content-disposition'), 'inline; filename="b.png"');
      const th = await rawRequest(server, 'GET', `/_matrix/media/${version}/thumbnail/${server.serverName}/${id}?width=32&height=32&method=crop`);
      assert.equal(th.status, 200);
      assert.equal(th.headers.get('content-type'), 'image/png');
    }
  });

  it('with legacy_freeze_ts set, legacy download and thumbnail serve only media created before it', async () => {
    const freeze = Date.now();
    const server = await startTestServer({ config: { media: { legacy_freeze_ts: freeze } } });
    servers.push(server);
    const alice = await server.registerUser();
    const png = await makePng(64, 64);
    const realNow = server.hs.ctx.now;
    server.hs.ctx.now = () => freeze - 60_000;
    const old = await upload(server, alice.accessToken, png, 'image/png');
    server.hs.ctx.now = () => freeze + 60_000;
    const fresh = await upload(server, alice.accessToken, png, 'image/png');
    server.hs.ctx.now = realNow;

    const legacy = (kind: string, id: string, q = '') => rawRequest(server, 'GET', `/_matrix/media/v3/${kind}/${server.serverName}/${id}${q}`);
    assert.equal((await legacy('download', old.mediaId)).status, 200);
    assert.equal((await legacy('thumbnail', old.mediaId, '?width=32&height=32')).status, 200);
    for (const [kind, q] of [['download', ''], ['thumbnail', '?width=32&height=32']]) {
      const res = await legacy(kind, fresh.mediaId, q);
      assert.equal(res.status, 404, kind);
      assert.equal(res.json.errcode, 'M_NOT_FOUND');
    }
    // The authenticated endpoints serve both.
    for (const id of [old.mediaId, fresh.mediaId]) {
      const res = await rawRequest(server, 'GET', `/_matrix/client/v1/media/download/${server.serverName}/${id}`, { token: alice.accessToken });
      assert.equal(res.status, 200);
      assert.ok(res.bytes.equals(png));
    }
  });
});
