import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { C, createRoom, join, sleep, sync, syncPath } from './util.js';

describe('/sync and end-to-end encryption (spec: Send-to-Device, E2E extensions to /sync)', () => {
  let s: TestServer;
  let alice: TestUser;
  let bob: TestUser;

  before(async () => {
    s = await startTestServer();
    alice = await s.registerUser('e2e_alice');
    bob = await s.registerUser('e2e_bob');
    const roomId = await createRoom(s, alice, { preset: 'public_chat' });
    await join(s, bob, roomId);
  });
  after(async () => {
    await s.stop();
  });

  let txn = 0;
  const sendToDevice = (from: TestUser, to: TestUser, content: Record<string, unknown>) =>
    s.request('PUT', `${C}/sendToDevice/org.example.ping/td${++txn}`, {
      token: from.accessToken,
      body: { messages: { [to.userId]: { [to.deviceId]: content } } },
    });

  it('to-device messages arrive in to_device, wake a long-poll, and are gone once the client syncs past them', async () => {
    const token = (await sync(s, bob)).next_batch;
    const poll = s.request('GET', syncPath({ since: token, timeout: 10000 }), { token: bob.accessToken });
    await sleep(50);
    const started = Date.now();
    assert.equal((await sendToDevice(alice, bob, { n: 1 })).status, 200);
    const r = await poll;
    assert.ok(Date.now() - started < 3000, 'the to-device message woke the long-poll');
    assert.deepEqual(r.body.to_device.events, [{ sender: alice.userId, type: 'org.example.ping', content: { n: 1 } }]);
    // Retrying with the same token gets the message again (the client may not have seen the answer).
    const retry = await sync(s, bob, { since: token });
    assert.equal(retry.to_device.events.length, 1);
    const next = await sync(s, bob, { since: r.body.next_batch });
    assert.deepEqual(next.to_device.events, []);
    const initial = await sync(s, bob);
    assert.deepEqual(initial.to_device.events, [], 'acknowledged messages are deleted');
  });

  it('a queue of to-device messages is delivered in batches of at most 100', async () => {
    const token = (await sync(s, bob)).next_batch;
    for (let i = 0; i < 120; i++) assert.equal((await sendToDevice(alice, bob, { i })).status, 200);
    const first = await sync(s, bob, { since: token });
    assert.equal(first.to_device.events.length, 100);
    assert.deepEqual(first.to_device.events.map((e: any) => e.content.i), Array.from({ length: 100 }, (_, i) => i));
    const second = await sync(s, bob, { since: first.next_batch });
    assert.deepEqual(second.to_device.events.map((e: any) => e.content.i), Array.from({ length: 20 }, (_, i) => 100 + i));
  });

  it('device_one_time_keys_count and device_unused_fallback_key_types follow the uploaded keys', async () => {
    const before = await sync(s, alice);
    assert.deepEqual(before.device_unused_fallback_key_types, []);
    const up = await s.request('POST', `${C}/keys/upload`, {
      token: alice.accessToken,
      body: {
        one_time_keys: {
          'signed_curve25519:AAAAAQ': { key: 'a1', signatures: {} },
          'signed_curve25519:AAAAAg': { key: 'a2', signatures: {} },
        },
        fallback_keys: { 'signed_curve25519:AAAAAw': { key: 'f1', fallback: true, signatures: {} } },
      },
    });
    assert.equal(up.status, 200, JSON.stringify(up.body));
    const body = await sync(s, alice);
    assert.equal(body.device_one_time_keys_count.signed_curve25519, 2);
    assert.deepEqual(body.device_unused_fallback_key_types, ['signed_curve25519']);
  });

  it('device_lists.changed names a room-mate who uploads new device keys', async () => {
    const token = (await sync(s, alice)).next_batch;
    const poll = s.request('GET', syncPath({ since: token, timeout: 10000 }), { token: alice.accessToken });
    await sleep(50);
    const up = await s.request('POST', `${C}/keys/upload`, {
      token: bob.accessToken,
      body: {
        device_keys: {
          user_id: bob.userId,
          device_id: bob.deviceId,
          algorithms: ['m.olm.v1.curve25519-aes-sha2', 'm.megolm.v1.aes-sha2'],
          keys: { [`curve25519:${bob.deviceId}`]: 'c', [`ed25519:${bob.deviceId}`]: 'e' },
          signatures: {},
        },
      },
    });
    assert.equal(up.status, 200, JSON.stringify(up.body));
    const r = await poll;
    assert.ok(r.body.device_lists.changed.includes(bob.userId), JSON.stringify(r.body.device_lists));
    assert.deepEqual(r.body.device_lists.left, []);
  });
});
