// Typing notifications and read receipts between two Hearth servers (server-server-api.md,
// "Typing Notifications" and "Receipts"): set by a client on one server, seen in /sync on the other.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { TestServer, TestUser } from '../helpers/server.js';
import { C, createRoom, e, expectStatus, sendText } from '../rooms/room-helpers.js';
import { eventually, F, startServers } from './federation-helpers.js';

let a: TestServer;
let b: TestServer;
let stop: () => Promise<void>;
let alice: TestUser;
let bob: TestUser;
let roomId: string;

/** The room's ephemeral events of the given type in a fresh /sync. */
async function ephemeral(server: TestServer, user: TestUser, type: string): Promise<any | undefined> {
  const res = await server.request('GET', `${C}/sync`, { token: user.accessToken });
  expectStatus(res, 200);
  return (res.body.rooms?.join?.[roomId]?.ephemeral?.events ?? []).find((ev: any) => ev.type === type);
}

before(async () => {
  const started = await startServers(['a.test', 'b.test']);
  [a, b] = started.servers as [TestServer, TestServer];
  stop = started.stop;
  alice = await a.registerUser('alice');
  bob = await b.registerUser('bob');
  roomId = await createRoom(a, alice, { preset: 'public_chat' });
  expectStatus(await b.request('POST', `${C}/join/${e(roomId)}?via=a.test`, { token: bob.accessToken, body: {} }), 200);
});
after(async () => {
  await stop();
});

test('typing on a.test shows on b.test, and stopping clears it', async () => {
  expectStatus(await a.request('PUT', `${C}/rooms/${e(roomId)}/typing/${e(alice.userId)}`, { token: alice.accessToken, body: { typing: true, timeout: 20_000 } }), 200);
  await eventually(async () => (await ephemeral(b, bob, 'm.typing'))?.content.user_ids.includes(alice.userId), 'alice typing on b.test');
  expectStatus(await a.request('PUT', `${C}/rooms/${e(roomId)}/typing/${e(alice.userId)}`, { token: alice.accessToken, body: { typing: false } }), 200);
  await eventually(async () => {
    const ev = await ephemeral(b, bob, 'm.typing');
    return ev === undefined || !ev.content.user_ids.includes(alice.userId);
  }, 'alice no longer typing on b.test');
});

test('a read receipt on b.test shows on a.test', async () => {
  const eventId = await sendText(a, alice, roomId, 'read me');
  await eventually(async () => (await b.hs.ctx.services.rooms.core.events.get(eventId)) !== undefined, 'the message on b.test');
  expectStatus(await b.request('POST', `${C}/rooms/${e(roomId)}/receipt/m.read/${e(eventId)}`, { token: bob.accessToken, body: {} }), 200);
  await eventually(async () => (await ephemeral(a, alice, 'm.receipt'))?.content[eventId]?.['m.read']?.[bob.userId], 'bob’s receipt on a.test');
});

test('typing EDUs about users of another server than the origin, or not in the room, are ignored', async () => {
  const client = b.hs.ctx.services.federation.client;
  const edus = [
    { edu_type: 'm.typing', content: { room_id: roomId, user_id: '@someone:c.test', typing: true } },
    { edu_type: 'm.typing', content: { room_id: roomId, user_id: '@stranger:b.test', typing: true } },
  ];
  await client.request('a.test', { method: 'PUT', path: `${F}/send/edus-${Date.now()}`, body: { origin: 'b.test', origin_server_ts: Date.now(), pdus: [], edus } });
  const typing = await ephemeral(a, alice, 'm.typing');
  assert.ok(!typing || typing.content.user_ids.length === 0, JSON.stringify(typing));
});
