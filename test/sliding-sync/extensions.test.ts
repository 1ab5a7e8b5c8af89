/**
 * The per-room and account extensions of sliding sync, under the unprefixed keys clients send on
 * the unstable endpoint (MSC4508 "Unstable prefix" and its siblings): `account_data` (global and
 * per room, the default push rules on a new connection, changes once), `receipts` and `typing`
 * (as `m.receipt` / `m.typing` events, the shape Synapse sends and matrix-rust-sdk reads), scoped
 * by `lists` and `rooms`; a typing change wakes a waiting request; receipts and typing only for
 * rooms the user is joined to (MSC4508 "Security considerations"), never another user's private
 * receipt.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { C, createRoom, join, send } from '../sync/util.js';
import { SlidingClient } from './client.js';

describe('sliding sync extensions: account_data, receipts, typing', { timeout: 90_000 }, () => {
  let s: TestServer;
  let alice: TestUser;
  let bob: TestUser;
  let roomId: string;
  let quietRoom: string;

  before(async () => {
    s = await startTestServer();
    alice = await s.registerUser('sse_alice');
    bob = await s.registerUser('sse_bob');
    roomId = await createRoom(s, alice, { preset: 'public_chat', name: 'chatty' });
    await join(s, bob, roomId);
    quietRoom = await createRoom(s, alice, { name: 'quiet' });
  });
  after(async () => {
    await s.stop();
  });

  const room = (r: string) => encodeURIComponent(r);
  const list = (extensions: Record<string, unknown>) => ({
    lists: { all: { ranges: [[0, 9]], timeline_limit: 3, required_state: [] } },
    extensions,
  });
  const typing = (user: TestUser, on: boolean, r = roomId) =>
    s.request('PUT', `${C}/rooms/${room(r)}/typing/${encodeURIComponent(user.userId)}`, { token: user.accessToken, body: on ? { typing: true, timeout: 30000 } : { typing: false } });
  const receipt = (user: TestUser, type: string, eventId: string, r = roomId) =>
    s.request('POST', `${C}/rooms/${room(r)}/receipt/${type}/${encodeURIComponent(eventId)}`, { token: user.accessToken, body: {} });

  it('account_data: global and per room, push rules on a new connection, each change once', async () => {
    const put = (path: string, body: unknown) => s.request('PUT', `${C}/user/${encodeURIComponent(alice.userId)}${path}`, { token: alice.accessToken, body });
    assert.equal((await put('/account_data/org.example.settings', { theme: 'dark' })).status, 200);
    assert.equal((await put(`/rooms/${room(roomId)}/account_data/org.example.draft`, { text: 'hi' })).status, 200);
    const c = new SlidingClient(s, alice, 'ad');
    const first = (await c.sync(list({ account_data: { enabled: true } }))).extensions.account_data;
    const globalTypes = first.global.map((e: any) => e.type);
    assert.ok(globalTypes.includes('org.example.settings'));
    assert.ok(globalTypes.includes('m.push_rules'), 'the default rules, nobody edited them yet');
    assert.deepEqual(first.rooms[roomId], [{ type: 'org.example.draft', content: { text: 'hi' } }]);

    assert.equal((await put('/account_data/org.example.settings', { theme: 'light' })).status, 200);
    const next = (await c.sync(list({ account_data: { enabled: true } }))).extensions.account_data;
    assert.deepEqual(next.global, [{ type: 'org.example.settings', content: { theme: 'light' } }]);
    assert.deepEqual(next.rooms, {});
    const quiet = (await c.sync(list({ account_data: { enabled: true } }))).extensions.account_data;
    assert.deepEqual(quiet.global, [], 'sent once');
  });

  it('receipts: as m.receipt events, the own private one too, never another user\'s private one', async () => {
    const ev = await send(s, alice, roomId, 'read me');
    const c = new SlidingClient(s, alice, 'receipts');
    await c.sync(list({ receipts: { enabled: true } }));
    assert.equal((await receipt(bob, 'm.read', ev)).status, 200);
    assert.equal((await receipt(bob, 'm.read.private', ev)).status, 200);
    assert.equal((await receipt(alice, 'm.read.private', ev)).status, 200);
    const body = await c.sync(list({ receipts: { enabled: true } }), 5000);
    const r = body.extensions.receipts.rooms[roomId];
    assert.equal(r.type, 'm.receipt');
    assert.ok(r.content[ev]['m.read'][bob.userId].ts > 0);
    assert.ok(r.content[ev]['m.read.private'][alice.userId], 'her own private receipt');
    assert.equal(r.content[ev]['m.read.private'][bob.userId], undefined, "not bob's");
  });

  it('typing: a change wakes a waiting request, and stopping is sent too', async () => {
    const c = new SlidingClient(s, alice, 'typing');
    await c.sync(list({ typing: { enabled: true } }));
    const started = Date.now();
    const waiting = c.sync(list({ typing: { enabled: true } }), 20_000);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await typing(bob, true)).status, 200);
    const body = await waiting;
    assert.ok(Date.now() - started < 10_000, 'answered on the typing notice');
    assert.deepEqual(body.extensions.typing.rooms[roomId], { type: 'm.typing', content: { user_ids: [bob.userId] } });
    assert.equal((await typing(bob, false)).status, 200);
    const stopped = await c.sync(list({ typing: { enabled: true } }), 10_000);
    assert.deepEqual(stopped.extensions.typing.rooms[roomId].content.user_ids, []);
  });

  it('lists and rooms scope the per-room extensions', async () => {
    const ev = await send(s, alice, quietRoom, 'in the quiet room');
    const scoped = {
      lists: { all: { ranges: [[0, 9]], timeline_limit: 1, required_state: [] } },
      room_subscriptions: { [quietRoom]: { timeline_limit: 1, required_state: [] } },
      // Only the subscription: no list rooms.
      extensions: { typing: { enabled: true, lists: [] }, receipts: { enabled: true, lists: [], rooms: [quietRoom] } },
    };
    const c = new SlidingClient(s, alice, 'scoped');
    await c.sync(scoped);
    assert.equal((await typing(bob, true)).status, 200);
    assert.equal((await receipt(alice, 'm.read', ev, quietRoom)).status, 200);
    const body = await c.sync(scoped, 5000);
    assert.equal(body.extensions.typing.rooms[roomId], undefined, 'the chatty room is only in a list, and lists are out of scope');
    assert.ok(body.extensions.receipts.rooms[quietRoom], 'the subscribed room is in scope');
    assert.equal((await typing(bob, false)).status, 200);
  });

  it('no receipts or typing from a room the user was kicked from, though it stays in the list', async () => {
    const carol = await s.registerUser('sse_carol');
    const kicking = await createRoom(s, bob, { preset: 'public_chat', name: 'kicking' });
    await join(s, carol, kicking);
    const ev = await send(s, bob, kicking, 'before the kick');
    const c = new SlidingClient(s, carol, 'kicked');
    const req = list({ typing: { enabled: true }, receipts: { enabled: true } });
    await c.sync(req);
    const kick = await s.request('POST', `${C}/rooms/${room(kicking)}/kick`, { token: bob.accessToken, body: { user_id: carol.userId } });
    assert.equal(kick.status, 200);
    const kicked = await c.sync(req, 5000);
    assert.equal(kicked.rooms[kicking]?.membership, 'leave', 'the kick is in the list');
    assert.equal((await typing(bob, true, kicking)).status, 200);
    assert.equal((await receipt(bob, 'm.read', ev, kicking)).status, 200);
    const after = await c.sync(req, 1500);
    assert.equal(after.extensions.typing?.rooms?.[kicking], undefined, 'no typing after the kick');
    assert.equal(after.extensions.receipts?.rooms?.[kicking], undefined, 'no receipts after the kick');
    assert.equal((await typing(bob, false, kicking)).status, 200);
  });
});
