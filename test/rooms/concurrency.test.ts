import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { C, createRoom, e, expectStatus, join } from './room-helpers.js';

let server: TestServer;
let alice: TestUser;
let bob: TestUser;

before(async () => {
  server = await startTestServer();
  alice = await server.registerUser('cc_alice');
  bob = await server.registerUser('cc_bob');
});
after(async () => {
  await server.stop();
});

test('50 parallel sends into one room: all succeed, distinct increasing positions, a linear DAG', async () => {
  const roomId = await createRoom(server, alice, { preset: 'public_chat' });
  expectStatus(await join(server, bob, roomId), 200);
  const results = await Promise.all(
    Array.from({ length: 50 }, (_, i) => {
      const user = i % 2 === 0 ? alice : bob;
      return server.request('PUT', `${C}/rooms/${e(roomId)}/send/m.room.message/par${i}`, { token: user.accessToken, body: { msgtype: 'm.text', body: `p${i}` } });
    }),
  );
  for (const r of results) expectStatus(r, 200);
  const ids = results.map((r) => r.body.event_id as string);
  assert.equal(new Set(ids).size, 50);

  const rooms = server.hs.ctx.services.rooms;
  const events = await Promise.all(ids.map((id) => rooms.core.events.get(id)));
  const ordered = events.map((ev) => ev!).sort((a, b) => a.streamPos! - b.streamPos!);
  const positions = ordered.map((ev) => ev.streamPos!);
  assert.equal(new Set(positions).size, 50);
  for (let i = 1; i < ordered.length; i++) {
    assert.ok(positions[i]! > positions[i - 1]!);
    assert.deepEqual(ordered[i]!.pdu.prev_events, [ordered[i - 1]!.eventId], 'each event points at the previous one');
    assert.equal(ordered[i]!.pdu.depth, ordered[i - 1]!.pdu.depth + 1);
  }
  // The first of them extends bob's join.
  const head = await rooms.core.heads.get(roomId);
  assert.deepEqual(head!.extremities.map((x) => x.eventId), [ordered[49]!.eventId]);

  // Parallel sends into different rooms proceed independently.
  const others = await Promise.all(Array.from({ length: 5 }, () => createRoom(server, alice)));
  const multi = await Promise.all(
    others.flatMap((r, i) =>
      Array.from({ length: 10 }, (_, j) =>
        server.request('PUT', `${C}/rooms/${e(r)}/send/m.room.message/multi${i}_${j}`, { token: alice.accessToken, body: { body: `${i}/${j}` } }),
      ),
    ),
  );
  for (const r of multi) expectStatus(r, 200);
  const all = await Promise.all(multi.map((r) => rooms.core.events.get(r.body.event_id)));
  assert.equal(new Set(all.map((ev) => ev!.streamPos)).size, 50);
});

test('parallel identical joins: every request succeeds and one join event is written', async () => {
  const roomId = await createRoom(server, alice, { preset: 'public_chat' });
  const carol = await server.registerUser('cc_carol');
  const results = await Promise.all(Array.from({ length: 6 }, () => join(server, carol, roomId)));
  for (const r of results) expectStatus(r, 200);
  const res = await server.request('GET', `${C}/rooms/${e(roomId)}/messages?dir=b&limit=50`, { token: alice.accessToken });
  const joins = res.body.chunk.filter((ev: any) => ev.type === 'm.room.member' && ev.state_key === carol.userId);
  assert.equal(joins.length, 1);
});
