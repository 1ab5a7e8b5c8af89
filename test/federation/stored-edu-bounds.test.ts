// Stored outbound EDUs stay bounded while their server is away (stored-edu-pruner.ts): a read
// receipt that a newer one of the same user, room and thread repeats is dropped, and so is any
// row older than federation.stored_edu_max_age_ms; what is left reaches the server once it is back.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import type { TestServer, TestUser } from '../helpers/server.js';
import { C, createRoom, e, expectStatus, sendText, txn } from '../rooms/room-helpers.js';
import { eventually, startServers } from './federation-helpers.js';

const DAY = 24 * 3600_000;

describe('stored outbound EDUs of a server that stays away', { timeout: 120_000 }, () => {
  let a: TestServer;
  let b: TestServer;
  let stop: () => Promise<void>;
  let alice: TestUser;
  let bob: TestUser;
  let roomId: string;

  /** The EDUs a.test keeps for b.test, oldest first. */
  async function storedForB(): Promise<{ edu_type: string; content: any }[]> {
    const rows = await a.hs.ctx.db
      .selectFrom('federation_outbound_edus')
      .select(['edu_type', 'content_json'])
      .where('destination', '=', 'b.test')
      .orderBy('pos')
      .execute();
    return rows.map((r) => ({ edu_type: r.edu_type, content: JSON.parse(r.content_json) }));
  }

  async function receipt(eventId: string, body: Record<string, unknown> = {}): Promise<void> {
    expectStatus(await a.request('POST', `${C}/rooms/${e(roomId)}/receipt/m.read/${e(eventId)}`, { token: alice.accessToken, body }), 200);
  }

  async function toDevice(content: Record<string, unknown>): Promise<void> {
    expectStatus(await a.request('PUT', `${C}/sendToDevice/m.test/${txn()}`, { token: alice.accessToken, body: { messages: { [bob.userId]: { [bob.deviceId]: content } } } }), 200);
  }

  before(async () => {
    const started = await startServers(['a.test', 'b.test']);
    [a, b] = started.servers as [TestServer, TestServer];
    stop = started.stop;
    alice = await a.registerUser('alice');
    bob = await b.registerUser('bob');
    roomId = await createRoom(a, alice, { preset: 'public_chat' });
    expectStatus(await b.request('POST', `${C}/join/${e(roomId)}?via=a.test`, { token: bob.accessToken, body: {} }), 200);
    const sender = a.hs.ctx.services.federation.sender;
    sender.backoff.initialMs = 200;
    sender.backoff.maxMs = 400;
  });
  after(async () => {
    await stop();
  });

  it('keeps the newest receipt per user, room and thread, drops rows past the age cap, and sends the rest', async () => {
    const ids = [await sendText(a, alice, roomId, 'one'), await sendText(a, alice, roomId, 'two'), await sendText(a, alice, roomId, 'three')];
    await a.hs.ctx.services.federation.sender.idle();
    await b.hs.stop();
    for (const id of ids) await receipt(id);
    await receipt(ids[1]!, { thread_id: 'main' });
    await toDevice({ n: 'old' });
    await toDevice({ n: 'recent' });
    await eventually(async () => (await storedForB()).length === 6, 'six EDUs stored for b.test');
    // The first to-device message was stored eight days ago.
    await sql`update federation_outbound_edus set created_ts = created_ts - ${8 * DAY} where edu_type = 'm.direct_to_device' and content_json like '%"old"%'`.execute(a.hs.ctx.db);

    assert.equal(await a.hs.ctx.services.federation.storedEduPruner.prune(), 3);
    const left = await storedForB();
    const receipts = left.filter((r) => r.edu_type === 'm.receipt').map((r) => r.content[roomId]['m.read'][alice.userId]);
    assert.deepEqual(
      receipts.map((r) => [r.event_ids[0], r.data.thread_id ?? null]),
      [[ids[2], null], [ids[1], 'main']],
    );
    const messages = left.filter((r) => r.edu_type === 'm.direct_to_device').map((r) => r.content.messages[bob.userId][bob.deviceId]);
    assert.deepEqual(messages, [{ n: 'recent' }]);
    assert.equal(await a.hs.ctx.services.federation.storedEduPruner.prune(), 0, 'nothing more to drop');

    await b.restart();
    await b.hs.ctx.services.federation.client.request('a.test', { method: 'GET', path: `/_matrix/federation/v1/query/profile?user_id=${e(alice.userId)}` });
    await eventually(async () => (await storedForB()).length === 0, 'b.test took what was left');
    const res = await b.request('GET', `${C}/sync`, { token: bob.accessToken });
    expectStatus(res, 200);
    const read = (res.body.rooms?.join?.[roomId]?.ephemeral?.events ?? []).find((ev: any) => ev.type === 'm.receipt')?.content;
    assert.ok(read?.[ids[2]!]?.['m.read']?.[alice.userId], JSON.stringify(read));
    assert.deepEqual((res.body.to_device?.events ?? []).map((m: any) => m.content), [{ n: 'recent' }]);
  });
});
