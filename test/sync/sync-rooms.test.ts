import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { bodies, C, createRoom, findState, invite, join, latestState, leave, send, setState, sleep, sync, syncPath } from './util.js';

describe('/sync: invited, joined, left rooms', () => {
  let s: TestServer;
  let alice: TestUser;
  let bob: TestUser;
  let carol: TestUser;

  before(async () => {
    s = await startTestServer();
    alice = await s.registerUser('rooms_alice');
    bob = await s.registerUser('rooms_bob');
    carol = await s.registerUser('rooms_carol');
  });
  after(async () => {
    await s.stop();
  });

  it('an invite appears under rooms.invite with stripped state, and wakes a long-poll', async () => {
    const roomId = await createRoom(s, alice, { name: 'Invite room' });
    const token = (await sync(s, bob)).next_batch;
    const poll = s.request('GET', syncPath({ since: token, timeout: 10000 }), { token: bob.accessToken });
    await sleep(50);
    const started = Date.now();
    await invite(s, alice, roomId, bob.userId);
    const res = await poll;
    assert.equal(res.status, 200);
    assert.ok(Date.now() - started < 3000, 'the invite woke the long-poll');
    const inv = res.body.rooms.invite[roomId];
    assert.ok(inv, 'room under rooms.invite');
    const events = inv.invite_state.events;
    assert.ok(findState(events, 'm.room.create'), 'm.room.create is required in invite_state (v1.16)');
    assert.equal(findState(events, 'm.room.name')?.content.name, 'Invite room');
    const member = findState(events, 'm.room.member', bob.userId);
    assert.equal(member?.content.membership, 'invite');
    assert.equal(member?.sender, alice.userId);
    const allowed = new Set(['content', 'sender', 'state_key', 'type']);
    for (const e of events) for (const k of Object.keys(e)) assert.ok(allowed.has(k), `stripped state has no ${k}`);
    assert.equal(res.body.rooms.join[roomId], undefined);

    // Initial sync shows it too; an incremental sync without changes does not repeat it.
    assert.ok((await sync(s, bob)).rooms.invite[roomId]);
    const again = await sync(s, bob, { since: res.body.next_batch });
    assert.equal(again.rooms.invite[roomId], undefined);
  });

  it('joining moves the room to rooms.join with its full state', async () => {
    const roomId = await createRoom(s, alice, { name: 'Join room' });
    await invite(s, alice, roomId, bob.userId);
    for (let i = 0; i < 12; i++) await send(s, alice, roomId, `before ${i}`);
    const token = (await sync(s, bob)).next_batch;
    await join(s, bob, roomId);
    const body = await sync(s, bob, { since: token });
    assert.equal(body.rooms.invite[roomId], undefined);
    const room = body.rooms.join[roomId];
    assert.ok(room);
    const all = [...room.state.events, ...room.timeline.events];
    assert.ok(findState(all, 'm.room.create'), 'a newly joined room comes with its whole state');
    assert.equal(findState(all, 'm.room.name')?.content.name, 'Join room');
    assert.equal(latestState(room, 'm.room.member', bob.userId)?.content.membership, 'join');
    assert.equal(room.summary['m.joined_member_count'], 2);
  });

  it('leaving moves the room to rooms.leave with the timeline up to the leave', async () => {
    const roomId = await createRoom(s, alice, { preset: 'public_chat' });
    await join(s, bob, roomId);
    const token = (await sync(s, bob)).next_batch;
    await send(s, alice, roomId, 'goodbye bob');
    await leave(s, bob, roomId);
    await send(s, alice, roomId, 'after bob left');
    const body = await sync(s, bob, { since: token });
    assert.equal(body.rooms.join[roomId], undefined);
    const left = body.rooms.leave[roomId];
    assert.ok(left, 'room under rooms.leave');
    const tl = left.timeline.events;
    assert.deepEqual(bodies(tl), ['goodbye bob'], 'events after the leave are not shown');
    const last = tl[tl.length - 1];
    assert.equal(last.type, 'm.room.member');
    assert.equal(last.state_key, bob.userId);
    assert.equal(last.content.membership, 'leave');

    // An initial sync leaves it out unless the filter asks for include_leave.
    const initial = await sync(s, bob);
    assert.equal(initial.rooms.leave[roomId], undefined);
    const archived = await sync(s, bob, { filter: { room: { include_leave: true } } });
    assert.ok(archived.rooms.leave[roomId]);
    assert.equal(archived.rooms.leave[roomId].timeline.events.at(-1).content.membership, 'leave');
  });

  it('a rejected invite shows in rooms.leave with the leave event', async () => {
    const roomId = await createRoom(s, alice);
    await invite(s, alice, roomId, carol.userId);
    const token = (await sync(s, carol)).next_batch;
    await leave(s, carol, roomId);
    const body = await sync(s, carol, { since: token });
    assert.equal(body.rooms.invite[roomId], undefined);
    const left = body.rooms.leave[roomId];
    assert.ok(left);
    assert.equal(left.timeline.events.at(-1).content.membership, 'leave');
  });

  it('a knock appears under rooms.knock with stripped state', async () => {
    const roomId = await createRoom(s, alice, { name: 'Knock room' });
    await setState(s, alice, roomId, 'm.room.join_rules', '', { join_rule: 'knock' });
    const token = (await sync(s, carol)).next_batch;
    const res = await s.request('POST', `${C}/knock/${encodeURIComponent(roomId)}`, { token: carol.accessToken, body: { reason: 'let me in' } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const body = await sync(s, carol, { since: token });
    const knocked = body.rooms.knock[roomId];
    assert.ok(knocked, 'room under rooms.knock');
    assert.ok(findState(knocked.knock_state.events, 'm.room.create'));
    assert.equal(findState(knocked.knock_state.events, 'm.room.name')?.content.name, 'Knock room');
    assert.equal(findState(knocked.knock_state.events, 'm.room.member', carol.userId)?.content.membership, 'knock');
    assert.ok((await sync(s, carol)).rooms.knock[roomId], 'initial sync too');
  });

  it('a ban moves the room to rooms.leave', async () => {
    const roomId = await createRoom(s, alice, { preset: 'public_chat' });
    await join(s, carol, roomId);
    const token = (await sync(s, carol)).next_batch;
    const res = await s.request('POST', `${C}/rooms/${encodeURIComponent(roomId)}/ban`, { token: alice.accessToken, body: { user_id: carol.userId } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const body = await sync(s, carol, { since: token });
    assert.equal(body.rooms.join[roomId], undefined);
    assert.equal(body.rooms.leave[roomId]?.timeline.events.at(-1).content.membership, 'ban');
  });

  it('summary lists heroes when the room has no name', async () => {
    const roomId = await createRoom(s, alice, { preset: 'public_chat' });
    await join(s, bob, roomId);
    await invite(s, alice, roomId, carol.userId);
    const body = await sync(s, alice);
    const summary = body.rooms.join[roomId].summary;
    assert.equal(summary['m.joined_member_count'], 2);
    assert.equal(summary['m.invited_member_count'], 1);
    assert.deepEqual([...summary['m.heroes']].sort(), [bob.userId, carol.userId].sort());
    assert.ok(!summary['m.heroes'].includes(alice.userId), 'never the syncing user');
  });

  it('device_lists: users who start sharing a room are changed, users who stop are left', async () => {
    const roomId = await createRoom(s, alice, { preset: 'public_chat' });
    const t0 = (await sync(s, alice)).next_batch;
    await join(s, carol, roomId);
    const b1 = await sync(s, alice, { since: t0 });
    assert.ok(b1.device_lists.changed.includes(carol.userId), JSON.stringify(b1.device_lists));
    await leave(s, carol, roomId);
    const b2 = await sync(s, alice, { since: b1.next_batch });
    assert.ok(b2.device_lists.left.includes(carol.userId), JSON.stringify(b2.device_lists));
    assert.ok(!b2.device_lists.changed.includes(carol.userId));
  });

  it('device_lists is only given on incremental syncs', async () => {
    const body = await sync(s, alice);
    assert.equal(body.device_lists, undefined);
  });

  it('the room filter rooms/not_rooms restricts every room section', async () => {
    const a = await createRoom(s, alice);
    const b = await createRoom(s, alice);
    const only = await sync(s, alice, { filter: { room: { rooms: [a] } } });
    assert.deepEqual(Object.keys(only.rooms.join), [a]);
    const not = await sync(s, alice, { filter: { room: { not_rooms: [a] } } });
    assert.ok(not.rooms.join[b]);
    assert.equal(not.rooms.join[a], undefined);
  });
});
