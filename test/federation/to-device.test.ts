// Send-to-device messaging across servers (server-server-api.md, "Send-to-device messaging"):
// a /sendToDevice on a.test for bob of b.test travels as an `m.direct_to_device` EDU and lands
// in his device's /sync inbox, in order and once: an EDU received twice (same sender and
// message_id) is delivered once, and one whose sender is not of the origin server not at all.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestServer, TestUser } from '../helpers/server.js';
import { newDevice } from '../e2ee/helpers.js';
import { C, createRoom, e, expectStatus, txn } from '../rooms/room-helpers.js';
import { eventually, F, startServers } from './federation-helpers.js';

describe('to-device messages across servers', { timeout: 90_000 }, () => {
  let a: TestServer;
  let b: TestServer;
  let stop: () => Promise<void>;
  let alice: TestUser;
  let bob: TestUser;
  let bob2: TestUser;
  const since = new Map<string, string>();

  /** To-device events of the device since its last call. */
  async function inbox(user: TestUser): Promise<any[]> {
    const from = since.get(user.deviceId);
    const res = await b.request('GET', `${C}/sync?timeout=0${from ? `&since=${e(from)}` : ''}`, { token: user.accessToken });
    expectStatus(res, 200);
    since.set(user.deviceId, res.body.next_batch);
    return res.body.to_device?.events ?? [];
  }

  async function collect(user: TestUser, count: number, into: any[] = []): Promise<any[]> {
    await eventually(async () => {
      into.push(...(await inbox(user)));
      return into.length >= count;
    }, `${count} to-device messages for ${user.deviceId}`);
    return into;
  }

  async function sendFromA(messages: Record<string, Record<string, unknown>>, type = 'm.test'): Promise<void> {
    expectStatus(await a.request('PUT', `${C}/sendToDevice/${type}/${txn()}`, { token: alice.accessToken, body: { messages } }), 200);
  }

  async function eduFromA(content: Record<string, unknown>): Promise<void> {
    await a.hs.ctx.services.federation.client.request('b.test', {
      method: 'PUT',
      path: `${F}/send/td-${Date.now()}-${Math.random()}`,
      body: { origin: 'a.test', origin_server_ts: Date.now(), pdus: [], edus: [{ edu_type: 'm.direct_to_device', content }] },
    });
  }

  before(async () => {
    const started = await startServers(['a.test', 'b.test']);
    [a, b] = started.servers as [TestServer, TestServer];
    stop = started.stop;
    alice = await a.registerUser('alice');
    bob = await b.registerUser('bob');
    bob2 = await newDevice(b, bob);
    // A shared room is not needed for to-device messages; one exists so a.test knows b.test.
    const roomId = await createRoom(a, alice, { preset: 'public_chat' });
    expectStatus(await b.request('POST', `${C}/join/${e(roomId)}?via=a.test`, { token: bob.accessToken, body: {} }), 200);
    await inbox(bob);
    await inbox(bob2);
  });
  after(async () => {
    await stop();
  });

  it('messages to one device arrive in its inbox, in the order sent, with alice as sender', async () => {
    for (let i = 0; i < 3; i++) await sendFromA({ [bob.userId]: { [bob.deviceId]: { n: i } } });
    const got = await collect(bob, 3);
    assert.deepEqual(got.map((m) => m.content.n), [0, 1, 2]);
    assert.ok(got.every((m) => m.sender === alice.userId && m.type === 'm.test'));
    assert.deepEqual(await inbox(bob2), [], 'the other device got nothing');
  });

  it('`*` reaches every device of the user', async () => {
    await sendFromA({ [bob.userId]: { '*': { all: true } } });
    for (const d of [bob, bob2]) assert.deepEqual((await collect(d, 1)).map((m) => m.content), [{ all: true }]);
  });

  it('an EDU received twice is delivered once; a sender of another server is refused', async () => {
    const content = { sender: alice.userId, type: 'm.test', message_id: `dup-${Date.now()}`, messages: { [bob.userId]: { [bob.deviceId]: { once: true } } } };
    await eduFromA(content);
    await eduFromA(content);
    await eduFromA({ ...content, sender: '@mallory:c.test', message_id: 'forged', messages: { [bob.userId]: { [bob.deviceId]: { forged: true } } } });
    // A later message shows everything before it has been handled.
    await eduFromA({ ...content, message_id: `after-${Date.now()}`, messages: { [bob.userId]: { [bob.deviceId]: { last: true } } } });
    const got = await collect(bob, 2);
    await new Promise((r) => setTimeout(r, 300));
    got.push(...(await inbox(bob)));
    assert.deepEqual(got.map((m) => m.content), [{ once: true }, { last: true }]);
  });
});
