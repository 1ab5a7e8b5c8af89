import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { nextPositions, readStreamPositions } from '../../src/db/stream-positions.js';
import { MAX_QUEUED_TO_DEVICE } from '../../src/e2ee/to-device.js';
import { insertToDevice } from '../../src/e2ee/to-device-store.js';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { deviceKeys, newDevice } from './helpers.js';

const V3 = '/_matrix/client/v3';

describe('Send-to-device messaging (spec: client-server-api modules/send_to_device.md, to_device.yaml)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await server.stop();
  });

  const send = (u: TestUser, type: string, txn: string, messages: unknown) =>
    server.request('PUT', `${V3}/sendToDevice/${encodeURIComponent(type)}/${encodeURIComponent(txn)}`, {
      token: u.accessToken,
      body: { messages },
    });
  const inbox = async (u: TestUser, from = 0) => {
    const head = (await readStreamPositions(server.hs.ctx.db)).to_device;
    return server.hs.ctx.services.e2ee.getToDevice(u.userId, u.deviceId, from, head, 100);
  };

  it('a message reaches the addressed device with sender, type and content, and wakes the recipient on the bus', async () => {
    const alice = await server.registerUser();
    const bob = await server.registerUser();
    const seen: { stream: string; pos: number; userIds?: string[] }[] = [];
    const off = server.hs.ctx.bus.onAdvance((m) => seen.push(m));
    const res = await send(alice, 'm.room_key_request', 'txn1', { [bob.userId]: { [bob.deviceId]: { action: 'request', n: 1 } } });
    off();
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, {});
    const got = await inbox(bob);
    assert.deepEqual(got.events, [{ sender: alice.userId, type: 'm.room_key_request', content: { action: 'request', n: 1 } }]);
    const msg = seen.find((m) => m.stream === 'to_device');
    assert.ok(msg);
    assert.deepEqual(msg.userIds, [bob.userId]);
    assert.equal(msg.pos, (await readStreamPositions(server.hs.ctx.db)).to_device);
    assert.deepEqual((await inbox(alice)).events, [], 'the sender gets nothing');
  });

  it('the same transaction id from the same device is delivered once; a new transaction id is a new message', async () => {
    const alice = await server.registerUser();
    const bob = await server.registerUser();
    const body = { [bob.userId]: { [bob.deviceId]: { n: 1 } } };
    assert.equal((await send(alice, 'm.test', 'same', body)).status, 200);
    assert.equal((await send(alice, 'm.test', 'same', body)).status, 200);
    assert.equal((await inbox(bob)).events.length, 1, 'retry was idempotent');
    await Promise.all([send(alice, 'm.test', 'race', body), send(alice, 'm.test', 'race', body)]);
    assert.equal((await inbox(bob)).events.length, 2, 'concurrent retries too');
    assert.equal((await send(alice, 'm.test', 'other', body)).status, 200);
    assert.equal((await inbox(bob)).events.length, 3);

    // Transaction ids are scoped to the sending device.
    const alicePhone = await newDevice(server, alice);
    assert.equal((await send(alicePhone, 'm.test', 'same', body)).status, 200);
    assert.equal((await inbox(bob)).events.length, 4);
  });

  it('device id "*" addresses every device of the user, with or without keys', async () => {
    const alice = await server.registerUser();
    const bob = await server.registerUser();
    const bobPhone = await newDevice(server, bob);
    const bobTablet = await newDevice(server, bob);
    for (const d of [bob, bobPhone]) {
      const up = await server.request('POST', `${V3}/keys/upload`, { token: d.accessToken, body: { device_keys: deviceKeys(d) } });
      assert.equal(up.status, 200);
    }
    assert.equal((await send(alice, 'm.test', 'all', { [bob.userId]: { '*': { hello: 'all' } } })).status, 200);
    for (const d of [bob, bobPhone, bobTablet]) {
      assert.deepEqual((await inbox(d)).events, [{ sender: alice.userId, type: 'm.test', content: { hello: 'all' } }]);
    }
  });

  it('messages come oldest first, at most `limit`, and are gone once acknowledged', async () => {
    const alice = await server.registerUser();
    const bob = await server.registerUser();
    const start = (await readStreamPositions(server.hs.ctx.db)).to_device;
    for (let i = 0; i < 5; i++) await send(alice, 'm.test', `t${i}`, { [bob.userId]: { [bob.deviceId]: { i } } });
    const head = (await readStreamPositions(server.hs.ctx.db)).to_device;
    const e2ee = server.hs.ctx.services.e2ee;
    const page = await e2ee.getToDevice(bob.userId, bob.deviceId, start, head, 3);
    assert.deepEqual(page.events.map((e) => (e.content as { i: number }).i), [0, 1, 2]);
    assert.ok(page.nextPos < head);
    const rest = await e2ee.getToDevice(bob.userId, bob.deviceId, page.nextPos, head, 3);
    assert.deepEqual(rest.events.map((e) => (e.content as { i: number }).i), [3, 4]);
    assert.equal(rest.nextPos, head);

    await e2ee.ackToDevice(bob.userId, bob.deviceId, page.nextPos);
    const after = await e2ee.getToDevice(bob.userId, bob.deviceId, 0, head, 100);
    assert.deepEqual(after.events.map((e) => (e.content as { i: number }).i), [3, 4], 'acknowledged messages are deleted');
  });

  it('validation: messages is required (M_BAD_JSON), user ids must be valid (M_INVALID_PARAM), auth is required', async () => {
    const alice = await server.registerUser();
    const missing = await server.request('PUT', `${V3}/sendToDevice/m.test/v1`, { token: alice.accessToken, body: {} });
    assert.equal(missing.status, 400);
    assert.equal(missing.body.errcode, 'M_BAD_JSON');
    const badUser = await send(alice, 'm.test', 'v2', { 'not-a-user': { D: {} } });
    assert.equal(badUser.status, 400);
    assert.equal(badUser.body.errcode, 'M_INVALID_PARAM');
    const badContent = await send(alice, 'm.test', 'v3', { [alice.userId]: { D: 'text' } });
    assert.equal(badContent.status, 400);
    assert.equal(badContent.body.errcode, 'M_BAD_JSON');
    const anon = await server.request('PUT', `${V3}/sendToDevice/m.test/v4`, { body: { messages: {} } });
    assert.equal(anon.status, 401);
    assert.equal(anon.body.errcode, 'M_MISSING_TOKEN');
  });

  it(`a device with ${MAX_QUEUED_TO_DEVICE} undelivered messages gets no more; the other devices of the request get theirs`, async () => {
    const alice = await server.registerUser();
    const bob = await server.registerUser();
    const carol = await server.registerUser();
    // A device that stopped syncing: its inbox filled up (written straight to the table, as many sends would).
    await server.hs.ctx.db.transaction().execute(async (trx) => {
      const first = await nextPositions(trx, 'to_device', MAX_QUEUED_TO_DEVICE);
      const rows = Array.from({ length: MAX_QUEUED_TO_DEVICE }, (_, i) => ({
        user_id: bob.userId,
        device_id: bob.deviceId,
        pos: first + i,
        sender: alice.userId,
        type: 'm.old',
        content: '{}',
        message_id: `old${i}`,
      }));
      await insertToDevice(trx, rows);
    });
    const queued = async (u: TestUser) =>
      Number((await server.hs.ctx.db.selectFrom('to_device').select((eb) => eb.fn.countAll().as('n')).where('user_id', '=', u.userId).where('device_id', '=', u.deviceId).executeTakeFirstOrThrow()).n);
    const res = await send(alice, 'm.room_key', 'full1', { [bob.userId]: { [bob.deviceId]: { k: 1 } }, [carol.userId]: { [carol.deviceId]: { k: 1 } } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const toAll = await send(alice, 'm.room_key', 'full2', { [bob.userId]: { '*': { k: 2 } } });
    assert.equal(toAll.status, 200);
    assert.equal(await queued(bob), MAX_QUEUED_TO_DEVICE, 'nothing more was queued for the full inbox');
    assert.deepEqual((await inbox(carol)).events, [{ sender: alice.userId, type: 'm.room_key', content: { k: 1 } }]);
  });

  it("a deleted device's queued messages are dropped", async () => {
    const alice = await server.registerUser();
    const bob = await server.registerUser();
    const bobPhone = await newDevice(server, bob);
    await send(alice, 'm.test', 'gone', { [bob.userId]: { [bobPhone.deviceId]: { x: 1 } } });
    assert.equal((await inbox(bobPhone)).events.length, 1);
    const e2ee = server.hs.ctx.services.e2ee;
    const pos = await server.hs.ctx.db.transaction().execute((trx) => e2ee.recordDevicesChangedIn(trx, bob.userId, [bobPhone.deviceId]));
    await e2ee.publishDevicesChanged(bob.userId, pos);
    assert.equal((await inbox(bobPhone)).events.length, 0);
  });
});
