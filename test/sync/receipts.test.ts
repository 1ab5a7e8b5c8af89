import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { C, createRoom, join, send, sleep, sync, syncPath } from './util.js';

describe('receipts and read markers (spec: Receipts, Read and unread markers)', () => {
  let s: TestServer;
  let alice: TestUser;
  let bob: TestUser;
  let eve: TestUser;
  let roomId: string;

  before(async () => {
    s = await startTestServer();
    alice = await s.registerUser('receipt_alice');
    bob = await s.registerUser('receipt_bob');
    eve = await s.registerUser('receipt_eve');
    roomId = await createRoom(s, alice, { preset: 'public_chat' });
    await join(s, bob, roomId);
  });
  after(async () => {
    await s.stop();
  });

  const receipt = (u: TestUser, type: string, eventId: string, body: unknown = {}, room = roomId) =>
    s.request('POST', `${C}/rooms/${encodeURIComponent(room)}/receipt/${type}/${encodeURIComponent(eventId)}`, { token: u.accessToken, body });
  const receiptsIn = (body: any): any =>
    body.rooms.join[roomId]?.ephemeral.events.find((e: any) => e.type === 'm.receipt')?.content;

  it('an m.read receipt reaches the other members in m.receipt, waking their long-poll', async () => {
    const eventId = await send(s, bob, roomId, 'read me');
    const token = (await sync(s, bob)).next_batch;
    const poll = s.request('GET', syncPath({ since: token, timeout: 10000 }), { token: bob.accessToken });
    await sleep(50);
    const res = await receipt(alice, 'm.read', eventId);
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, {});
    const r = await poll;
    const content = receiptsIn(r.body);
    assert.equal(typeof content?.[eventId]?.['m.read']?.[alice.userId]?.ts, 'number');
    assert.equal(content[eventId]['m.read'][alice.userId].thread_id, undefined, 'unthreaded');
    // An initial sync shows the current receipts too.
    const initial = await sync(s, bob);
    assert.ok(receiptsIn(initial)?.[eventId]?.['m.read']?.[alice.userId]);
  });

  it('an m.read.private receipt is only shown to its sender', async () => {
    const eventId = await send(s, bob, roomId, 'secretly read');
    const aliceToken = (await sync(s, alice)).next_batch;
    const bobToken = (await sync(s, bob)).next_batch;
    assert.equal((await receipt(alice, 'm.read.private', eventId)).status, 200);
    const mine = await sync(s, alice, { since: aliceToken });
    assert.ok(receiptsIn(mine)?.[eventId]?.['m.read.private']?.[alice.userId]);
    const theirs = await sync(s, bob, { since: bobToken });
    assert.equal(JSON.stringify(theirs).includes('m.read.private'), false);
    const theirInitial = await sync(s, bob);
    assert.equal(JSON.stringify(theirInitial.rooms.join[roomId].ephemeral).includes('m.read.private'), false);
  });

  it('a threaded receipt carries its thread_id', async () => {
    const eventId = await send(s, bob, roomId, 'main timeline');
    const token = (await sync(s, bob)).next_batch;
    assert.equal((await receipt(alice, 'm.read', eventId, { thread_id: 'main' })).status, 200);
    const body = await sync(s, bob, { since: token });
    assert.equal(receiptsIn(body)?.[eventId]?.['m.read']?.[alice.userId]?.thread_id, 'main');
  });

  it('a receipt never moves backwards', async () => {
    const older = await send(s, bob, roomId, 'older');
    const newer = await send(s, bob, roomId, 'newer');
    assert.equal((await receipt(alice, 'm.read', newer)).status, 200);
    const token = (await sync(s, bob)).next_batch;
    assert.equal((await receipt(alice, 'm.read', older)).status, 200);
    const body = await sync(s, bob, { since: token });
    assert.equal(receiptsIn(body), undefined);
  });

  it('bad receipts: unknown type, bad thread_id are 400 M_INVALID_PARAM; unknown event 404; outsider 403', async () => {
    const eventId = await send(s, bob, roomId, 'x');
    const type = await receipt(alice, 'm.seen', eventId);
    assert.equal(type.status, 400);
    assert.equal(type.body.errcode, 'M_INVALID_PARAM');
    for (const body of [{ thread_id: '' }, { thread_id: 5 }]) {
      const bad = await receipt(alice, 'm.read', eventId, body);
      assert.equal(bad.status, 400, JSON.stringify(body));
      assert.equal(bad.body.errcode, 'M_INVALID_PARAM');
    }
    const fully = await receipt(alice, 'm.fully_read', eventId, { thread_id: 'main' });
    assert.equal(fully.status, 400);
    assert.equal(fully.body.errcode, 'M_INVALID_PARAM');
    const unknown = await receipt(alice, 'm.read', '$doesnotexist:localhost');
    assert.equal(unknown.status, 404);
    const otherRoom = await createRoom(s, alice);
    const elsewhere = await send(s, alice, otherRoom, 'elsewhere');
    const wrongRoom = await receipt(alice, 'm.read', elsewhere);
    assert.equal(wrongRoom.status, 404);
    const outsider = await receipt(eve, 'm.read', eventId);
    assert.equal(outsider.status, 403);
    assert.equal(outsider.body.errcode, 'M_FORBIDDEN');
  });

  it('m.fully_read through /receipt and /read_markers is the m.fully_read room account data', async () => {
    const first = await send(s, bob, roomId, 'first');
    const second = await send(s, bob, roomId, 'second');
    const token = (await sync(s, alice)).next_batch;
    assert.equal((await receipt(alice, 'm.fully_read', first)).status, 200);
    const path = `${C}/user/${encodeURIComponent(alice.userId)}/rooms/${encodeURIComponent(roomId)}/account_data/m.fully_read`;
    assert.deepEqual((await s.request('GET', path, { token: alice.accessToken })).body, { event_id: first });
    const body = await sync(s, alice, { since: token });
    const ad = body.rooms.join[roomId].account_data.events;
    assert.deepEqual(ad, [{ type: 'm.fully_read', content: { event_id: first } }]);
    assert.equal(receiptsIn(body)?.[first]?.['m.fully_read'], undefined, 'm.fully_read is not a receipt');

    const markers = await s.request('POST', `${C}/rooms/${encodeURIComponent(roomId)}/read_markers`, {
      token: alice.accessToken,
      body: { 'm.fully_read': second, 'm.read': second, 'm.read.private': second },
    });
    assert.equal(markers.status, 200);
    assert.deepEqual((await s.request('GET', path, { token: alice.accessToken })).body, { event_id: second });
    const after = await sync(s, alice, { since: body.next_batch });
    const content = receiptsIn(after);
    assert.ok(content?.[second]?.['m.read']?.[alice.userId]);
    assert.ok(content?.[second]?.['m.read.private']?.[alice.userId]);
    const bad = await s.request('POST', `${C}/rooms/${encodeURIComponent(roomId)}/read_markers`, {
      token: alice.accessToken,
      body: { 'm.fully_read': 42 },
    });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.errcode, 'M_BAD_JSON');
  });
});
