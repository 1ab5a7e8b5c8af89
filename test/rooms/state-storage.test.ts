import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { stateKey } from '../../src/core/types.js';
import { MAX_DELTA_DEPTH } from '../../src/rooms/pipeline/apply-event.js';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { createRoom, expectStatus, putState, sendText } from './room-helpers.js';

let server: TestServer;
let alice: TestUser;

before(async () => {
  server = await startTestServer();
  alice = await server.registerUser('ss_alice');
});
after(async () => {
  await server.stop();
});

test('state snapshots share structure: one-entry deltas, a full snapshot when the chain is deep', async () => {
  const roomId = await createRoom(server, alice);
  for (let i = 0; i < 120; i++) expectStatus(await putState(server, alice, roomId, 'org.example.s', String(i % 7), { i }), 200);
  await sendText(server, alice, roomId, 'message events share their parent\'s group');
  const db = server.hs.ctx.db;
  const groups = await db.selectFrom('state_groups').selectAll().where('room_id', '=', roomId).execute();
  const deltas = await db
    .selectFrom('state_group_deltas')
    .select(['state_group', (eb) => eb.fn.countAll().as('n')])
    .where('state_group', 'in', groups.map((g) => g.id))
    .groupBy('state_group')
    .execute();
  const counts = new Map(deltas.map((d) => [Number(d.state_group), Number(d.n)]));
  assert.ok(groups.every((g) => Number(g.delta_depth) <= MAX_DELTA_DEPTH));
  const full = groups.filter((g) => g.prev_group === null);
  assert.ok(full.length >= 3, `full snapshots: ${full.length}`);
  for (const g of groups) if (g.prev_group !== null) assert.equal(counts.get(Number(g.id)), 1, 'a delta holds only the change');
  // One group per state event, none for the message.
  const stateEvents = await db.selectFrom('events').select('event_id').where('room_id', '=', roomId).where('state_key', 'is not', null).execute();
  assert.equal(groups.length, stateEvents.length);

  // A deep group read from the database equals the current state.
  const rooms = server.hs.ctx.services.rooms;
  const head = (await rooms.core.heads.get(roomId))!;
  const deepest = groups.reduce((a, b) => (Number(b.id) > Number(a.id) ? b : a));
  const { StateGroups } = await import('../../src/rooms/state/state-groups.js');
  const fresh = new StateGroups(server.hs.ctx);
  const loaded = await fresh.load(Number(deepest.id));
  assert.deepEqual(new Map([...loaded].sort()), new Map([...head.state].sort()));
  assert.ok(head.state.has(stateKey('org.example.s', '6')));
});

test('caches: our own announcements keep the room head, another writer\'s drop it', async () => {
  const roomId = await createRoom(server, alice);
  await sendText(server, alice, roomId, 'x');
  const heads = server.hs.ctx.services.rooms.core.heads;
  const head = heads.peek(roomId);
  assert.ok(head, 'the head is cached after a write');
  const ev = await server.hs.ctx.services.rooms.core.events.get(head.extremities[0]!.eventId);
  assert.equal(head.lastPos, ev!.streamPos);
  server.hs.ctx.bus.publish({ stream: 'events', pos: head.lastPos, roomId });
  assert.ok(heads.peek(roomId), 'an announcement we made keeps it');
  server.hs.ctx.bus.publish({ stream: 'events', pos: head.lastPos + 1, roomId });
  assert.equal(heads.peek(roomId), undefined, 'a later position from elsewhere drops it');
  // It reloads from the database with the same content.
  const again = await heads.get(roomId);
  assert.deepEqual(again!.extremities, head.extremities);
  assert.deepEqual(new Map([...again!.state].sort()), new Map([...head.state].sort()));
});
