// Sliding sync (MSC4186) across the end of a partial-state join (joins-v2.yaml, `omit_members`):
// a connection that was sent the room while its state lacked the members a.test left out is sent
// it again when the state is filled in, with the members now known (in device_lists.changed too),
// and a long-poll on it is answered then. b.test reaches a.test through a proxy that holds the /state requests of the resync.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { TestServer, TestUser } from '../helpers/server.js';
import { C, createRoom, e, expectStatus, sendText } from '../rooms/room-helpers.js';
import { SlidingClient } from '../sliding-sync/client.js';
import { eventually, holdingProxy, startPartialStatePair } from './federation-helpers.js';

const MEMBERS = 4;

let a: TestServer;
let b: TestServer;
let stop: () => Promise<void>;
let proxy: Awaited<ReturnType<typeof holdingProxy>>;

before(async () => {
  ({ a, b, stop, proxy } = await startPartialStatePair());
});
after(async () => {
  await stop();
});

const joinedMembers = (room: { required_state: any[] }) =>
  room.required_state
    .filter((ev) => ev.type === 'm.room.member' && ev.content?.membership === 'join')
    .map((ev) => ev.state_key)
    .sort();

test('a room sent while its state was partial is sent again, whole, when the state is filled in', async () => {
  const alice = await a.registerUser('alice');
  const others: TestUser[] = [];
  for (let i = 0; i < MEMBERS; i++) others.push(await a.registerUser(`member${i}`));
  const bob = await b.registerUser('bob');
  const roomId = await createRoom(a, alice, { preset: 'public_chat', name: 'Sliding' });
  for (const u of others) expectStatus(await a.request('POST', `${C}/join/${e(roomId)}`, { token: u.accessToken, body: {} }), 200);

  proxy.hold();
  const asked = proxy.heldRequests();
  expectStatus(await b.request('POST', `${C}/join/${e(roomId)}?server_name=a.test`, { token: bob.accessToken, body: {} }), 200);
  await eventually(async () => proxy.heldRequests() > asked, 'the resync asking a.test for the state');
  await sendText(a, alice, roomId, 'while partial');
  await eventually(async () => (await b.hs.ctx.db.selectFrom('events').select('event_id').where('room_id', '=', roomId).where('type', '=', 'm.room.message').executeTakeFirst()) !== undefined, 'the message on b.test');

  const client = new SlidingClient(b, bob);
  const req = { lists: { all: { ranges: [[0, 9]], timeline_limit: 5, required_state: [['m.room.member', '*']] } }, extensions: { e2ee: { enabled: true } } };
  await client.sync(req);
  const partial = client.rooms.get(roomId)!;
  assert.ok(partial, 'the room is sent while its state is partial');
  const everyone = [alice, ...others].map((u) => u.userId).concat(bob.userId).sort();
  assert.notDeepEqual(joinedMembers(partial), everyone, 'members are missing while the state is partial');

  const longPollMs = 30_000;
  const started = Date.now();
  // The resync takes a while once released: the long-poll is waiting by the time the fill commits
  // (and were it not, its first computation would find the fill).
  const poll = client.sync(req, longPollMs);
  proxy.release();
  const body = await poll;
  assert.ok(Date.now() - started < longPollMs / 2, `answered by the fill, after ${Date.now() - started} ms`);
  const sent = body.rooms?.[roomId];
  assert.ok(sent, 'the room is sent again');
  assert.equal(sent.initial, true, 'the client replaces what it knew of the room');
  assert.equal(sent.joined_count, everyone.length);
  assert.deepEqual(joinedMembers(client.rooms.get(roomId)!), everyone);
  assert.ok(client.rooms.get(roomId)!.timeline.some((ev) => ev.content?.body === 'while partial'), 'the timeline is sent again');
  // The members learnt share a room with bob now: their device lists are to be fetched.
  for (const u of others) assert.ok(body.extensions.e2ee.device_lists.changed.includes(u.userId), `${u.userId} in device_lists.changed`);

  // Sent once: the next request has nothing new for the room.
  const next = await client.sync(req);
  assert.equal(next.rooms?.[roomId], undefined);
});
