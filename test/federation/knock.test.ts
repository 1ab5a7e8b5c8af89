// Knocking over federation (spec: server-server API, "Knocking upon a room"; knocks.yaml): a user
// of b.test knocks on a room held only on a.test through make_knock / send_knock, sees the
// knock_room_state in /sync's `knock` section, and the resident accepts (invites) or denies (kicks).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { finaliseEvent } from '../../src/core/event-format.js';
import { getRoomVersion } from '../../src/core/room-versions.js';
import type { TestServer, TestUser } from '../helpers/server.js';
import { C, createRoom, e, expectStatus, putState } from '../rooms/room-helpers.js';
import { eventually, F, startServers } from './federation-helpers.js';

let a: TestServer;
let b: TestServer;
let stop: () => Promise<void>;
let alice: TestUser;

async function knockRoom(name: string, version = '10'): Promise<string> {
  const room = await createRoom(a, alice, { preset: 'private_chat', name, topic: `${name} topic`, room_version: version });
  expectStatus(await putState(a, alice, room, 'm.room.join_rules', '', { join_rule: 'knock' }), 200);
  return room;
}

async function syncRooms(server: TestServer, user: TestUser): Promise<any> {
  const res = await server.request('GET', `${C}/sync`, { token: user.accessToken });
  expectStatus(res, 200);
  return res.body.rooms ?? {};
}

async function membershipOn(server: TestServer, user: TestUser, room: string, target: string): Promise<string | undefined> {
  const res = await server.request('GET', `${C}/rooms/${e(room)}/state/m.room.member/${e(target)}`, { token: user.accessToken });
  return res.status === 200 ? res.body.membership : undefined;
}

before(async () => {
  const started = await startServers(['a.test', 'b.test']);
  [a, b] = started.servers as [TestServer, TestServer];
  stop = started.stop;
  alice = await a.registerUser('alice');
});
after(async () => {
  await stop();
});

test('a user of b.test knocks through make_knock / send_knock and sees the room in /sync knock', async () => {
  const bob = await b.registerUser('bob');
  const room = await knockRoom('Knock here');
  const res = await b.request('POST', `${C}/knock/${e(room)}?via=a.test`, { token: bob.accessToken, body: { reason: 'let me in' } });
  expectStatus(res, 200);
  assert.equal(res.body.room_id, room);
  // The resident holds the knock and shows it to its members.
  assert.equal(await membershipOn(a, alice, room, bob.userId), 'knock');
  const rooms = await syncRooms(b, bob);
  const knock = rooms.knock?.[room];
  assert.ok(knock, `the knock is in bob's /sync: ${JSON.stringify(rooms)}`);
  const events = knock.knock_state.events as any[];
  const find = (type: string, key = '') => events.find((ev) => ev.type === type && ev.state_key === key);
  assert.equal(find('m.room.name')?.content.name, 'Knock here');
  assert.equal(find('m.room.join_rules')?.content.join_rule, 'knock');
  assert.equal(find('m.room.create')?.sender, alice.userId);
  assert.equal(find('m.room.member', bob.userId)?.content.membership, 'knock');
  assert.equal(find('m.room.member', bob.userId)?.content.reason, 'let me in');
  // Stripped state only: no event ids.
  assert.ok(events.every((ev) => ev.event_id === undefined));
});

test('the resident accepts a knock with an invite; the knocker then joins', async () => {
  const carol = await b.registerUser('carol');
  const room = await knockRoom('Accepting');
  expectStatus(await b.request('POST', `${C}/knock/${e(room)}`, { token: carol.accessToken, body: {} }), 200);
  expectStatus(await a.request('POST', `${C}/rooms/${e(room)}/invite`, { token: alice.accessToken, body: { user_id: carol.userId } }), 200);
  await eventually(async () => (await syncRooms(b, carol)).invite?.[room], 'the invite on b.test');
  const rooms = await syncRooms(b, carol);
  assert.equal(rooms.knock?.[room], undefined, 'the knock is no longer shown once invited');
  expectStatus(await b.request('POST', `${C}/rooms/${e(room)}/join`, { token: carol.accessToken, body: {} }), 200);
  assert.equal(await membershipOn(a, alice, room, carol.userId), 'join');
  assert.equal(await membershipOn(b, carol, room, carol.userId), 'join');
});

test('the resident denies a knock by kicking; the knocker sees the room as left', async () => {
  const dave = await b.registerUser('dave');
  const room = await knockRoom('Denying');
  expectStatus(await b.request('POST', `${C}/knock/${e(room)}?server_name=a.test`, { token: dave.accessToken, body: {} }), 200);
  expectStatus(await a.request('POST', `${C}/rooms/${e(room)}/kick`, { token: alice.accessToken, body: { user_id: dave.userId, reason: 'no' } }), 200);
  assert.equal(await membershipOn(a, alice, room, dave.userId), 'leave');
  await eventually(async () => (await syncRooms(b, dave)).knock?.[room] === undefined, 'the knock gone on b.test');
  // Knocking again is possible after a denial.
  expectStatus(await b.request('POST', `${C}/knock/${e(room)}?via=a.test`, { token: dave.accessToken, body: {} }), 200);
  assert.equal(await membershipOn(a, alice, room, dave.userId), 'knock');
});

test('a knocker withdraws the knock by leaving, through make_leave / send_leave', async () => {
  const erin = await b.registerUser('erin');
  const room = await knockRoom('Withdrawing');
  expectStatus(await b.request('POST', `${C}/knock/${e(room)}?via=a.test`, { token: erin.accessToken, body: {} }), 200);
  expectStatus(await b.request('POST', `${C}/rooms/${e(room)}/leave`, { token: erin.accessToken, body: {} }), 200);
  assert.equal(await membershipOn(a, alice, room, erin.userId), 'leave');
  const rooms = await syncRooms(b, erin);
  assert.equal(rooms.knock?.[room], undefined);
});

test('knocks are refused where the join rule or room version does not allow them', async () => {
  const frank = await b.registerUser('frank');
  const invite = await createRoom(a, alice, { preset: 'private_chat', room_version: '10' });
  const res = await b.request('POST', `${C}/knock/${e(invite)}?via=a.test`, { token: frank.accessToken, body: {} });
  expectStatus(res, 403, 'M_FORBIDDEN');
  assert.equal((await syncRooms(b, frank)).knock?.[invite], undefined, 'nothing held after a refusal');
  const old = await createRoom(a, alice, { preset: 'private_chat', room_version: '6' });
  const res6 = await b.request('POST', `${C}/knock/${e(old)}?via=a.test`, { token: frank.accessToken, body: {} });
  assert.ok(res6.status === 400 || res6.status === 403, `status ${res6.status}`);
  const client = b.hs.ctx.services.federation.client;
  // make_knock without `ver` is a bad request; for another server's user, forbidden.
  await assert.rejects(client.request('a.test', { method: 'GET', path: `${F}/make_knock/${e(invite)}/${e(frank.userId)}` }), (err: any) => err.status === 400);
  const room = await knockRoom('Checked');
  await assert.rejects(
    client.request('a.test', { method: 'GET', path: `${F}/make_knock/${e(room)}/${e('@mallory:c.test')}?ver=10` }),
    (err: any) => err.status === 403,
  );
  // send_knock answers with full PDUs of the room's stripped-state events, under both names.
  const made = await client.request<any>('a.test', { method: 'GET', path: `${F}/make_knock/${e(room)}/${e(frank.userId)}?ver=10` });
  assert.equal(made.room_version, '10');
  assert.equal(made.event.content.membership, 'knock');
  const knock = finaliseEvent({ ...made.event, origin_server_ts: Date.now() }, getRoomVersion('10')!, 'b.test', b.hs.ctx.signingKey);
  const answer = await client.request<any>('a.test', { method: 'PUT', path: `${F}/send_knock/${e(room)}/${e(knock.eventId)}`, body: knock.pdu });
  const create = answer.knock_room_state.find((ev: any) => ev.type === 'm.room.create');
  assert.ok(create?.signatures?.['a.test'], 'full, signed PDUs');
  assert.ok(answer.knock_room_state.some((ev: any) => ev.type === 'm.room.join_rules' && ev.content.join_rule === 'knock'));
  assert.ok(!answer.knock_room_state.some((ev: any) => ev.state_key === frank.userId), 'the knock itself is not repeated');
  assert.deepEqual(answer.knock_state_events, answer.knock_room_state);
  assert.equal(await membershipOn(a, alice, room, frank.userId), 'knock');
  await assert.rejects(
    client.request('a.test', { method: 'PUT', path: `${F}/send_knock/${e(room)}/${e('$abc')}`, body: { type: 'm.room.member', room_id: room } }),
    (err: any) => err.status === 400,
  );
});
