/**
 * Retention: the cache of other servers' media expires by last access
 * (`media.remote_cache_lifetime_ms`, and the admin `purge_media_cache`), stored files no row
 * refers to are swept once older than `media.orphan_grace_ms`, and admins purge local media by
 * uploader, by age and by the room whose events refer to it.
 */
import assert from 'node:assert/strict';
import { utimesSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { startPair, type Pair } from '../federation/federation-helpers.js';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { createRoom, send } from '../rooms/room-helpers.js';
import { makePng, rawRequest, upload } from './helpers.js';

const e = encodeURIComponent;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('remote media cache expiry', { timeout: 90_000 }, () => {
  let pair: Pair;
  let alice: TestUser;
  let bob: TestUser;
  let admin: TestUser;
  const LIFETIME = 1500;

  before(async () => {
    // A long interval: the test runs the sweep itself.
    pair = await startPair({}, { b: { media: { remote_cache_lifetime_ms: LIFETIME, retention_interval_ms: 3600_000 } } });
    alice = await pair.a.registerUser('ret_alice');
    bob = await pair.b.registerUser('ret_bob');
    admin = await pair.b.registerUser('ret_admin', { admin: true });
  });
  after(async () => {
    await pair?.stop();
  });

  const fetchOnB = (mediaId: string) => rawRequest(pair.b, 'GET', `/_matrix/client/v1/media/download/a.test/${mediaId}`, { token: bob.accessToken });
  const cachedOnB = async () =>
    (await pair.b.hs.ctx.db.selectFrom('remote_media').select('media_id').orderBy('media_id').execute()).map((r) => r.media_id);

  it('media not served for the configured lifetime leaves the cache, bytes and all; recently served media stays', async () => {
    const old = await upload(pair.a, alice.accessToken, Buffer.from('old remote bytes'), 'text/plain');
    const fresh = await upload(pair.a, alice.accessToken, Buffer.from('fresh remote bytes'), 'text/plain');
    assert.equal((await fetchOnB(old.mediaId)).status, 200);
    const oldRow = await pair.b.hs.ctx.db.selectFrom('remote_media').selectAll().where('media_id', '=', old.mediaId).executeTakeFirstOrThrow();
    await sleep(LIFETIME + 200);
    assert.equal((await fetchOnB(fresh.mediaId)).status, 200);

    await pair.b.hs.ctx.services.media.retention.sweep();
    assert.deepEqual(await cachedOnB(), [fresh.mediaId]);
    assert.equal(await pair.b.hs.ctx.services.media.store.has(oldRow.sha256), false, 'the expired bytes are deleted');
    // Asked for again, it is fetched again.
    const again = await fetchOnB(old.mediaId);
    assert.equal(again.status, 200);
    assert.equal(again.bytes.toString(), 'old remote bytes');
  });

  it('an admin purges the remote cache by last access; others may not', async () => {
    const m = await upload(pair.a, alice.accessToken, await makePng(50, 50), 'image/png');
    assert.equal((await fetchOnB(m.mediaId)).status, 200);
    const th = await rawRequest(pair.b, 'GET', `/_matrix/client/v1/media/thumbnail/a.test/${m.mediaId}?width=32&height=32&method=crop`, { token: bob.accessToken });
    assert.equal(th.status, 200);
    const forbidden = await pair.b.request('POST', `/_synapse/admin/v1/purge_media_cache?before_ts=${Date.now() + 1000}`, { token: bob.accessToken });
    assert.equal(forbidden.status, 403);
    assert.equal(forbidden.body.errcode, 'M_FORBIDDEN');
    const res = await pair.b.request('POST', `/_synapse/admin/v1/purge_media_cache?before_ts=${Date.now() + 1000}`, { token: admin.accessToken });
    assert.equal(res.status, 200);
    assert.ok(res.body.deleted >= 1);
    assert.deepEqual(await cachedOnB(), []);
    const thumbs = await pair.b.hs.ctx.db.selectFrom('remote_media_thumbnails').select('media_id').execute();
    assert.deepEqual(thumbs, []);
    const missing = await pair.b.request('POST', '/_synapse/admin/v1/purge_media_cache', { token: admin.accessToken });
    assert.equal(missing.status, 400);
  });
});

describe('orphan sweep and admin purges', { timeout: 90_000 }, () => {
  let server: TestServer;
  let alice: TestUser;
  let carol: TestUser;
  let admin: TestUser;
  const DAY = 24 * 3600_000;

  before(async () => {
    server = await startTestServer({ config: { media: { orphan_grace_ms: DAY } } });
    alice = await server.registerUser('purge_alice');
    carol = await server.registerUser('purge_carol');
    admin = await server.registerUser('purge_admin', { admin: true });
  });
  after(async () => {
    await server?.stop();
  });

  const media = () => server.hs.ctx.services.media;
  const fileOf = (sha: string) => join(server.dataDir, 'media', sha.slice(0, 2), sha.slice(2, 4), sha);
  const age = (sha: string, ms: number) => {
    const t = new Date(Date.now() - ms);
    utimesSync(fileOf(sha), t, t);
  };
  const download = (mediaId: string) => rawRequest(server, 'GET', `/_matrix/client/v1/media/download/${server.serverName}/${mediaId}`, { token: alice.accessToken });

  it('files no row refers to are deleted once older than the grace period; others are kept', async () => {
    const oldOrphan = await media().store.put(Readable.from([Buffer.from('left by a crash long ago')]));
    const newOrphan = await media().store.put(Readable.from([Buffer.from('an upload whose row is about to commit')]));
    const used = await upload(server, alice.accessToken, Buffer.from('uploaded long ago, still used'), 'text/plain');
    const usedRow = await server.hs.ctx.db.selectFrom('local_media').selectAll().where('media_id', '=', used.mediaId).executeTakeFirstOrThrow();
    age(oldOrphan.sha256, 2 * DAY);
    age(usedRow.sha256!, 2 * DAY);

    assert.equal(await media().retention.sweepOrphans(), 1);
    assert.equal(await media().store.has(oldOrphan.sha256), false);
    assert.equal(await media().store.has(newOrphan.sha256), true, 'within the grace period');
    assert.equal(await media().store.has(usedRow.sha256!), true, 'referenced');
    assert.equal((await download(used.mediaId)).status, 200);
  });

  it('an admin deletes all media of a user; others\' media stays; non-admins are refused', async () => {
    const a1 = await upload(server, alice.accessToken, Buffer.from('alice one'), 'text/plain');
    const a2 = await upload(server, alice.accessToken, await makePng(300, 300), 'image/png');
    const c1 = await upload(server, carol.accessToken, Buffer.from('carol one'), 'text/plain');
    await media().thumbnails.whenReady(a2.mediaId);
    const refused = await server.request('DELETE', `/_synapse/admin/v1/users/${e(alice.userId)}/media`, { token: carol.accessToken });
    assert.equal(refused.status, 403);

    const res = await server.request('DELETE', `/_synapse/admin/v1/users/${e(alice.userId)}/media`, { token: admin.accessToken });
    assert.equal(res.status, 200);
    assert.ok(res.body.deleted_media.includes(a1.mediaId) && res.body.deleted_media.includes(a2.mediaId));
    assert.equal(res.body.total, res.body.deleted_media.length);
    assert.equal((await download(a1.mediaId)).status, 404);
    assert.equal((await download(a2.mediaId)).status, 404);
    assert.equal((await download(c1.mediaId)).status, 200);
    const thumbs = await server.hs.ctx.db.selectFrom('media_thumbnails').select('media_id').where('media_id', '=', a2.mediaId).execute();
    assert.deepEqual(thumbs, []);
  });

  it('an admin deletes media uploaded before a time, optionally only the larger ones', async () => {
    const small = await upload(server, carol.accessToken, Buffer.from('small'), 'text/plain');
    const large = await upload(server, carol.accessToken, Buffer.alloc(5000, 1), 'application/octet-stream');
    await sleep(5);
    const cut = Date.now();
    await sleep(5);
    const later = await upload(server, carol.accessToken, Buffer.alloc(6000, 2), 'application/octet-stream');

    const bySize = await server.request('POST', `/_synapse/admin/v1/media/delete?before_ts=${cut}&size_gt=1000`, { token: admin.accessToken });
    assert.equal(bySize.status, 200);
    assert.ok(bySize.body.deleted_media.includes(large.mediaId));
    assert.ok(!bySize.body.deleted_media.includes(small.mediaId));
    assert.ok(!bySize.body.deleted_media.includes(later.mediaId));
    const all = await server.request('POST', `/_synapse/admin/v1/media/delete?before_ts=${cut}`, { token: admin.accessToken });
    assert.ok(all.body.deleted_media.includes(small.mediaId));
    assert.equal((await download(small.mediaId)).status, 404);
    assert.equal((await download(later.mediaId)).status, 200);
    const bad = await server.request('POST', '/_synapse/admin/v1/media/delete?before_ts=yesterday', { token: admin.accessToken });
    assert.equal(bad.status, 400);
  });

  it('an admin lists and deletes the media a room\'s events refer to', async () => {
    const roomId = await createRoom(server, alice, { name: 'pictures' });
    const image = await upload(server, alice.accessToken, await makePng(64, 64), 'image/png', 'cat.png');
    const thumb = await upload(server, alice.accessToken, await makePng(16, 16), 'image/png');
    const elsewhere = await upload(server, alice.accessToken, Buffer.from('not in the room'), 'text/plain');
    await send(server, alice, roomId, { msgtype: 'm.image', body: 'cat.png', url: image.mxc, info: { mimetype: 'image/png', thumbnail_url: thumb.mxc } });
    await send(server, alice, roomId, { msgtype: 'm.file', body: 'far.bin', url: 'mxc://far.example/RemoteMediaId' });

    const listed = await server.request('GET', `/_synapse/admin/v1/room/${e(roomId)}/media`, { token: admin.accessToken });
    assert.equal(listed.status, 200);
    assert.deepEqual(listed.body, { local: [image.mxc, thumb.mxc].sort(), remote: ['mxc://far.example/RemoteMediaId'] });

    const res = await server.request('DELETE', `/_synapse/admin/v1/room/${e(roomId)}/media`, { token: admin.accessToken });
    assert.equal(res.status, 200);
    assert.deepEqual([...res.body.deleted_media].sort(), [image.mediaId, thumb.mediaId].sort());
    assert.equal((await download(image.mediaId)).status, 404);
    assert.equal((await download(thumb.mediaId)).status, 404);
    assert.equal((await download(elsewhere.mediaId)).status, 200);
    const refused = await server.request('DELETE', `/_synapse/admin/v1/room/${e(roomId)}/media`, { token: alice.accessToken });
    assert.equal(refused.status, 403);
  });

  it('the purge by room reaches media named only by events that were redacted since', async () => {
    const roomId = await createRoom(server, alice, { name: 'regrets' });
    const image = await upload(server, alice.accessToken, await makePng(32, 32), 'image/png', 'oops.png');
    const thumb = await upload(server, alice.accessToken, await makePng(8, 8), 'image/png');
    const eventId = await send(server, alice, roomId, { msgtype: 'm.image', body: 'oops.png', url: image.mxc, info: { thumbnail_url: thumb.mxc } });
    const redacted = await server.request('PUT', `/_matrix/client/v3/rooms/${e(roomId)}/redact/${e(eventId)}/t-${Date.now()}`, {
      token: alice.accessToken,
      body: { reason: 'wrong picture' },
    });
    assert.equal(redacted.status, 200);
    // The redacted event is served without its content: the references survive only where the server kept them.
    const seen = await server.request('GET', `/_matrix/client/v3/rooms/${e(roomId)}/event/${e(eventId)}`, { token: alice.accessToken });
    assert.deepEqual(seen.body.content, {});

    const listed = await server.request('GET', `/_synapse/admin/v1/room/${e(roomId)}/media`, { token: admin.accessToken });
    assert.deepEqual(listed.body, { local: [image.mxc, thumb.mxc].sort(), remote: [] });
    const res = await server.request('DELETE', `/_synapse/admin/v1/room/${e(roomId)}/media`, { token: admin.accessToken });
    assert.equal(res.status, 200);
    assert.deepEqual([...res.body.deleted_media].sort(), [image.mediaId, thumb.mediaId].sort());
    assert.equal((await download(image.mediaId)).status, 404);
    assert.equal((await download(thumb.mediaId)).status, 404);
  });
});

describe('local media lifetime by last access', { timeout: 90_000 }, () => {
  let server: TestServer;
  let alice: TestUser;
  const LIFETIME = 2000;

  before(async () => {
    // A long interval: the test runs the sweep itself.
    server = await startTestServer({ config: { media: { local_lifetime_ms: LIFETIME, retention_interval_ms: 3600_000 } } });
    alice = await server.registerUser('life_alice');
  });
  after(async () => {
    await server?.stop();
  });

  const download = (mediaId: string) => rawRequest(server, 'GET', `/_matrix/client/v1/media/download/${server.serverName}/${mediaId}`, { token: alice.accessToken });
  const thumbnail = (mediaId: string) =>
    rawRequest(server, 'GET', `/_matrix/client/v1/media/thumbnail/${server.serverName}/${mediaId}?width=32&height=32&method=crop`, { token: alice.accessToken });

  it('media not downloaded for the lifetime is deleted; downloads and thumbnails keep media alive', async () => {
    const unused = await upload(server, alice.accessToken, Buffer.from('nobody reads this'), 'text/plain');
    const read = await upload(server, alice.accessToken, Buffer.from('read now and then'), 'text/plain');
    const shown = await upload(server, alice.accessToken, await makePng(100, 100), 'image/png');
    const unusedRow = await server.hs.ctx.db.selectFrom('local_media').selectAll().where('media_id', '=', unused.mediaId).executeTakeFirstOrThrow();
    // Served within every quarter of the lifetime, for longer than the lifetime.
    for (let i = 0; i < 5; i++) {
      await sleep(LIFETIME / 4);
      assert.equal((await download(read.mediaId)).status, 200);
      assert.equal((await thumbnail(shown.mediaId)).status, 200);
    }
    await server.hs.ctx.services.media.retention.sweep();
    assert.equal((await download(unused.mediaId)).status, 404, 'not served for the lifetime: deleted');
    assert.equal(await server.hs.ctx.services.media.store.has(unusedRow.sha256!), false, 'bytes and all');
    assert.equal((await download(read.mediaId)).status, 200);
    assert.equal((await download(shown.mediaId)).status, 200);
  });
});

describe('retention runs by itself', { timeout: 60_000 }, () => {
  let server: TestServer;
  let alice: TestUser;

  before(async () => {
    // The grace is longer than an upload takes here: with a shorter one, a sweep can take an upload's
    // file between its write and its row, and the upload is refused with "try again" (as it should be).
    server = await startTestServer({ config: { media: { orphan_grace_ms: 500, retention_interval_ms: 200 } } });
    alice = await server.registerUser('timer_alice');
  });
  after(async () => {
    await server?.stop();
  });

  it('every retention_interval_ms, without anyone asking, orphaned files go and used ones stay', async () => {
    const media = server.hs.ctx.services.media;
    const used = await upload(server, alice.accessToken, Buffer.from('still used'), 'text/plain');
    const usedRow = await server.hs.ctx.db.selectFrom('local_media').selectAll().where('media_id', '=', used.mediaId).executeTakeFirstOrThrow();
    const orphan = await media.store.put(Readable.from([Buffer.from('nobody refers to this')]));
    for (let i = 0; i < 100 && (await media.store.has(orphan.sha256)); i++) await sleep(50);
    assert.equal(await media.store.has(orphan.sha256), false, 'the periodic sweep removed the orphan');
    assert.equal(await media.store.has(usedRow.sha256!), true);
  });
});
