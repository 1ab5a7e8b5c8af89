/**
 * Media on S3 in a cluster (DESIGN.md 5: "media on S3-compatible storage"): two nodes on one
 * PostgreSQL database, each with a data folder of its own, share one bucket (an s3rver the test
 * starts on loopback), so every node serves every file: what one node received, the other
 * downloads, ranges and thumbnails; an upload to an id `create`d on one node wakes a download
 * waiting on the other; an admin's deletion on one node is seen by both.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { NEEDS_PG, startNodes, stopNodes } from '../cluster/cluster-helpers.js';
import type { TestServer, TestUser } from '../helpers/server.js';
import { makeJpeg, rawRequest, upload } from './helpers.js';
import { startS3, type TestS3 } from './s3-helpers.js';

describe('media on S3 across cluster nodes', { timeout: 90_000, skip: NEEDS_PG }, () => {
  let s3: TestS3;
  let nodes: TestServer[] = [];
  let alice: TestUser;
  let admin: TestUser;

  before(async () => {
    s3 = await startS3();
    nodes = await startNodes(2, { config: { media: { s3: s3.settings } } });
    alice = await nodes[0]!.registerUser('s3c_alice');
    admin = await nodes[0]!.registerUser('s3c_admin', { admin: true });
  });
  after(async () => {
    await stopNodes(nodes);
    await s3?.close();
  });

  const download = (node: TestServer, mediaId: string, query = '', headers: Record<string, string> = {}) =>
    rawRequest(node, 'GET', `/_matrix/client/v1/media/download/${node.serverName}/${mediaId}${query}`, { token: alice.accessToken, headers });

  it('a file uploaded to one node is served by the other: whole, by range and as thumbnails', async () => {
    assert.notEqual(nodes[0]!.dataDir, nodes[1]!.dataDir, 'the nodes share no local folder');
    const bytes = Buffer.from('uploaded to the first node '.repeat(200));
    const text = await upload(nodes[0]!, alice.accessToken, bytes, 'text/plain', 'first.txt');
    const whole = await download(nodes[1]!, text.mediaId);
    assert.equal(whole.status, 200, whole.bytes.toString());
    assert.ok(whole.bytes.equals(bytes));
    assert.equal(whole.headers.get('content-disposition'), 'inline; filename="first.txt"');
    const part = await download(nodes[1]!, text.mediaId, '', { range: 'bytes=0-7' });
    assert.equal(part.status, 206);
    assert.equal(part.bytes.toString(), 'uploaded');

    const photo = await upload(nodes[0]!, alice.accessToken, await makeJpeg(640, 480), 'image/jpeg');
    const th = await rawRequest(nodes[1]!, 'GET', `/_matrix/client/v1/media/thumbnail/${nodes[1]!.serverName}/${photo.mediaId}?width=96&height=96&method=crop`, {
      token: alice.accessToken,
    });
    assert.equal(th.status, 200);
    const meta = await sharp(th.bytes).metadata();
    assert.deepEqual([meta.width, meta.height], [96, 96]);
  });

  it('content PUT to an id created on one node reaches a download waiting on the other', async () => {
    const created = await rawRequest(nodes[0]!, 'POST', '/_matrix/media/v1/create', { token: alice.accessToken });
    assert.equal(created.status, 200);
    const mediaId = (created.json.content_uri as string).split('/').pop()!;
    const waiting = download(nodes[1]!, mediaId, '?timeout_ms=15000');
    await new Promise((r) => setTimeout(r, 300));
    const put = await rawRequest(nodes[0]!, 'PUT', `/_matrix/media/v3/upload/${nodes[0]!.serverName}/${mediaId}`, {
      token: alice.accessToken,
      body: Buffer.from('arrived on the first node'),
      headers: { 'content-type': 'text/plain' },
    });
    assert.equal(put.status, 200);
    const got = await waiting;
    assert.equal(got.status, 200);
    assert.equal(got.bytes.toString(), 'arrived on the first node');
  });

  it('an admin deletion on one node removes the file for both', async () => {
    const m = await upload(nodes[1]!, alice.accessToken, Buffer.from('short-lived'), 'text/plain');
    assert.equal((await download(nodes[0]!, m.mediaId)).status, 200);
    const del = await nodes[0]!.request('DELETE', `/_synapse/admin/v1/media/${nodes[0]!.serverName}/${m.mediaId}`, { token: admin.accessToken });
    assert.equal(del.status, 200);
    for (const node of nodes) assert.equal((await download(node, m.mediaId)).status, 404);
  });
});
