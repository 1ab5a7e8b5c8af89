// The outbound sender's queues (src/federation/outbound/): a destination that is away is backed
// off with its state reported, holds no more than its memory bound while events pile up (the rest
// is read again from the events stream), keeps its position in the database, and receives every
// event, in order, once it is back.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { TestServer, TestUser } from '../helpers/server.js';
import { C, createRoom, e, expectStatus, messages, sendText } from '../rooms/room-helpers.js';
import { eventually, startServers } from './federation-helpers.js';

let a: TestServer;
let b: TestServer;
let stop: () => Promise<void>;
let alice: TestUser;
let bob: TestUser;
let roomId: string;

async function bodies(server: TestServer, user: TestUser): Promise<string[]> {
  const res = await messages(server, user, roomId, { dir: 'b', limit: 200 });
  expectStatus(res, 200);
  return res.body.chunk.filter((ev: any) => ev.type === 'm.room.message').map((ev: any) => ev.content.body).reverse();
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

test('a destination that is away backs off, holds bounded memory, and gets every event in order when back', async () => {
  const sender = a.hs.ctx.services.federation.sender;
  sender.limits.maxHints = 5;
  sender.backoff.initialMs = 200;
  sender.backoff.maxMs = 400;
  await sendText(a, alice, roomId, 'while up');
  await eventually(async () => (await bodies(b, bob)).includes('while up'), 'the first message on b.test');
  assert.equal(sender.status('b.test')?.state, 'up');

  await b.hs.stop();
  const sent: string[] = [];
  for (let i = 0; i < 30; i++) {
    sent.push(`queued ${i}`);
    await sendText(a, alice, roomId, `queued ${i}`);
    assert.ok((sender.status('b.test')?.queueDepth ?? 0) <= 5, 'no more than the bound in memory');
  }
  // A request b.test made while it stopped wakes the queue (retryAt null) until that retry fails
  // too: the backoff is read once a retry is scheduled.
  const away = await eventually(async () => {
    const s = sender.status('b.test');
    return s?.state === 'backing_off' && s.catchingUp && s.retryAt !== null ? s : undefined;
  }, 'b.test backed off');
  assert.ok(away.failingSince !== null && away.lastError !== null && away.retryAt !== null, JSON.stringify(away));
  const row = await a.hs.ctx.db.selectFrom('federation_destinations').selectAll().where('destination', '=', 'b.test').executeTakeFirstOrThrow();
  assert.ok(row.failing_since !== null && row.last_error !== null, 'the failure is recorded');
  assert.equal(Number(row.delivered_pos), away.deliveredPos);

  await b.restart();
  await eventually(async () => {
    const got = await bodies(b, bob);
    return sent.every((m) => got.includes(m));
  }, 'every queued message on b.test', 20_000);
  const got = (await bodies(b, bob)).filter((m) => m.startsWith('queued '));
  assert.deepEqual(got, sent, 'in order, each once');
  await eventually(async () => sender.status('b.test')?.state === 'up', 'b.test up again');
  const after = await a.hs.ctx.db.selectFrom('federation_destinations').selectAll().where('destination', '=', 'b.test').executeTakeFirstOrThrow();
  assert.equal(after.failing_since, null);
  assert.ok(Number(after.delivered_pos) > Number(row.delivered_pos));
});

test('a destination backed off for long is woken at once when it makes a request here', async () => {
  const sender = a.hs.ctx.services.federation.sender;
  sender.backoff.initialMs = 120_000;
  sender.backoff.maxMs = 120_000;
  await b.hs.stop();
  await sendText(a, alice, roomId, 'sent while b is down');
  const away = await eventually(async () => {
    const s = sender.status('b.test');
    return s?.state === 'backing_off' && s.retryAt !== null ? s : undefined;
  }, 'b.test backed off');
  assert.ok(away.retryAt! - Date.now() > 60_000, 'the next try is far away');
  await b.restart();
  // Any authenticated request from b.test will do: here bob's message.
  await sendText(b, bob, roomId, 'b is back');
  await eventually(async () => (await bodies(b, bob)).includes('sent while b is down'), 'the queued message on b.test', 10_000);
  // b.test stores the transaction before it answers; a.test marks it up when the answer comes.
  // Both well inside the two minutes of the backoff, so the wake, not the timer, did it.
  await eventually(async () => sender.status('b.test')?.state === 'up', 'b.test up again', 10_000);
});

/** Bodies of the room's messages stored on `server`, in stream order, whoever may see them. */
async function storedBodies(server: TestServer, room: string): Promise<string[]> {
  const rows = await server.hs.ctx.db
    .selectFrom('events')
    .select('json')
    .where('room_id', '=', room)
    .where('type', '=', 'm.room.message')
    .orderBy('stream_pos')
    .execute();
  return rows.map((r) => JSON.parse(r.json).content.body);
}

test('an event made before a server joined is not sent to it, though the sender sorts it after the join', async () => {
  // The sender sorts events some time after their commit; when it runs behind, a join can be
  // committed before it reaches the events made before that join. Who receives an event is decided
  // by the room's members at the event (its state), not by the members when the sender gets to it:
  // in a room whose history is for joined members only, the server that joined later must not get
  // what was said before (spec: "history visibility"; a server should send an event to the servers
  // in the room at that event).
  const sender = a.hs.ctx.services.federation.sender;
  sender.backoff.initialMs = 200;
  sender.backoff.maxMs = 400;
  const room = await createRoom(a, alice, {
    preset: 'public_chat',
    initial_state: [{ type: 'm.room.history_visibility', state_key: '', content: { history_visibility: 'joined' } }],
  });
  await sender.idle();
  // The sender stops where it has sorted to: all that follows is sorted after bob's join.
  await sender.stop();
  try {
    await sendText(a, alice, room, 'before bob joined');
    expectStatus(await b.request('POST', `${C}/join/${e(room)}?via=a.test`, { token: bob.accessToken, body: {} }), 200);
    await sendText(a, alice, room, 'after bob joined');
  } finally {
    await sender.start();
  }
  await eventually(async () => (await storedBodies(b, room)).includes('after bob joined'), 'the later message on b.test', 10_000);
  await sender.idle();
  assert.deepEqual(await storedBodies(b, room), ['after bob joined']);
  // The earlier one was sorted to nobody: b.test is in no queue for it.
  assert.deepEqual(await storedBodies(a, room), ['before bob joined', 'after bob joined']);
});
