import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { C, createRoom, join, send, sync } from './util.js';

/**
 * Read-modify-write of per-user data under concurrent requests, as a client
 * with several tabs (or a bridge) makes them: nothing may be lost, and the
 * table, /sync and the stream must agree afterwards.
 */
describe('concurrent writers of tags, account data and receipts', () => {
  let s: TestServer;
  let alice: TestUser;
  let bob: TestUser;
  let roomId: string;

  before(async () => {
    s = await startTestServer();
    alice = await s.registerUser('cw_alice');
    bob = await s.registerUser('cw_bob');
    roomId = await createRoom(s, alice, { preset: 'public_chat' });
    await join(s, bob, roomId);
  });
  after(async () => {
    await s.stop();
  });

  const tagsPath = (tag?: string) =>
    `${C}/user/${encodeURIComponent(alice.userId)}/rooms/${encodeURIComponent(roomId)}/tags${tag === undefined ? '' : `/${encodeURIComponent(tag)}`}`;

  it('30 concurrent tag PUTs on one room keep all 30 tags (GET tags and /sync m.tag)', async () => {
    const before = await sync(s, alice);
    const names = Array.from({ length: 30 }, (_, i) => `u.tag${i}`);
    const results = await Promise.all(names.map((t, i) => s.request('PUT', tagsPath(t), { token: alice.accessToken, body: { order: i / 100 } })));
    for (const r of results) assert.equal(r.status, 200, JSON.stringify(r.body));

    const got = await s.request('GET', tagsPath(), { token: alice.accessToken });
    assert.deepEqual(Object.keys(got.body.tags).sort(), [...names].sort());

    const tagsInSync = (body: any): string[] =>
      Object.keys(body.rooms.join[roomId]?.account_data.events.find((e: any) => e.type === 'm.tag')?.content.tags ?? {}).sort();
    assert.deepEqual(tagsInSync(await sync(s, alice)), [...names].sort(), 'initial /sync');
    assert.deepEqual(tagsInSync(await sync(s, alice, { since: before.next_batch })), [...names].sort(), 'incremental /sync');

    // Concurrent deletes of half of them leave exactly the other half.
    const gone = names.filter((_, i) => i % 2 === 0);
    const dels = await Promise.all(gone.map((t) => s.request('DELETE', tagsPath(t), { token: alice.accessToken })));
    for (const r of dels) assert.equal(r.status, 200);
    const kept = names.filter((_, i) => i % 2 === 1).sort();
    assert.deepEqual(Object.keys((await s.request('GET', tagsPath(), { token: alice.accessToken })).body.tags).sort(), kept);
    assert.deepEqual(tagsInSync(await sync(s, alice)), kept);
  });

  it('20 concurrent m.read receipts on 20 events sent in order leave the receipt on the newest event, in the table, /sync and the stream', async () => {
    const eventIds: string[] = [];
    for (let i = 0; i < 20; i++) eventIds.push(await send(s, bob, roomId, `msg ${i}`));
    const newest = eventIds[eventIds.length - 1];
    const bobBefore = (await sync(s, bob)).next_batch;

    const results = await Promise.all(
      eventIds.map((id) =>
        s.request('POST', `${C}/rooms/${encodeURIComponent(roomId)}/receipt/m.read/${encodeURIComponent(id)}`, { token: alice.accessToken, body: {} }),
      ),
    );
    for (const r of results) assert.equal(r.status, 200, JSON.stringify(r.body));

    // The table: one m.read per (user, room, thread), on the newest event.
    const rows = await s.hs.ctx.db
      .selectFrom('sync_receipts')
      .selectAll()
      .where('room_id', '=', roomId)
      .where('user_id', '=', alice.userId)
      .execute();
    assert.equal(rows.length, 1);
    assert.equal(rows[0].event_id, newest);

    const aliceReadIn = (body: any): string[] => {
      const content = body.rooms.join[roomId]?.ephemeral.events.find((e: any) => e.type === 'm.receipt')?.content ?? {};
      return Object.keys(content).filter((ev) => content[ev]['m.read']?.[alice.userId]);
    };
    assert.deepEqual(aliceReadIn(await sync(s, bob)), [newest], 'initial /sync');
    assert.deepEqual(aliceReadIn(await sync(s, bob, { since: bobBefore })), [newest], 'incremental /sync');

    // The stream: the receipt row's position is the head of the receipts stream,
    // so a client that synced up to the head has seen the final receipt.
    const head = await s.hs.ctx.db.selectFrom('stream_positions').select('pos').where('stream', '=', 'receipts').executeTakeFirstOrThrow();
    assert.equal(Number(rows[0].stream_pos), Number(head.pos));

    // An older receipt sent afterwards does not move it back.
    const back = await s.request('POST', `${C}/rooms/${encodeURIComponent(roomId)}/receipt/m.read/${encodeURIComponent(eventIds[3])}`, {
      token: alice.accessToken,
      body: {},
    });
    assert.equal(back.status, 200);
    assert.deepEqual(aliceReadIn(await sync(s, bob)), [newest]);
  });

  it('concurrent m.fully_read markers leave the marker on the newest event', async () => {
    const eventIds: string[] = [];
    for (let i = 0; i < 10; i++) eventIds.push(await send(s, bob, roomId, `fr ${i}`));
    const results = await Promise.all(
      eventIds.map((id) =>
        s.request('POST', `${C}/rooms/${encodeURIComponent(roomId)}/read_markers`, { token: alice.accessToken, body: { 'm.fully_read': id } }),
      ),
    );
    for (const r of results) assert.equal(r.status, 200, JSON.stringify(r.body));
    const marker = await s.request('GET', `${C}/user/${encodeURIComponent(alice.userId)}/rooms/${encodeURIComponent(roomId)}/account_data/m.fully_read`, {
      token: alice.accessToken,
    });
    assert.equal(marker.body.event_id, eventIds[eventIds.length - 1]);
  });
});
