// Three Hearth servers: a room made on a.test is joined from b.test (through a.test) and from
// c.test (through b.test); messages flow every way and reach every user's /sync. Then c.test is
// stopped, a.test and b.test go on talking (and a.test restarts meanwhile), and once c.test is
// back each queue delivers what it missed: b.test's by its own retry, a.test's (resumed from its
// stored position after its restart) as soon as c.test contacts it.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { TestServer, TestUser } from '../helpers/server.js';
import { C, createRoom, e, expectStatus, sendText } from '../rooms/room-helpers.js';
import { eventually, startServers } from './federation-helpers.js';

let a: TestServer;
let b: TestServer;
let c: TestServer;
let stop: () => Promise<void>;
let alice: TestUser;
let bob: TestUser;
let carol: TestUser;
let roomId: string;

const FILTER = encodeURIComponent(JSON.stringify({ room: { timeline: { limit: 100 } } }));

/** Message bodies in the room's timeline of the user's initial /sync. */
async function synced(server: TestServer, user: TestUser): Promise<string[]> {
  const res = await server.request('GET', `${C}/sync?filter=${FILTER}`, { token: user.accessToken });
  expectStatus(res, 200);
  const events = res.body.rooms?.join?.[roomId]?.timeline?.events ?? [];
  return events.filter((ev: any) => ev.type === 'm.room.message').map((ev: any) => ev.content.body);
}

async function seesAll(server: TestServer, user: TestUser, wanted: string[]): Promise<void> {
  await eventually(async () => {
    const got = await synced(server, user);
    return wanted.every((w) => got.includes(w));
  }, `${user.userId} to see ${wanted.join(', ')}`, 20_000);
}

before(async () => {
  const started = await startServers(['a.test', 'b.test', 'c.test']);
  [a, b, c] = started.servers as [TestServer, TestServer, TestServer];
  stop = started.stop;
  alice = await a.registerUser('alice');
  bob = await b.registerUser('bob');
  carol = await c.registerUser('carol');
  roomId = await createRoom(a, alice, { preset: 'public_chat', name: 'Three servers' });
});
after(async () => {
  await stop();
});

test('joined from b.test through a.test and from c.test through b.test', async () => {
  expectStatus(await b.request('POST', `${C}/join/${e(roomId)}?via=a.test`, { token: bob.accessToken, body: {} }), 200);
  expectStatus(await c.request('POST', `${C}/join/${e(roomId)}?via=b.test`, { token: carol.accessToken, body: {} }), 200);
  const everyone = [alice.userId, bob.userId, carol.userId].sort();
  for (const [server, user] of [[a, alice], [b, bob], [c, carol]] as const) {
    await eventually(async () => {
      const res = await server.request('GET', `${C}/rooms/${e(roomId)}/joined_members`, { token: user.accessToken });
      return res.status === 200 && JSON.stringify(Object.keys(res.body.joined).sort()) === JSON.stringify(everyone);
    }, `every member joined as seen on ${server.serverName}`);
  }
});

test('messages flow every way and are in each user’s /sync', async () => {
  await sendText(a, alice, roomId, 'from a');
  await sendText(b, bob, roomId, 'from b');
  await sendText(c, carol, roomId, 'from c');
  const all = ['from a', 'from b', 'from c'];
  await seesAll(a, alice, all);
  await seesAll(b, bob, all);
  await seesAll(c, carol, all);
});

test('a server stopped and started again catches up through the queues, nothing lost', async () => {
  // b.test retries c.test quickly on its own; a.test keeps its long default wait.
  b.hs.ctx.services.federation.sender.backoff.initialMs = 300;
  b.hs.ctx.services.federation.sender.backoff.maxMs = 600;
  await c.hs.stop();
  const missed: string[] = [];
  for (let i = 0; i < 3; i++) {
    missed.push(`a while c is down ${i}`, `b while c is down ${i}`);
    await sendText(a, alice, roomId, `a while c is down ${i}`);
    await sendText(b, bob, roomId, `b while c is down ${i}`);
  }
  await seesAll(a, alice, missed);
  await seesAll(b, bob, missed);
  await eventually(async () => b.hs.ctx.services.federation.sender.status('c.test')?.state === 'backing_off', 'b.test backing off c.test');
  const down = b.hs.ctx.services.federation.sender.status('c.test')!;
  assert.ok(down.failingSince !== null && down.lastError !== null, JSON.stringify(down));

  // a.test restarts while c.test is away: its queue for c.test resumes from the stored position.
  await a.restart();
  await sendText(a, alice, roomId, 'a after its restart');
  missed.push('a after its restart');
  await eventually(async () => a.hs.ctx.services.federation.sender.status('c.test')?.state === 'backing_off', 'a.test backing off c.test');

  await c.restart();
  // b.test's own retry delivers its messages.
  await seesAll(c, carol, missed.filter((m) => m.startsWith('b ')));
  // c.test contacting a.test (carol's message) wakes a.test's queue at once.
  await sendText(c, carol, roomId, 'c is back');
  await seesAll(c, carol, missed);
  await seesAll(a, alice, ['c is back']);
  await seesAll(b, bob, ['c is back']);
  await eventually(async () => a.hs.ctx.services.federation.sender.status('c.test')?.state === 'up', 'a.test sees c.test up');
  assert.equal(a.hs.ctx.services.federation.sender.status('c.test')?.lastError, null);
});
