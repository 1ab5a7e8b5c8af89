/**
 * A server configured with `media.s3` keeps its media in the bucket, not on local disk: uploads,
 * downloads (whole and by range), thumbnails and admin deletion all go through S3 (an s3rver
 * started by the test on loopback). A config that names an unknown S3 key is refused at start.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { makeJpeg, rawRequest, upload } from './helpers.js';
import { startS3, type TestS3 } from './s3-helpers.js';

describe('media on S3', { timeout: 90_000 }, () => {
  let s3: TestS3;
  let server: TestServer;
  let alice: TestUser;
  let admin: TestUser;

  /** The object keys in the bucket. */
  const objects = () => readdirSync(join(s3.directory, s3.settings.bucket)).filter((n) => /^[0-9a-f]{64}/.test(n)).map((n) => n.slice(0, 64));

  before(async () => {
    s3 = await startS3();
    server = await startTestServer({ config: { media: { s3: s3.settings, orphan_grace_ms: 1000 } } });
    alice = await server.registerUser('s3_alice');
    admin = await server.registerUser('s3_admin', { admin: true });
  });
  after(async () => {
    await server?.stop();
    await s3?.close();
  });

  it('an upload lands in the bucket and downloads back, whole and by range', async () => {
    const bytes = Buffer.from('stored in a bucket '.repeat(500));
    const { mediaId } = await upload(server, alice.accessToken, bytes, 'text/plain', 'bucket.txt');
    const row = await server.hs.ctx.db.selectFrom('local_media').selectAll().where('media_id', '=', mediaId).executeTakeFirstOrThrow();
    assert.ok(objects().includes(row.sha256!), 'the object is in the bucket');
    // Nothing but the (empty) staging folder on local disk.
    const media = join(server.dataDir, 'media');
    assert.deepEqual(existsSync(media) ? readdirSync(media).filter((n) => n !== 'tmp') : [], []);
    assert.deepEqual(existsSync(join(media, 'tmp')) ? readdirSync(join(media, 'tmp')) : [], []);

    const dl = await rawRequest(server, 'GET', `/_matrix/client/v1/media/download/${server.serverName}/${mediaId}`, { token: alice.accessToken });
    assert.equal(dl.status, 200);
    assert.deepEqual(dl.bytes, bytes);
    const part = await rawRequest(server, 'GET', `/_matrix/client/v1/media/download/${server.serverName}/${mediaId}`, { token: alice.accessToken, headers: { range: 'bytes=7-15' } });
    assert.equal(part.status, 206);
    assert.equal(part.bytes.toString(), bytes.subarray(7, 16).toString());
  });

  it('thumbnails are made from and stored in the bucket; admin deletion removes the objects', async () => {
    const { mediaId } = await upload(server, alice.accessToken, await makeJpeg(800, 600), 'image/jpeg', 'photo.jpg');
    await server.hs.ctx.services.media.thumbnails.whenReady(mediaId);
    const th = await rawRequest(server, 'GET', `/_matrix/client/v1/media/thumbnail/${server.serverName}/${mediaId}?width=96&height=96&method=crop`, { token: alice.accessToken });
    assert.equal(th.status, 200);
    const meta = await sharp(th.bytes).metadata();
    assert.deepEqual([meta.width, meta.height], [96, 96]);
    const thumbs = await server.hs.ctx.db.selectFrom('media_thumbnails').select('sha256').where('media_id', '=', mediaId).execute();
    assert.ok(thumbs.length >= 4);
    for (const t of thumbs) assert.ok(objects().includes(t.sha256));

    const del = await server.request('DELETE', `/_synapse/admin/v1/media/${server.serverName}/${mediaId}`, { token: admin.accessToken });
    assert.equal(del.status, 200);
    for (const t of thumbs) assert.ok(!objects().includes(t.sha256), 'thumbnail objects are deleted');
  });

  it('the orphan sweep deletes unreferenced objects past the grace period and keeps referenced ones', async () => {
    const media = server.hs.ctx.services.media;
    const kept = await upload(server, alice.accessToken, Buffer.from('referenced object'), 'text/plain');
    const keptRow = await server.hs.ctx.db.selectFrom('local_media').selectAll().where('media_id', '=', kept.mediaId).executeTakeFirstOrThrow();
    const orphan = await media.store.put(Readable.from([Buffer.from('an object without a row')]));
    assert.equal(await media.retention.sweepOrphans(), 0, 'nothing is old enough yet');
    await new Promise((r) => setTimeout(r, 2100));
    assert.ok((await media.retention.sweepOrphans()) >= 1);
    assert.ok(!objects().includes(orphan.sha256));
    assert.ok(objects().includes(keptRow.sha256!));
  });

  it('an unknown key under media.s3 is refused when the config is loaded', async () => {
    await assert.rejects(
      startTestServer({ config: { media: { s3: { ...s3.settings, buckett: 'x' } } } }),
      /media\.s3: buckett is not a known setting/,
    );
  });
});
