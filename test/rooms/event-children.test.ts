// The children of an event (the reverse of prev_events): what decides whether arriving history is
// older than what is stored, whether a gap may hide a closer event, and which events become forward
// extremities again when a partial-state fill fails an event. On SQLite the send path records a
// message in its prev event's row (`first_child`) rather than as an edge row; both must be read.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { sqliteSync } from '../../src/db/sqlite-sync.js';
import { linkToFirstChildSync, selectIdsWithChildren, selectIdsWithLiveChildren } from '../../src/rooms/store/edges-table.js';
import { FakeRemote, receive, roomHead, statusOf, withEntry } from '../helpers/remote-server.js';
import { startTestServer, TEST_DB, type TestServer, type TestUser } from '../helpers/server.js';
import { createRoom, sendText } from './room-helpers.js';

let server: TestServer;
let alice: TestUser;
const remote = new FakeRemote('remote.test');
const bob = remote.user('bob');

before(async () => {
  server = await startTestServer();
  alice = await server.registerUser('kin_alice');
  remote.trustedBy(server);
});
after(async () => {
  await server.stop();
});

async function depthOf(eventId: string): Promise<number> {
  const row = await server.hs.ctx.db.selectFrom('events').select('depth').where('event_id', '=', eventId).executeTakeFirstOrThrow();
  return Number(row.depth);
}

test('messages sent here are children of their prev events; a fork adds a second child that is read too', async () => {
  const db = server.hs.ctx.db;
  const roomId = await createRoom(server, alice, { preset: 'public_chat', room_version: '10' });
  const h0 = await roomHead(server, roomId);
  const join = remote.event(roomId, '10', { sender: bob, type: 'm.room.member', stateKey: bob, content: { membership: 'join' }, prev: h0.extremities, authFrom: h0.state, depth: h0.depth + 1 });
  assert.equal(statusOf(await receive(server, roomId, { pdus: [join.pdu] }), join.eventId), 'accepted');

  const m1 = await sendText(server, alice, roomId, 'one');
  const m2 = await sendText(server, alice, roomId, 'two');
  assert.deepEqual([...(await selectIdsWithChildren(db, [join.eventId, m1, m2]))].sort(), [join.eventId, m1].sort());
  assert.deepEqual([...(await selectIdsWithLiveChildren(db, [m1], []))], [m1]);
  assert.deepEqual([...(await selectIdsWithLiveChildren(db, [m1], [m2]))], [], 'its only child is excluded');
  if (TEST_DB === 'sqlite') {
    const row = await db.selectFrom('events').select('first_child').where('event_id', '=', m1).executeTakeFirstOrThrow();
    assert.equal(row.first_child, m2, 'the send path wrote the child into the prev event row');
    assert.equal((await db.selectFrom('event_edges').select('event_id').where('prev_event_id', '=', m1).execute()).length, 0);
  }

  // bob's server had seen only m1: its message forks the room there.
  const authFrom = withEntry((await roomHead(server, roomId)).state, 'm.room.member', bob, join.eventId);
  const fork = remote.event(roomId, '10', { sender: bob, type: 'm.room.message', content: { msgtype: 'm.text', body: 'fork' }, prev: [m1], authFrom, depth: (await depthOf(m1)) + 1 });
  assert.equal(statusOf(await receive(server, roomId, { pdus: [fork.pdu] }), fork.eventId), 'accepted');
  assert.deepEqual([...(await roomHead(server, roomId)).extremities].sort(), [m2, fork.eventId].sort());
  assert.deepEqual([...(await selectIdsWithLiveChildren(db, [m1], [m2]))], [m1], 'the fork is a child that stands');
  assert.deepEqual([...(await selectIdsWithLiveChildren(db, [m1], [m2, fork.eventId]))], []);
  assert.deepEqual([...(await selectIdsWithChildren(db, [m2, fork.eventId]))], []);
});

test('SQLite: a prev event that already has a first child gets an edge row for the next one', { skip: TEST_DB !== 'sqlite' }, async () => {
  const db = server.hs.ctx.db;
  const roomId = await createRoom(server, alice, { preset: 'private_chat' });
  const m1 = await sendText(server, alice, roomId, 'one');
  const m2 = await sendText(server, alice, roomId, 'two');
  const m3 = await sendText(server, alice, roomId, 'three');
  // As if m3 had also named m1 (a fork point seen again): m1's first child stays m2.
  await sqliteSync(db)!.transaction((tx) => linkToFirstChildSync(tx, [[m3, m1]]));
  const row = await db.selectFrom('events').select('first_child').where('event_id', '=', m1).executeTakeFirstOrThrow();
  assert.equal(row.first_child, m2);
  assert.deepEqual((await db.selectFrom('event_edges').select('event_id').where('prev_event_id', '=', m1).execute()).map((r) => r.event_id), [m3]);
  assert.deepEqual([...(await selectIdsWithLiveChildren(db, [m1], [m2]))], [m1], 'm3 stands');
  assert.deepEqual([...(await selectIdsWithLiveChildren(db, [m1], [m2, m3]))], []);
});
