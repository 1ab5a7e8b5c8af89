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
