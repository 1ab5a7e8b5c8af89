// timestamp_to_event when the history is on another server (room_event_by_timestamp.yaml and
// server-server events.yaml): b.test joined a.test's room late, so the messages before its join
// are held on a.test only. A client of b.test asking for a moment before the join is answered
// with a.test's event, backfilled onto b.test so /context works on it; a.test answers the
// federation endpoint to a server in the room only.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { TestServer, TestUser } from '../helpers/server.js';
import { C, createRoom, e, expectStatus, sendText } from '../rooms/room-helpers.js';
import { F, keyServer, signedRequest, startServers } from './federation-helpers.js';

const V1 = '/_matrix/client/v1';

let a: TestServer;
let b: TestServer;
let stop: () => Promise<void>;
let alice: TestUser;
let bob: TestUser;
interface LateRoom {
  roomId: string;
  /** alice's two messages before b.test joined. */
  early: { id: string; ts: number }[];
  /** A moment after them and before the join. */
  beforeJoin: number;
}
/** One room per direction: answering one backfills what the other would ask for. */
let forwards: LateRoom;
let backwards: LateRoom;

const pause = () => new Promise((r) => setTimeout(r, 30));

async function lateRoom(): Promise<LateRoom> {
  const roomId = await createRoom(a, alice, { preset: 'public_chat' });
  const early: { id: string; ts: number }[] = [];
  for (const text of ['first', 'second']) {
    await pause();
    const id = await sendText(a, alice, roomId, text);
    const res = await a.request('GET', `${C}/rooms/${e(roomId)}/event/${e(id)}`, { token: alice.accessToken });
    expectStatus(res, 200);
    early.push({ id, ts: res.body.origin_server_ts as number });
  }
  await pause();
  const beforeJoin = Date.now();
  await pause();
  expectStatus(await b.request('POST', `${C}/join/${e(roomId)}?via=a.test`, { token: bob.accessToken, body: {} }), 200);
  return { roomId, early, beforeJoin };
}

async function heldOnB(eventId: string): Promise<boolean> {
  return (await b.hs.ctx.services.rooms.core.events.get(eventId))?.stateGroup != null;
}

before(async () => {
  const started = await startServers(['a.test', 'b.test']);
  [a, b] = started.servers as [TestServer, TestServer];
  stop = started.stop;
  alice = await a.registerUser('alice');
  bob = await b.registerUser('bob');
  forwards = await lateRoom();
  backwards = await lateRoom();
});
after(async () => {
  await stop();
});

async function nearest(roomId: string, ts: number, dir: 'f' | 'b') {
  return b.request('GET', `${V1}/rooms/${e(roomId)}/timestamp_to_event?ts=${ts}&dir=${dir}`, { token: bob.accessToken });
}

test('before the join, forwards: a.test’s first message, then held on b.test for /context', async () => {
  const [first] = forwards.early;
  assert.equal(await heldOnB(first!.id), false, 'not held on b.test before');
  const res = await nearest(forwards.roomId, first!.ts - 5, 'f');
  expectStatus(res, 200);
  assert.deepEqual(res.body, { event_id: first!.id, origin_server_ts: first!.ts });
  const ctx = await b.request('GET', `${C}/rooms/${e(forwards.roomId)}/context/${e(first!.id)}?limit=2`, { token: bob.accessToken });
  expectStatus(ctx, 200);
  assert.equal(ctx.body.event.content.body, 'first');
});

test('between the last message and the join, backwards: a.test’s second message', async () => {
  const second = backwards.early[1]!;
  assert.equal(await heldOnB(second.id), false, 'not held on b.test before');
  const res = await nearest(backwards.roomId, backwards.beforeJoin, 'b');
  expectStatus(res, 200);
  assert.deepEqual(res.body, { event_id: second.id, origin_server_ts: second.ts });
  assert.equal(await heldOnB(second.id), true);
});

test('after the join, backwards from later on: the event held on b.test', async () => {
  const id = await sendText(b, bob, backwards.roomId, 'late');
  const res = await nearest(backwards.roomId, Date.now() + 1000, 'b');
  expectStatus(res, 200);
  assert.equal(res.body.event_id, id);
});

test('the federation endpoint: the nearest event to a server in the room, 403 to one that is not, 404 for none', async () => {
  const client = b.hs.ctx.services.federation.client;
  const { roomId, early } = forwards;
  const got = await client.request<any>('a.test', { method: 'GET', path: `${F}/timestamp_to_event/${e(roomId)}?ts=${early[1]!.ts - 1}&dir=f` });
  assert.deepEqual(got, { event_id: early[1]!.id, origin_server_ts: early[1]!.ts });
  const stranger = await keyServer('c.test');
  try {
    a.hs.ctx.config.federation.resolve['c.test'] = stranger.url;
    const res = await signedRequest(a, 'GET', `${F}/timestamp_to_event/${e(roomId)}?ts=0&dir=f`, { origin: 'c.test', key: stranger.key });
    expectStatus(res, 403, 'M_FORBIDDEN');
  } finally {
    await stranger.close();
  }
  const none: any = await client.request('a.test', { method: 'GET', path: `${F}/timestamp_to_event/${e(roomId)}?ts=${Date.now() + 3600_000}&dir=f` }).catch((err: any) => err);
  assert.equal(none.status, 404);
  const bad: any = await client.request('a.test', { method: 'GET', path: `${F}/timestamp_to_event/${e(roomId)}?ts=soon&dir=f` }).catch((err: any) => err);
  assert.equal(bad.status, 400);
});
