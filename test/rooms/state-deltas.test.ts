// Current-state changes are a stream that /sync's membership changes follow: every change, even
// two of one key written in one transaction.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { C, createRoom, expectStatus, join } from './room-helpers.js';

let server: TestServer;
let alice: TestUser;
let bob: TestUser;

before(async () => {
  server = await startTestServer();
  alice = await server.registerUser('sd_alice');
  bob = await server.registerUser('sd_bob');
});
after(async () => {
  await server.stop();
});

test('a leave and a rejoin written in one batch are two membership changes', async () => {
  const roomId = await createRoom(server, alice, { preset: 'public_chat' });
  expectStatus(await join(server, bob, roomId), 200);
  const first = await server.request('GET', `${C}/sync?timeout=0`, { token: bob.accessToken });
  const rooms = server.hs.ctx.services.rooms;
  const since = Number(/^s(\d+)_/.exec(first.body.next_batch)![1]);

  // One job, two events: the pipeline writes them in one transaction.
  const written = await rooms.core.pipeline.submit(roomId, {
    plan: () => ({
      events: [
        { type: 'm.room.member', stateKey: bob.userId, sender: bob.userId, content: { membership: 'leave' } },
        { type: 'm.room.member', stateKey: bob.userId, sender: bob.userId, content: { membership: 'join' } },
      ],
    }),
  });
  assert.equal(written.length, 2);
  const changes = await rooms.getMembershipChanges(bob.userId, since, written[1]!.streamPos);
  assert.deepEqual(
    changes.map((c) => [c.membership, c.eventId]),
    [
      ['leave', written[0]!.eventId],
      ['join', written[1]!.eventId],
    ],
  );
  const later = await server.request('GET', `${C}/sync?timeout=0&since=${first.body.next_batch}`, { token: bob.accessToken });
  expectStatus(later, 200);
  const timeline = later.body.rooms?.join?.[roomId]?.timeline?.events ?? [];
  // A rejoin shows the room afresh; its timeline ends with both changes.
  assert.deepEqual(timeline.slice(-2).map((x: any) => [x.event_id, x.content.membership]), [
    [written[0]!.eventId, 'leave'],
    [written[1]!.eventId, 'join'],
  ]);
});
