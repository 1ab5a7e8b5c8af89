import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { C, createRoom, e, expectStatus, join, messages, putState, roomState, sendText, stateOf } from './room-helpers.js';

let server: TestServer;
let alice: TestUser;
let bob: TestUser;

before(async () => {
  server = await startTestServer();
  alice = await server.registerUser('rs_alice');
  bob = await server.registerUser('rs_bob');
});
after(async () => {
  await server.stop();
});

test('after a restart, history, current state and stream positions are intact and sends continue', async () => {
  const roomId = await createRoom(server, alice, { preset: 'public_chat', name: 'Before restart' });
  expectStatus(await join(server, bob, roomId), 200);
  const sent: string[] = [];
  for (let i = 0; i < 60; i++) sent.push(await sendText(server, alice, roomId, `r${i}`));
  // Enough state changes to cross a full state snapshot (delta chains are capped).
  for (let i = 0; i < 60; i++) expectStatus(await putState(server, alice, roomId, 'org.example.counter', '', { i }), 200);
  const txnId = 'restart-txn';
  const before = await server.request('PUT', `${C}/rooms/${e(roomId)}/send/m.room.message/${txnId}`, { token: alice.accessToken, body: { body: 'txn' } });
  expectStatus(before, 200);
  const lastPosBefore = (await server.hs.ctx.services.rooms.getEventStreamPos(before.body.event_id))!;
  const stateBefore = await roomState(server, alice, roomId);

  await server.restart();
  // The harness's fetch may still hold keep-alive sockets to the old server: let them fail once.
  for (let i = 0; i < 5; i++) {
    try {
      await server.request('GET', '/_matrix/client/versions');
      break;
    } catch {
      /* a stale pooled socket */
    }
  }

  const stateAfter = await roomState(server, alice, roomId);
  const key = (s: any[]) => s.map((ev) => `${ev.type}|${ev.state_key}|${ev.event_id}`).sort();
  assert.deepEqual(key(stateAfter), key(stateBefore));
  assert.equal(stateOf(stateAfter, 'org.example.counter').content.i, 59);
  assert.equal(stateOf(stateAfter, 'm.room.name').content.name, 'Before restart');

  // The transaction id survives the restart.
  const retry = await server.request('PUT', `${C}/rooms/${e(roomId)}/send/m.room.message/${txnId}`, { token: alice.accessToken, body: { body: 'txn' } });
  assert.equal(retry.body.event_id, before.body.event_id);

  const next = await sendText(server, bob, roomId, 'after restart');
  const pos = (await server.hs.ctx.services.rooms.getEventStreamPos(next))!;
  assert.ok(pos > lastPosBefore, 'stream positions continue upwards');

  const page = await messages(server, alice, roomId, { dir: 'b', limit: 200 });
  const bodies = page.body.chunk.filter((ev: any) => ev.type === 'm.room.message').map((ev: any) => ev.content.body);
  assert.equal(bodies[0], 'after restart');
  assert.equal(bodies[1], 'txn');
  assert.deepEqual(bodies.slice(2), sent.map((_, i) => `r${59 - i}`));

  // The new event extends the DAG from the old head.
  const raw = await server.hs.ctx.services.rooms.core.events.get(next);
  assert.deepEqual(raw!.pdu.prev_events, [before.body.event_id]);

  // The state at an old position is still readable (from the stored snapshots).
  const early = await server.hs.ctx.services.rooms.getStateAtPosition(roomId, (await server.hs.ctx.services.rooms.getEventStreamPos(sent[59]!))!);
  assert.equal(early.find((ev) => ev.type === 'org.example.counter'), undefined);
});
