// Presence between two servers (server-server-api.md, "Presence"): alice's status set on a.test
// reaches b.test as an `m.presence` EDU and shows in bob's /sync and /presence; an EDU about a
// user of another server than the origin, or about one who shares no room here, is ignored.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { TestServer, TestUser } from '../helpers/server.js';
import { C, createRoom, e, expectStatus } from '../rooms/room-helpers.js';
import { eventually, F, startServers } from './federation-helpers.js';

let a: TestServer;
let b: TestServer;
let stop: () => Promise<void>;
let alice: TestUser;
let bob: TestUser;

async function presenceOnB(userId: string): Promise<any> {
  const res = await b.request('GET', `${C}/presence/${e(userId)}/status`, { token: bob.accessToken });
  return res.status === 200 ? res.body : undefined;
}

before(async () => {
  const started = await startServers(['a.test', 'b.test']);
  [a, b] = started.servers as [TestServer, TestServer];
  stop = started.stop;
  alice = await a.registerUser('alice');
  bob = await b.registerUser('bob');
  const roomId = await createRoom(a, alice, { preset: 'public_chat' });
  expectStatus(await b.request('POST', `${C}/join/${e(roomId)}?via=a.test`, { token: bob.accessToken, body: {} }), 200);
});
after(async () => {
  await stop();
});

test('alice’s status on a.test shows on b.test, in /presence and in bob’s /sync', async () => {
  expectStatus(await a.request('PUT', `${C}/presence/${e(alice.userId)}/status`, { token: alice.accessToken, body: { presence: 'unavailable', status_msg: 'at lunch' } }), 200);
  const got = await eventually(async () => {
    const p = await presenceOnB(alice.userId);
    return p?.presence === 'unavailable' && p.status_msg === 'at lunch' ? p : undefined;
  }, 'alice unavailable on b.test');
  assert.equal(typeof got.last_active_ago, 'number');
  const sync = await b.request('GET', `${C}/sync?timeout=0`, { token: bob.accessToken });
  const ev = (sync.body.presence?.events ?? []).find((x: any) => x.sender === alice.userId);
  assert.equal(ev?.content.presence, 'unavailable');
  assert.equal(ev?.content.status_msg, 'at lunch');
  expectStatus(await a.request('PUT', `${C}/presence/${e(alice.userId)}/status`, { token: alice.accessToken, body: { presence: 'online' } }), 200);
  await eventually(async () => (await presenceOnB(alice.userId))?.presence === 'online', 'alice online on b.test');
});

test('presence of a user of another server, or of one sharing no room here, is ignored', async () => {
  const carol = await a.registerUser('carol');
  const push = [
    { user_id: '@mallory:c.test', presence: 'online', last_active_ago: 0 },
    { user_id: carol.userId, presence: 'online', last_active_ago: 0 },
    { user_id: alice.userId, presence: 'offline', last_active_ago: 5000 },
  ];
  await a.hs.ctx.services.federation.client.request('b.test', {
    method: 'PUT',
    path: `${F}/send/presence-${Date.now()}`,
    body: { origin: 'a.test', origin_server_ts: Date.now(), pdus: [], edus: [{ edu_type: 'm.presence', content: { push } }] },
  });
  assert.equal((await presenceOnB(alice.userId))?.presence, 'offline', 'the EDU was handled');
  assert.notEqual((await presenceOnB('@mallory:c.test'))?.presence, 'online');
  assert.notEqual((await presenceOnB(carol.userId))?.presence, 'online');
});
