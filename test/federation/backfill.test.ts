// /messages on a server that joined a room late: history from before the join is backfilled from
// the resident server (backfill.yaml) when local history runs out, and pages on from there.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { TestServer, TestUser } from '../helpers/server.js';
import { C, createRoom, e, expectStatus, messages, sendText } from '../rooms/room-helpers.js';
import { startServers } from './federation-helpers.js';

let a: TestServer;
let b: TestServer;
let stop: () => Promise<void>;
let alice: TestUser;
let bob: TestUser;
let roomId: string;

before(async () => {
  const started = await startServers(['a.test', 'b.test']);
  [a, b] = started.servers as [TestServer, TestServer];
  stop = started.stop;
  alice = await a.registerUser('alice');
  bob = await b.registerUser('bob');
  roomId = await createRoom(a, alice, { preset: 'public_chat', initial_state: [{ type: 'm.room.history_visibility', state_key: '', content: { history_visibility: 'shared' } }] });
  for (let i = 0; i < 25; i++) await sendText(a, alice, roomId, `old ${i}`);
  expectStatus(await b.request('POST', `${C}/join/${e(roomId)}?via=a.test`, { token: bob.accessToken, body: {} }), 200);
});
after(async () => {
  await stop();
});

test('history from before the join is backfilled page by page, newest first, without repeats', async () => {
  const seen: string[] = [];
  let from: string | undefined;
  for (let i = 0; i < 10; i++) {
    const res = await messages(b, bob, roomId, { dir: 'b', limit: 10, ...(from ? { from } : {}) });
    expectStatus(res, 200);
    seen.push(...res.body.chunk.filter((ev: any) => ev.type === 'm.room.message').map((ev: any) => ev.content.body));
    if (!res.body.end) break;
    from = res.body.end;
  }
  const expected = Array.from({ length: 25 }, (_, i) => `old ${24 - i}`);
  assert.deepEqual(seen, expected);
  const create = await messages(b, bob, roomId, { dir: 'b', limit: 1000 });
  assert.ok(create.body.chunk.some((ev: any) => ev.type === 'm.room.create'), 'history reaches the room’s creation');
});
