// What the end of a partial-state join (joins-v2.yaml, `omit_members`; MSC3706/MSC3902) changes
// beyond the state itself: an event accepted while the state lacked members is checked again with
// the full state, and rejected when the state before it does not allow it (mallory, banned in a
// state send_join left out, sends through a.test while b.test's state is partial), soft-failed
// when only the room's state when it came does not (eve, banned after the join, sends on a branch
// from before her ban); the members learnt reach bob's incremental /sync; and their device lists
// are followed as for any user sharing a room. b.test reaches a.test through a proxy that holds
// the /state requests of the resync.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { finaliseEvent, type EventDraft } from '../../src/core/event-format.js';
import { stateKey } from '../../src/core/types.js';
import { deviceKeys } from '../e2ee/helpers.js';
import type { TestServer, TestUser } from '../helpers/server.js';
import { C, createRoom, e, expectStatus, messages, putState } from '../rooms/room-helpers.js';
import { eventually, F, holdingProxy, signedRequest, startPartialStatePair } from './federation-helpers.js';

let a: TestServer;
let b: TestServer;
let stop: () => Promise<void>;
let proxy: Awaited<ReturnType<typeof holdingProxy>>;
let alice: TestUser;
let mallory: TestUser;
let eve: TestUser;
let carol: TestUser;
let bob: TestUser;
let roomId: string;

before(async () => {
  ({ a, b, stop, proxy } = await startPartialStatePair());
  alice = await a.registerUser('alice');
  mallory = await a.registerUser('mallory');
  eve = await a.registerUser('eve');
  carol = await a.registerUser('carol');
  bob = await b.registerUser('bob');
});
after(async () => {
  await stop();
});

async function bodies(server: TestServer, user: TestUser, room: string): Promise<string[]> {
  const res = await messages(server, user, room, { dir: 'b', limit: 100 });
  expectStatus(res, 200);
  return res.body.chunk.filter((ev: any) => ev.type === 'm.room.message').map((ev: any) => ev.content.body);
}

async function sync(since?: string): Promise<any> {
  const res = await b.request('GET', `${C}/sync?timeout=0${since ? `&since=${e(since)}` : ''}`, { token: bob.accessToken });
  expectStatus(res, 200);
  return res.body;
}

const partialRow = () => b.hs.ctx.db.selectFrom('partial_state_rooms').selectAll().where('room_id', '=', roomId).executeTakeFirst();

let sinceDuringPartial: string;
let sneakyId: string;
let branchId: string;

/** A message of `sender` (a user of a.test) built on `prev`, signed with a.test's key and sent to b.test alone. */
async function sendAsA(sender: TestUser, prev: { eventId: string; depth: number }[], authMember: string, body: string): Promise<string> {
  const head = (await b.hs.ctx.services.rooms.core.heads.get(roomId))!;
  const draft = {
    room_id: roomId,
    sender: sender.userId,
    type: 'm.room.message',
    content: { msgtype: 'm.text', body },
    prev_events: prev.map((x) => x.eventId),
    // Room v12 names no create event among auth events (its room id is the create event's hash).
    auth_events: [...(head.version.roomIdIsCreateEventHash ? [] : [head.state.get(stateKey('m.room.create', ''))!]), head.state.get(stateKey('m.room.power_levels', ''))!, authMember],
    depth: Math.max(...prev.map((x) => x.depth)) + 1,
    origin_server_ts: Date.now(),
  } as unknown as EventDraft;
  const ev = finaliseEvent(draft, head.version, 'a.test', a.hs.ctx.signingKey);
  const res = await signedRequest(b, 'PUT', `${F}/send/${e(body)}`, { origin: 'a.test', key: a.hs.ctx.signingKey, body: { origin: 'a.test', origin_server_ts: Date.now(), pdus: [ev.pdu] } });
  expectStatus(res, 200);
  assert.deepEqual(res.body.pdus[ev.eventId], {});
  return ev.eventId;
}

/** The id of `user`'s membership event `membership` in the room, as `server` holds it. */
async function memberEvent(server: TestServer, user: TestUser, membership: string): Promise<{ eventId: string; depth: number }> {
  const row = await server.hs.ctx.db
    .selectFrom('events')
    .select(['event_id', 'depth'])
    .where('room_id', '=', roomId)
    .where('type', '=', 'm.room.member')
    .where('state_key', '=', user.userId)
    .where('membership', '=', membership)
    .executeTakeFirstOrThrow();
  return { eventId: row.event_id, depth: Number(row.depth) };
}

test('events the partial state cannot judge are accepted: one from a member banned in the omitted state, one on a branch from before a ban', async () => {
  // mallory names the room and eve sets its topic, so their joins are in the auth chain send_join
  // returns; mallory is banned before b.test joins, eve after.
  roomId = await createRoom(a, alice, { preset: 'public_chat', power_level_content_override: { users: { [mallory.userId]: 50, [eve.userId]: 50 } } });
  for (const u of [mallory, eve, carol]) expectStatus(await a.request('POST', `${C}/join/${e(roomId)}`, { token: u.accessToken, body: {} }), 200);
  expectStatus(await putState(a, mallory, roomId, 'm.room.name', '', { name: 'Named by mallory' }), 200);
  expectStatus(await putState(a, eve, roomId, 'm.room.topic', '', { topic: 'Set by eve' }), 200);
  expectStatus(await a.request('POST', `${C}/rooms/${e(roomId)}/ban`, { token: alice.accessToken, body: { user_id: mallory.userId } }), 200);
  expectStatus(await a.request('POST', `${C}/keys/upload`, { token: carol.accessToken, body: { device_keys: deviceKeys(carol) } }), 200);

  proxy.hold();
  const asked = proxy.heldRequests();
  expectStatus(await b.request('POST', `${C}/join/${e(roomId)}?server_name=a.test`, { token: bob.accessToken, body: {} }), 200);
  await eventually(async () => proxy.heldRequests() > asked, 'the resync asking a.test for the state');
  assert.ok(await partialRow(), 'the room is marked partial');
  sinceDuringPartial = (await sync()).next_batch;
  const core = b.hs.ctx.services.rooms.core;
  assert.equal((await core.heads.get(roomId))!.state.has(stateKey('m.room.member', mallory.userId)), false, 'the ban was left out of send_join');

  const bobJoin = await memberEvent(b, bob, 'join');
  expectStatus(await a.request('POST', `${C}/rooms/${e(roomId)}/ban`, { token: alice.accessToken, body: { user_id: eve.userId } }), 200);
  await eventually(async () => (await core.heads.get(roomId))!.members.get(eve.userId)?.membership === 'ban', 'eve’s ban on b.test');

  // Each built by a.test's key and sent to b.test alone, with the sender's join (before the ban) as auth event.
  sneakyId = await sendAsA(mallory, (await core.heads.get(roomId))!.extremities, (await memberEvent(a, mallory, 'join')).eventId, 'sneaky');
  branchId = await sendAsA(eve, [bobJoin], (await memberEvent(a, eve, 'join')).eventId, 'from the branch');
  const seen = await bodies(b, bob, roomId);
  assert.ok(seen.includes('sneaky') && seen.includes('from the branch'), 'accepted while the state is partial');
  assert.equal((await sync()).rooms.join[roomId].unread_notifications.notification_count, 2);
});

test('the full state rejects the first and soft-fails the second: they leave /messages and /event, and stop being ends of the room', async () => {
  proxy.release();
  await eventually(async () => (await partialRow()) === undefined, 'the full state filled in');
  assert.equal((await bodies(b, bob, roomId)).includes('sneaky'), false);
  expectStatus(await b.request('GET', `${C}/rooms/${e(roomId)}/event/${e(sneakyId)}`, { token: bob.accessToken }), 404);
  const row = await b.hs.ctx.db.selectFrom('events').select(['rejected_reason', 'stream_pos']).where('event_id', '=', sneakyId).executeTakeFirstOrThrow();
  assert.ok(row.rejected_reason, 'stored as rejected');
  assert.equal(row.stream_pos, null);
  const head = (await b.hs.ctx.services.rooms.core.heads.get(roomId))!;
  assert.equal(head.extremities.some((x) => x.eventId === sneakyId), false, 'nothing is built on a rejected event');
  // eve's event was allowed by the state before it (she was joined then) but not by the room's
  // state when it came (she was banned): soft-failed, as check 6 would have found then.
  assert.equal((await bodies(b, bob, roomId)).includes('from the branch'), false);
  const branch = await b.hs.ctx.db.selectFrom('events').select(['rejected_reason', 'soft_failed', 'stream_pos']).where('event_id', '=', branchId).executeTakeFirstOrThrow();
  assert.deepEqual([branch.rejected_reason, Number(branch.soft_failed), branch.stream_pos], [null, 1, null]);
  assert.equal(head.extremities.some((x) => x.eventId === branchId), false);
  // Neither counts as unread any more (both did while the state was partial).
  assert.equal((await sync()).rooms.join[roomId].unread_notifications.notification_count, 0);
  // What bob sends next is built on what a.test holds, and reaches it.
  expectStatus(await b.request('PUT', `${C}/rooms/${e(roomId)}/send/m.room.message/after-fill`, { token: bob.accessToken, body: { msgtype: 'm.text', body: 'after the fill' } }), 200);
  await eventually(async () => (await bodies(a, alice, roomId)).includes('after the fill'), 'bob’s message on a.test');
});

test('an incremental /sync from a token taken while the state was partial shows the members learnt and resets the timeline', async () => {
  const body = await sync(sinceDuringPartial);
  const room = body.rooms.join[roomId];
  assert.ok(room, 'the room is in the incremental sync');
  const members = new Map<string, string>(room.state.events.filter((ev: any) => ev.type === 'm.room.member').map((ev: any) => [ev.state_key, ev.content.membership]));
  assert.equal(members.get(alice.userId), 'join');
  assert.equal(members.get(carol.userId), 'join');
  assert.equal(members.get(mallory.userId), 'ban');
  // eve's ban came after the token: it is in the timeline, after the state it started from.
  assert.equal(members.get(eve.userId), 'join');
  assert.ok(room.timeline.events.some((ev: any) => ev.type === 'm.room.member' && ev.state_key === eve.userId && ev.content.membership === 'ban'));
  assert.equal(room.timeline.limited, true, 'the client drops the timeline it held');
  assert.equal(room.timeline.events.some((ev: any) => ev.event_id === sneakyId || ev.event_id === branchId), false);
  assert.equal(room.summary['m.joined_member_count'], 3);

  // Device lists: the members learnt share a room with bob now.
  assert.ok(body.device_lists.changed.includes(carol.userId), 'carol in device_lists.changed');
  const q = await b.request('POST', `${C}/keys/query`, { token: bob.accessToken, body: { device_keys: { [carol.userId]: [] } } });
  expectStatus(q, 200);
  assert.ok(q.body.device_keys[carol.userId][carol.deviceId], 'carol’s device keys');
  const tracked = await b.hs.ctx.db.selectFrom('remote_device_lists').selectAll().where('user_id', '=', carol.userId).executeTakeFirst();
  assert.equal(tracked?.stale, 0, 'b.test keeps and follows carol’s device list');
  // The next incremental sync renders the room as usual again.
  const next = await sync(body.next_batch);
  assert.equal(next.rooms.join[roomId], undefined);
});
