// Membership over federation between two Hearth servers: a user of b.test joins a room made on
// a.test (make_join / send_join v2, joins.yaml), messages then flow both ways through each
// server's outbound queue, and the user leaves again (a local leave in a room both servers hold).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { TestServer, TestUser } from '../helpers/server.js';
import { C, createRoom, e, expectStatus, messages, sendText } from '../rooms/room-helpers.js';
import { eventually, F, startServers } from './federation-helpers.js';

let a: TestServer;
let b: TestServer;
let stop: () => Promise<void>;
let alice: TestUser;
let bob: TestUser;
let roomId: string;

async function bodies(server: TestServer, user: TestUser, room: string): Promise<string[]> {
  const res = await messages(server, user, room, { dir: 'b', limit: 100 });
  expectStatus(res, 200);
  return res.body.chunk.filter((ev: any) => ev.type === 'm.room.message').map((ev: any) => ev.content.body);
}

async function joined(server: TestServer, user: TestUser, room: string): Promise<string[]> {
  const res = await server.request('GET', `${C}/rooms/${e(room)}/joined_members`, { token: user.accessToken });
  return res.status === 200 ? Object.keys(res.body.joined).sort() : [];
}

before(async () => {
  const started = await startServers(['a.test', 'b.test']);
  [a, b] = started.servers as [TestServer, TestServer];
  stop = started.stop;
  alice = await a.registerUser('alice');
  bob = await b.registerUser('bob');
  roomId = await createRoom(a, alice, { preset: 'public_chat', name: 'Hearth' });
  await sendText(a, alice, roomId, 'before bob');
});
after(async () => {
  await stop();
});

test('a user of b.test joins a room held only on a.test through make_join and send_join', async () => {
  const res = await b.request('POST', `${C}/join/${e(roomId)}?server_name=a.test`, { token: bob.accessToken, body: {} });
  expectStatus(res, 200);
  assert.equal(res.body.room_id, roomId);
  // b.test holds the room now, with the state it was sent.
  assert.deepEqual(await joined(b, bob, roomId), [alice.userId, bob.userId].sort());
  const name = await b.request('GET', `${C}/rooms/${e(roomId)}/state/m.room.name/`, { token: bob.accessToken });
  expectStatus(name, 200);
  assert.equal(name.body.name, 'Hearth');
  assert.deepEqual(await joined(a, alice, roomId), [alice.userId, bob.userId].sort());
});

test('messages flow both ways through the outbound queues', async () => {
  await sendText(a, alice, roomId, 'hello from a');
  await sendText(b, bob, roomId, 'hello from b');
  await eventually(async () => (await bodies(b, bob, roomId)).includes('hello from a'), 'a.test message on b.test');
  await eventually(async () => (await bodies(a, alice, roomId)).includes('hello from b'), 'b.test message on a.test');
  const sync = await a.request('GET', `${C}/sync`, { token: alice.accessToken });
  expectStatus(sync, 200);
  const timeline = sync.body.rooms.join[roomId].timeline.events.map((ev: any) => ev.content?.body);
  assert.ok(timeline.includes('hello from b'), JSON.stringify(timeline));
  const status = a.hs.ctx.services.federation.sender.status('b.test');
  assert.equal(status?.state, 'up');
  assert.equal(status?.lastError, null);
  assert.ok((status?.deliveredPos ?? 0) > 0);
});

test('make_join is refused for a user of another server, and send_join for a forged event', async () => {
  const client = b.hs.ctx.services.federation.client;
  await assert.rejects(
    client.request('a.test', { method: 'GET', path: `${F}/make_join/${e(roomId)}/${e('@mallory:c.test')}?ver=10` }),
    (err: any) => err.status === 403,
  );
  await assert.rejects(
    client.request('a.test', { method: 'GET', path: `${F}/make_join/${e('!nowhere:a.test')}/${e(bob.userId)}?ver=10` }),
    (err: any) => err.status === 404,
  );
  await assert.rejects(
    client.request('a.test', { method: 'PUT', path: `/_matrix/federation/v2/send_join/${e(roomId)}/${e('$abc')}`, body: { type: 'm.room.message', room_id: roomId } }),
    (err: any) => err.status === 400,
  );
});

test('a user leaving a room both servers hold is seen leaving on the other', async () => {
  const res = await b.request('POST', `${C}/rooms/${e(roomId)}/leave`, { token: bob.accessToken, body: {} });
  expectStatus(res, 200);
  await eventually(async () => !(await joined(a, alice, roomId)).includes(bob.userId), 'the leave on a.test');
});

async function syncInvite(server: TestServer, user: TestUser, room: string): Promise<any> {
  const res = await server.request('GET', `${C}/sync`, { token: user.accessToken });
  expectStatus(res, 200);
  return res.body.rooms?.invite?.[room];
}

test('an invite of a user of b.test, a server not in the room, is shown in /sync there and the user joins through it', async () => {
  const carol = await b.registerUser('carol');
  const room = await createRoom(a, alice, { preset: 'private_chat', name: 'Invite only' });
  const inv = await a.request('POST', `${C}/rooms/${e(room)}/invite`, { token: alice.accessToken, body: { user_id: carol.userId } });
  expectStatus(inv, 200);
  // Held on a.test with b.test's signature.
  const member = await a.request('GET', `${C}/rooms/${e(room)}/state/m.room.member/${e(carol.userId)}`, { token: alice.accessToken });
  expectStatus(member, 200);
  assert.equal(member.body.membership, 'invite');
  const invite = await syncInvite(b, carol, room);
  assert.ok(invite, 'the invite is in carol’s /sync');
  const events = invite.invite_state.events;
  assert.equal(events.find((ev: any) => ev.type === 'm.room.name')?.content.name, 'Invite only');
  assert.equal(events.find((ev: any) => ev.type === 'm.room.member' && ev.state_key === carol.userId)?.sender, alice.userId);
  // Joining needs no server name: the inviter's server is known from the invite.
  expectStatus(await b.request('POST', `${C}/rooms/${e(room)}/join`, { token: carol.accessToken, body: {} }), 200);
  await eventually(async () => (await joined(a, alice, room)).includes(carol.userId), 'carol joined on a.test');
  await sendText(a, alice, room, 'welcome carol');
  await eventually(async () => (await bodies(b, carol, room)).includes('welcome carol'), 'the message on b.test');
});

test('an invite rejected on b.test is a leave on a.test, through make_leave and send_leave', async () => {
  const dave = await b.registerUser('dave');
  const room = await createRoom(a, alice, { preset: 'private_chat' });
  expectStatus(await a.request('POST', `${C}/rooms/${e(room)}/invite`, { token: alice.accessToken, body: { user_id: dave.userId } }), 200);
  assert.ok(await syncInvite(b, dave, room));
  expectStatus(await b.request('POST', `${C}/rooms/${e(room)}/leave`, { token: dave.accessToken, body: {} }), 200);
  // Through make_leave / send_leave: a.test holds the leave by the time b.test answers.
  const m = await a.request('GET', `${C}/rooms/${e(room)}/state/m.room.member/${e(dave.userId)}`, { token: alice.accessToken });
  expectStatus(m, 200);
  assert.equal(m.body.membership, 'leave');
  assert.equal(await syncInvite(b, dave, room), undefined);
  const leaveFilter = encodeURIComponent(JSON.stringify({ room: { include_leave: true } }));
  const left = await b.request('GET', `${C}/sync?filter=${leaveFilter}`, { token: dave.accessToken });
  assert.ok(left.body.rooms?.leave?.[room], 'the rejected invite is a left room on b.test');
});

test('an invite of an unknown user of b.test is refused with 404 and not stored', async () => {
  const room = await createRoom(a, alice, { preset: 'private_chat' });
  const res = await a.request('POST', `${C}/rooms/${e(room)}/invite`, { token: alice.accessToken, body: { user_id: '@nobody:b.test' } });
  expectStatus(res, 404, 'M_NOT_FOUND');
  const m = await a.request('GET', `${C}/rooms/${e(room)}/state/m.room.member/${e('@nobody:b.test')}`, { token: alice.accessToken });
  expectStatus(m, 404);
});

for (const version of ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12']) {
  test(`invite and join across servers in room version ${version}`, async () => {
    const user = await b.registerUser(`v${version}_user`);
    const room = await createRoom(a, alice, { preset: 'private_chat', room_version: version });
    expectStatus(await a.request('POST', `${C}/rooms/${e(room)}/invite`, { token: alice.accessToken, body: { user_id: user.userId } }), 200);
    assert.ok(await syncInvite(b, user, room), 'invite shown');
    expectStatus(await b.request('POST', `${C}/join/${e(room)}?via=a.test`, { token: user.accessToken, body: {} }), 200);
    await eventually(async () => (await joined(a, alice, room)).includes(user.userId), 'joined on a.test');
    await sendText(b, user, room, `hi in v${version}`);
    await eventually(async () => (await bodies(a, alice, room)).includes(`hi in v${version}`), 'message on a.test');
  });
}
