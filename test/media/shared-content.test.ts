/**
 * Bytes are stored once per content hash and shared by every row with that hash, so deleting
 * "unreferenced" bytes races with a new row for the same bytes: the upload has stored its bytes
 * and not yet committed its row when the last other row's deletion (or the orphan sweep) finds
 * no row and deletes them. The test holds an upload at exactly that point (between the store's
 * `put` and the row's commit), runs the deletion, then lets the upload go on: the upload must
 * not commit a row whose file is gone (it answers 503, and a retry stores the bytes again).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { MediaStore } from '../../src/media/media-store.js';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { rawRequest, upload } from './helpers.js';

/** Holds the store's next `put` after its bytes are stored, until released. */
function holdNextPut(store: MediaStore): { stored: Promise<void>; release(): void } {
  const real = store.put.bind(store);
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let reached!: () => void;
  const stored = new Promise<void>((r) => (reached = r));
  store.put = async (content) => {
    store.put = real;
    const result = await real(content);
    reached();
    await gate;
    return result;
  };
  return { stored, release };
}

describe('bytes shared by content hash', { timeout: 60_000 }, () => {
  let server: TestServer;
  let alice: TestUser;
  let admin: TestUser;

  before(async () => {
    server = await startTestServer({ config: { media: { orphan_grace_ms: 1 } } });
    alice = await server.registerUser('share_alice');
    admin = await server.registerUser('share_admin', { admin: true });
  });
  after(async () => {
    await server?.stop();
  });

  const media = () => server.hs.ctx.services.media;
  const post = (bytes: Buffer) =>
    rawRequest(server, 'POST', '/_matrix/media/v3/upload', { token: alice.accessToken, body: bytes, headers: { 'content-type': 'text/plain' } });

  /** Every local row with content has its bytes in the store. */
  async function assertNoRowWithoutFile(): Promise<void> {
    const rows = await server.hs.ctx.db.selectFrom('local_media').select(['media_id', 'sha256']).where('sha256', 'is not', null).execute();
    for (const r of rows) assert.ok(await media().store.has(r.sha256!), `the file of ${r.media_id}`);
  }

  it('an upload of the same bytes as media an admin deletes meanwhile does not commit a row without its file', async () => {
    const bytes = Buffer.from(`shared bytes ${Date.now()}`);
    const first = await upload(server, alice.accessToken, bytes, 'text/plain');
    const held = holdNextPut(media().store);
    const second = post(bytes);
    await held.stored;
    // The first item was the only row using these bytes: its deletion deletes them.
    const del = await server.request('DELETE', `/_synapse/admin/v1/media/${server.serverName}/${first.mediaId}`, { token: admin.accessToken });
    assert.equal(del.status, 200);
    held.release();
    const res = await second;
    assert.equal(res.status, 503, res.bytes.toString());
    assert.equal(res.json.errcode, 'M_UNKNOWN');
    await assertNoRowWithoutFile();

    // Sent again, the bytes are stored again and served.
    const retry = await post(bytes);
    assert.equal(retry.status, 200);
    const dl = await rawRequest(server, 'GET', `/_matrix/client/v1/media/download/${(retry.json.content_uri as string).slice(6)}`, { token: alice.accessToken });
    assert.equal(dl.status, 200);
    assert.ok(dl.bytes.equals(bytes));
  });

  it('the orphan sweep does not delete bytes whose row is being committed', async () => {
    const bytes = Buffer.from(`new bytes ${Date.now()}`);
    const held = holdNextPut(media().store);
    const res = post(bytes);
    await held.stored;
    // Older than the 1 ms grace, and no row yet: the sweep takes the bytes.
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(await media().retention.sweepOrphans(), 1);
    held.release();
    assert.equal((await res).status, 503);
    await assertNoRowWithoutFile();
  });
});
