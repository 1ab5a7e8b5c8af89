// Partial-state joins (joins-v2.yaml, `omit_members`) between two Hearth servers: b.test joins a
// room of a.test whose members a.test leaves out of its send_join answer; b.test's user reads and
// sends at once, then b.test fetches the full state (/state_ids, then /state or /event) and fills it
// in. b.test reaches a.test through a proxy that can hold the /state_ids and /state requests, so
// the time before the resync is observable without any hook in the server.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { finaliseEvent, type EventDraft } from '../../src/core/event-format.js';
import { computeEventId } from '../../src/core/hashes.js';
import { getRoomVersion, ROOM_VERSIONS } from '../../src/core/room-versions.js';
import { stateKey } from '../../src/core/types.js';
import type { TestServer, TestUser } from '../helpers/server.js';
import { C, createRoom, e, expectStatus, messages, sendText } from '../rooms/room-helpers.js';
import { eventually, F, holdingProxy, startPartialStatePair } from './federation-helpers.js';

const MEMBERS = 12;
const STATE_PATH = '/_matrix/federation/v1/state/';

let a: TestServer;
let b: TestServer;
let stop: () => Promise<void>;
let proxy: Awaited<ReturnType<typeof holdingProxy>>;
let alice: TestUser;
let bob: TestUser;
const others: TestUser[] = [];

async function bodies(server: TestServer, user: TestUser, room: string): Promise<string[]> {
  const res = await messages(server, user, room, { dir: 'b', limit: 100 });
  expectStatus(res, 200);
  return res.body.chunk.filter((ev: any) => ev.type === 'm.room.message').map((ev: any) => ev.content.body);
}

async function partialRow(server: TestServer, roomId: string) {
  return server.hs.ctx.db.selectFrom('partial_state_rooms').selectAll().where('room_id', '=', roomId).executeTakeFirst();
}

async function memberIds(server: TestServer, user: TestUser, roomId: string): Promise<string[]> {
  const res = await server.request('GET', `${C}/rooms/${e(roomId)}/members`, { token: user.accessToken });
  expectStatus(res, 200);
  return res.body.chunk.map((ev: any) => ev.state_key).sort();
}

/** A room on a.test with alice and MEMBERS other users of a.test joined. */
async function roomWithMembers(opts: { name?: string }): Promise<string> {
  const roomId = await createRoom(a, alice, { preset: 'public_chat', ...(opts.name ? { name: opts.name } : {}) });
  for (const u of others) expectStatus(await a.request('POST', `${C}/join/${e(roomId)}`, { token: u.accessToken, body: {} }), 200);
  await sendText(a, alice, roomId, 'history');
  return roomId;
}

before(async () => {
  // Both /state_ids, which every resync asks first, and /state: a held resync waits at its first step.
  ({ a, b, stop, proxy } = await startPartialStatePair());
  alice = await a.registerUser('alice');
  bob = await b.registerUser('bob');
  for (let i = 0; i < MEMBERS; i++) others.push(await a.registerUser(`member${i}`));
});
after(async () => {
  await stop();
});

let roomId: string;
let duringPartial: string;

test('b.test joins with partial state: its user sends and reads before the full state is fetched', async () => {
  roomId = await roomWithMembers({ name: 'Big room' });
  proxy.hold();
  const asked = proxy.heldRequests();
  expectStatus(await b.request('POST', `${C}/join/${e(roomId)}?server_name=a.test`, { token: bob.accessToken, body: {} }), 200);

  // The join is stored while the /state request is held: the room is marked partial, and of the
  // members only bob's own is known (the room has a name, so no heroes were sent).
  const row = await partialRow(b, roomId);
  assert.ok(row, 'the room is marked partial');
  assert.deepEqual(JSON.parse(row.servers), ['a.test']);
  await eventually(async () => proxy.heldRequests() > asked, 'the resync asking a.test for the state');
  const head = (await b.hs.ctx.services.rooms.core.heads.get(roomId))!;
  assert.ok(head.partial);
  assert.deepEqual([...head.members.keys()], [bob.userId]);
  assert.ok(head.state.has(stateKey('m.room.name', '')) && head.state.has(stateKey('m.room.power_levels', '')));

  // Sending: the event goes to the servers a.test named, although none of their members is known.
  await sendText(b, bob, roomId, 'hello from b');
  await eventually(async () => (await bodies(a, alice, roomId)).includes('hello from b'), 'b.test message on a.test');
  // Reading: alice's event is accepted though her membership is not in the partial state.
  await sendText(a, alice, roomId, 'hello from a');
  await eventually(async () => (await bodies(b, bob, roomId)).includes('hello from a'), 'a.test message on b.test');
  const stored = await b.hs.ctx.db.selectFrom('events').select(['event_id', 'soft_failed', 'rejected_reason']).where('room_id', '=', roomId).where('sender', '=', alice.userId).where('type', '=', 'm.room.message').execute();
  assert.equal(stored.length, 1);
  assert.equal(stored[0]!.soft_failed, 0);
  assert.equal(stored[0]!.rejected_reason, null);
  duringPartial = stored[0]!.event_id;
  assert.ok(await partialRow(b, roomId), 'still partial: the /state request is held');
});

test('/members waits for the full state, which then equals a.test’s, also before the events stored meanwhile', async () => {
  let settled = false;
  const pending = memberIds(b, bob, roomId).then((ids) => {
    settled = true;
    return ids;
  });
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(settled, false, '/members answered before the full state was known');
  proxy.release();
  const listed = await pending;
  assert.deepEqual(listed, await memberIds(a, alice, roomId));
  assert.equal(listed.length, MEMBERS + 2);
  assert.equal(await partialRow(b, roomId), undefined);

  const coreA = a.hs.ctx.services.rooms.core;
  const coreB = b.hs.ctx.services.rooms.core;
  const headA = (await coreA.heads.get(roomId))!;
  const headB = (await coreB.heads.get(roomId))!;
  assert.equal(headB.partial, null);
  assert.deepEqual(new Map([...headB.state].sort()), new Map([...headA.state].sort()));
  // After a restart too: the filled-in state is what was written, not only what is cached.
  coreB.heads.invalidate(roomId);
  assert.deepEqual(new Map([...(await coreB.heads.get(roomId))!.state].sort()), new Map([...headA.state].sort()));
  // The state before alice's message, accepted while the state was partial, is the full one now.
  const [evA, evB] = [await coreA.events.get(duringPartial), await b.hs.ctx.db.selectFrom('events').select('state_group_before').where('event_id', '=', duringPartial).executeTakeFirstOrThrow()];
  const before = await coreB.groups.load(Number(evB.state_group_before));
  assert.deepEqual(new Map([...before].sort()), new Map([...(await coreA.groups.load(evA!.stateGroupBefore!))].sort()));
  const joined = await b.request('GET', `${C}/rooms/${e(roomId)}/joined_members`, { token: bob.accessToken });
  expectStatus(joined, 200);
  assert.equal(Object.keys(joined.body.joined).length, MEMBERS + 2);
});

test('an unnamed room’s heroes come with the join, and a restart during the resync resumes it', async () => {
  const unnamed = await roomWithMembers({});
  proxy.hold();
  const asked = proxy.heldRequests();
  expectStatus(await b.request('POST', `${C}/join/${e(unnamed)}?server_name=a.test`, { token: bob.accessToken, body: {} }), 200);
  const head = (await b.hs.ctx.services.rooms.core.heads.get(unnamed))!;
  assert.ok(head.partial);
  const heroes = [alice, ...others].map((u) => u.userId).sort().slice(0, 5);
  assert.deepEqual([...head.members.keys()].sort(), [bob.userId, ...heroes].sort());

  await eventually(async () => proxy.heldRequests() > asked, 'the first request of the resync');
  await b.restart();
  assert.ok(await partialRow(b, unnamed), 'still partial after the restart');
  await eventually(async () => proxy.heldRequests() > asked + 1, 'the resync resumed after the restart');
  proxy.release();
  const listed = await memberIds(b, bob, unnamed);
  assert.equal(listed.length, MEMBERS + 2);
  assert.equal(await partialRow(b, unnamed), undefined);
});

/** make_join, the template signed by b.test, then send_join v2 at a.test: its answer. */
async function sendJoin(room: string, user: TestUser, omitMembers: boolean): Promise<any> {
  const client = b.hs.ctx.services.federation.client;
  const made = await client.request<any>('a.test', { method: 'GET', path: `${F}/make_join/${e(room)}/${e(user.userId)}?${Object.keys(ROOM_VERSIONS).map((v) => `ver=${v}`).join('&')}` });
  const version = getRoomVersion(made.room_version)!;
  const draft = { ...made.event, origin_server_ts: Date.now(), content: { ...made.event.content, membership: 'join' } } as unknown as EventDraft;
  const join = finaliseEvent(draft, version, 'b.test', b.hs.ctx.signingKey);
  const query = omitMembers ? '?omit_members=true' : '';
  const answer = await client.request<any>('a.test', { method: 'PUT', path: `/_matrix/federation/v2/send_join/${e(room)}/${e(join.eventId)}${query}`, body: join.pdu });
  return { ...answer, version };
}

test('a.test answers send_join with omit_members without other members, the auth chain without the state, and servers_in_room', async () => {
  const room = await roomWithMembers({ name: 'Resident side' });
  const carl = await b.registerUser('carl');
  const partial = await sendJoin(room, carl, true);
  assert.equal(partial.members_omitted, true);
  assert.deepEqual(partial.servers_in_room, ['a.test']);
  assert.deepEqual(partial.state.filter((ev: any) => ev.type === 'm.room.member'), []);
  assert.ok(partial.state.some((ev: any) => ev.type === 'm.room.power_levels'));
  const stateIds = new Set(partial.state.map((ev: any) => computeEventId(ev, partial.version)));
  const chainIds = partial.auth_chain.map((ev: any) => computeEventId(ev, partial.version));
  assert.ok(chainIds.every((id: string) => !stateIds.has(id)), 'the auth chain repeats no state event');
  // alice's join is in the auth chain of the power levels and of the join itself.
  assert.ok(partial.auth_chain.some((ev: any) => ev.type === 'm.room.member' && ev.state_key === alice.userId));

  const dave = await b.registerUser('dave');
  const full = await sendJoin(room, dave, false);
  assert.equal(full.members_omitted, false);
  assert.equal(full.servers_in_room, undefined);
  // Every member before dave's join: alice, the others and carl.
  assert.equal(full.state.filter((ev: any) => ev.type === 'm.room.member').length, MEMBERS + 2);
});

test('joined again, the room’s state is completed from /state_ids and /event for the events not held, without /state', async () => {
  expectStatus(await b.request('POST', `${C}/rooms/${e(roomId)}/leave`, { token: bob.accessToken, body: {} }), 200);
  await eventually(async () => (await a.request('GET', `${C}/rooms/${e(roomId)}/state/m.room.member/${e(bob.userId)}`, { token: alice.accessToken })).body.membership === 'leave', 'bob’s leave on a.test');
  // While b.test is out of the room, a member joins that it will not hold.
  const newcomer = await a.registerUser('newcomer');
  expectStatus(await a.request('POST', `${C}/join/${e(roomId)}`, { token: newcomer.accessToken, body: {} }), 200);
  const stateRequests = proxy.heldRequests(STATE_PATH);
  expectStatus(await b.request('POST', `${C}/join/${e(roomId)}?server_name=a.test`, { token: bob.accessToken, body: {} }), 200);
  assert.ok(await partialRow(b, roomId), 'joined again with partial state');
  await eventually(async () => (await partialRow(b, roomId)) === undefined, 'the full state filled in again');
  assert.equal(proxy.heldRequests(STATE_PATH), stateRequests, 'no /state request: most of the state was held');
  const listed = await memberIds(b, bob, roomId);
  assert.deepEqual(listed, await memberIds(a, alice, roomId));
  assert.ok(listed.includes(newcomer.userId), 'the member who joined meanwhile, fetched with /event');
});
