import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { RoomsService } from '../../src/rooms/service.js';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { createRoom, expectStatus, join, membershipAction, putState, sendText } from './room-helpers.js';

let server: TestServer;
let alice: TestUser;
let bob: TestUser;
let carol: TestUser;
let rooms: RoomsService;

before(async () => {
  server = await startTestServer();
  rooms = server.hs.ctx.services.rooms;
  alice = await server.registerUser('xd_alice');
  bob = await server.registerUser('xd_bob');
  carol = await server.registerUser('xd_carol');
});
after(async () => {
  await server.stop();
});

describe('RoomsService cross-domain API', () => {
  test('getMemberships lists every membership with its event and position', async () => {
    const a = await createRoom(server, alice, { preset: 'public_chat' });
    const b = await createRoom(server, alice);
    expectStatus(await join(server, bob, a), 200);
    expectStatus(await membershipAction(server, alice, b, 'invite', { user_id: bob.userId }), 200);
    const list = await rooms.getMemberships(bob.userId);
    const byRoom = new Map(list.map((m) => [m.roomId, m]));
    assert.equal(byRoom.get(a)?.membership, 'join');
    assert.equal(byRoom.get(b)?.membership, 'invite');
    const ev = (await rooms.getEvents([byRoom.get(b)!.eventId])).get(byRoom.get(b)!.eventId)!;
    assert.equal(ev.type, 'm.room.member');
    assert.equal(ev.state_key, bob.userId);
    assert.equal(await rooms.getEventStreamPos(ev.event_id), byRoom.get(b)!.streamPos);
  });

  test('getMembershipChanges returns each change in (from, to], chronologically', async () => {
    const roomId = await createRoom(server, alice, { preset: 'public_chat' });
    const from = (await rooms.getEventStreamPos((await rooms.getCurrentState(roomId, ['m.room.create']))[0]!.event_id))!;
    expectStatus(await join(server, carol, roomId), 200);
    expectStatus(await membershipAction(server, carol, roomId, 'leave'), 200);
    expectStatus(await join(server, carol, roomId), 200);
    const all = (await rooms.getMembershipChanges(carol.userId, from, Number.MAX_SAFE_INTEGER)).filter((m) => m.roomId === roomId);
    assert.deepEqual(all.map((m) => m.membership), ['join', 'leave', 'join']);
    assert.ok(all[0]!.streamPos < all[1]!.streamPos && all[1]!.streamPos < all[2]!.streamPos);
    const window = await rooms.getMembershipChanges(carol.userId, all[0]!.streamPos, all[1]!.streamPos);
    assert.deepEqual(window.map((m) => m.membership), ['leave']);
    assert.deepEqual(await rooms.getMembershipChanges(carol.userId, 10, 5), []);
  });

  test('getRoomsWithEventsBetween finds rooms with events in the window', async () => {
    const r1 = await createRoom(server, alice);
    const r2 = await createRoom(server, alice);
    const e1 = await sendText(server, alice, r1, 'x');
    const p1 = (await rooms.getEventStreamPos(e1))!;
    const e2 = await sendText(server, alice, r2, 'y');
    const p2 = (await rooms.getEventStreamPos(e2))!;
    assert.deepEqual(await rooms.getRoomsWithEventsBetween([r1, r2], p1 - 1, p1), new Set([r1]));
    assert.deepEqual(await rooms.getRoomsWithEventsBetween([r1, r2], p1, p2), new Set([r2]));
    assert.deepEqual(await rooms.getRoomsWithEventsBetween([r1, r2], p1 - 1, p2), new Set([r1, r2]));
    assert.deepEqual(await rooms.getRoomsWithEventsBetween([r1], p1, p2), new Set());
    assert.deepEqual(await rooms.getRoomsWithEventsBetween([], 0, p2), new Set());
  });

  test('getTimeline: chronological, limited, prevBatchPos, filters, transaction ids for the device', async () => {
    const roomId = await createRoom(server, alice);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await sendText(server, alice, roomId, `t${i}`));
    const last = (await rooms.getEventStreamPos(ids[4]!))!;
    const first = (await rooms.getEventStreamPos(ids[0]!))!;
    const chunk = await rooms.getTimeline({ roomId, fromPos: 0, toPos: last, limit: 3, viewer: { userId: alice.userId, deviceId: alice.deviceId } });
    assert.deepEqual(chunk.events.map((e) => e.content.body), ['t2', 't3', 't4']);
    assert.equal(chunk.limited, true);
    assert.equal(chunk.prevBatchPos, (await rooms.getEventStreamPos(ids[2]!))! - 1);
    assert.equal(typeof chunk.events[0]!.unsigned?.transaction_id, 'string');
    const whole = await rooms.getTimeline({ roomId, fromPos: first - 1, toPos: last, limit: 10, viewer: { userId: bob.userId } });
    assert.equal(whole.limited, false);
    assert.equal(whole.events.length, 0, 'bob is not in the room: nothing visible');
    const mine = await rooms.getTimeline({ roomId, fromPos: first - 1, toPos: last, limit: 10, viewer: { userId: alice.userId } });
    assert.deepEqual(mine.events.map((e) => e.content.body), ['t0', 't1', 't2', 't3', 't4']);
    assert.equal(mine.events[0]!.unsigned?.transaction_id, undefined, 'no device: no transaction ids');
    const filtered = await rooms.getTimeline({ roomId, fromPos: 0, toPos: last, limit: 50, filter: { types: ['m.room.create'] }, viewer: { userId: alice.userId } });
    assert.deepEqual(filtered.events.map((e) => e.type), ['m.room.create']);
    const empty = await rooms.getTimeline({ roomId, fromPos: last, toPos: last, limit: 10, viewer: { userId: alice.userId } });
    assert.deepEqual(empty, { events: [], limited: false, prevBatchPos: last });
  });

  test('getStateAtPosition and getStateChangesBetween follow the state over time', async () => {
    const roomId = await createRoom(server, alice, { name: 'one' });
    const nameEvent = (await rooms.getCurrentState(roomId, ['m.room.name']))[0]!;
    const p1 = (await rooms.getEventStreamPos(nameEvent.event_id))!;
    const put = await putState(server, alice, roomId, 'm.room.name', '', { name: 'two' });
    await sendText(server, alice, roomId, 'after rename');
    const p2 = (await rooms.getEventStreamPos(put.body.event_id))!;
    const at1 = await rooms.getStateAtPosition(roomId, p1);
    assert.equal(at1.find((e) => e.type === 'm.room.name')!.content.name, 'one');
    const at2 = await rooms.getStateAtPosition(roomId, p2 + 1);
    assert.equal(at2.find((e) => e.type === 'm.room.name')!.content.name, 'two');
    assert.equal(at1.length, at2.length);
    const changes = await rooms.getStateChangesBetween(roomId, p1, p2 + 1);
    assert.deepEqual(changes.map((e) => [e.type, e.content.name]), [['m.room.name', 'two']]);
    assert.deepEqual(await rooms.getStateChangesBetween(roomId, p2, p2 + 1), []);
    assert.deepEqual(await rooms.getStateAtPosition(roomId, 0), []);
  });

  test('getCurrentState (all or some types) and getStrippedState', async () => {
    const roomId = await createRoom(server, alice, { name: 'stripped', topic: 'tt', invite: [bob.userId] });
    const all = await rooms.getCurrentState(roomId);
    assert.ok(all.length >= 8);
    const members = await rooms.getCurrentState(roomId, ['m.room.member']);
    assert.deepEqual(members.map((e) => e.state_key).sort(), [alice.userId, bob.userId].sort());
    const invite = members.find((e) => e.state_key === bob.userId)!;
    const stripped = await rooms.getStrippedState(roomId, invite.event_id);
    const types = stripped.map((s) => s.type).sort();
    assert.deepEqual(types, ['m.room.create', 'm.room.join_rules', 'm.room.member', 'm.room.name', 'm.room.topic']);
    for (const s of stripped) assert.deepEqual(Object.keys(s).sort(), ['content', 'sender', 'state_key', 'type']);
    assert.deepEqual(await rooms.getCurrentState('!unknown:localhost'), []);
  });

  test('getEvents formats many events at once; getEventStreamPos is null for unknown ids', async () => {
    const roomId = await createRoom(server, alice);
    const a = await sendText(server, alice, roomId, 'a');
    const b = await sendText(server, alice, roomId, 'b');
    const got = await rooms.getEvents([a, b, '$unknown'], { userId: alice.userId, deviceId: alice.deviceId });
    assert.deepEqual([...got.keys()].sort(), [a, b].sort());
    assert.equal(got.get(a)!.content.body, 'a');
    assert.equal(typeof got.get(a)!.unsigned?.transaction_id, 'string');
    assert.equal(await rooms.getEventStreamPos('$unknown'), null);
    assert.ok(((await rooms.getEventStreamPos(b)) ?? 0) > ((await rooms.getEventStreamPos(a)) ?? 0));
  });

  test('getJoinedMembers and getUsersSharingRooms', async () => {
    const dave = await server.registerUser('xd_dave');
    const erin = await server.registerUser('xd_erin');
    const roomId = await createRoom(server, dave, { preset: 'public_chat' });
    expectStatus(await join(server, erin, roomId), 200);
    assert.deepEqual((await rooms.getJoinedMembers(roomId)).sort(), [dave.userId, erin.userId].sort());
    assert.deepEqual(await rooms.getUsersSharingRooms(dave.userId), new Set([dave.userId, erin.userId]));
    const loner = await server.registerUser('xd_loner');
    assert.deepEqual(await rooms.getUsersSharingRooms(loner.userId), new Set([loner.userId]));
  });

  test('onProfileChanged sends new member events into joined rooms only', async () => {
    const frank = await server.registerUser('xd_frank');
    const r1 = await createRoom(server, frank, { preset: 'public_chat' });
    const r2 = await createRoom(server, alice);
    expectStatus(await membershipAction(server, alice, r2, 'invite', { user_id: frank.userId }), 200);
    const put = await server.request('PUT', `/_matrix/client/v3/profile/${encodeURIComponent(frank.userId)}/displayname`, {
      token: frank.accessToken,
      body: { displayname: 'Frank Renamed' },
    });
    expectStatus(put, 200);
    await rooms.onProfileChanged(frank.userId);
    const m1 = (await rooms.getCurrentState(r1, ['m.room.member'])).find((e) => e.state_key === frank.userId)!;
    assert.equal(m1.content.displayname, 'Frank Renamed');
    assert.equal(m1.content.membership, 'join');
    const m2 = (await rooms.getCurrentState(r2, ['m.room.member'])).find((e) => e.state_key === frank.userId)!;
    assert.equal(m2.content.membership, 'invite', 'invites are left alone');
  });

  test('leaveAllRooms leaves joined rooms and rejects invites', async () => {
    const gina = await server.registerUser('xd_gina');
    const r1 = await createRoom(server, gina);
    const r2 = await createRoom(server, alice);
    expectStatus(await membershipAction(server, alice, r2, 'invite', { user_id: gina.userId }), 200);
    await rooms.leaveAllRooms(gina.userId);
    const ms = await rooms.getMemberships(gina.userId);
    assert.equal(ms.find((m) => m.roomId === r1)?.membership, 'leave');
    assert.equal(ms.find((m) => m.roomId === r2)?.membership, 'leave');
  });
});
