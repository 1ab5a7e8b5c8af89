// Device lists across servers (server-server-api.md, "Device Management"): a.test sends
// `m.device_list_update` EDUs with `stream_id` and `prev_id` when alice's devices change, and
// `m.signing_key_update` when her cross-signing keys do; b.test keeps her list while a room is
// shared, answers /keys/query from it without asking a.test, shows her in bob's
// `device_lists.changed`, fetches the whole list through `/user/devices` when an update shows a
// gap, and marks the copy stale once no room is shared.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FederationRequest } from '../../src/federation/client.js';
import type { TestServer, TestUser } from '../helpers/server.js';
import { deviceKeys, newClientKey, newDevice, sign, type ClientKey } from '../e2ee/helpers.js';
import { C, createRoom, e, expectStatus } from '../rooms/room-helpers.js';
import { eventually, F, startServers } from './federation-helpers.js';

describe('device lists across servers', { timeout: 120_000 }, () => {
  let a: TestServer;
  let b: TestServer;
  let stop: () => Promise<void>;
  let alice: TestUser;
  let bob: TestUser;
  let roomId: string;
  let since: string;
  /** Paths b.test asked of other servers. */
  const asked: string[] = [];

  const askedOf = (prefix: string) => asked.filter((p) => p.startsWith(prefix)).length;
  const remoteRow = () => b.hs.ctx.db.selectFrom('remote_device_lists').selectAll().where('user_id', '=', alice.userId).executeTakeFirst();

  async function syncFrom(token: string): Promise<any> {
    const res = await b.request('GET', `${C}/sync?since=${e(token)}&timeout=0`, { token: bob.accessToken });
    expectStatus(res, 200);
    return res.body;
  }

  async function queryAlice(): Promise<any> {
    const res = await b.request('POST', `${C}/keys/query`, { token: bob.accessToken, body: { device_keys: { [alice.userId]: [] } } });
    expectStatus(res, 200);
    return res.body;
  }

  /** An EDU sent to b.test as a.test (signed by a.test's key). */
  async function eduFromA(edu_type: string, content: Record<string, unknown>): Promise<void> {
    await a.hs.ctx.services.federation.client.request('b.test', {
      method: 'PUT',
      path: `${F}/send/dl-${Date.now()}-${Math.random()}`,
      body: { origin: 'a.test', origin_server_ts: Date.now(), pdus: [], edus: [{ edu_type, content }] },
    });
  }

  before(async () => {
    const started = await startServers(['a.test', 'b.test']);
    [a, b] = started.servers as [TestServer, TestServer];
    stop = started.stop;
    const client = b.hs.ctx.services.federation.client;
    const real = client.request.bind(client);
    client.request = (<T>(dest: string, req: FederationRequest) => {
      asked.push(req.path);
      return real<T>(dest, req);
    }) as typeof client.request;
    alice = await a.registerUser('alice');
    bob = await b.registerUser('bob');
    roomId = await createRoom(a, alice, { preset: 'public_chat' });
    expectStatus(await b.request('POST', `${C}/join/${e(roomId)}?via=a.test`, { token: bob.accessToken, body: {} }), 200);
    const first = await b.request('GET', `${C}/sync?timeout=0`, { token: bob.accessToken });
    since = first.body.next_batch;
  });
  after(async () => {
    await stop();
  });

  it('alice’s new device keys reach b.test; bob’s /sync lists her in device_lists.changed', async () => {
    const dk = deviceKeys(alice);
    expectStatus(await a.request('POST', `${C}/keys/upload`, { token: alice.accessToken, body: { device_keys: dk } }), 200);
    await eventually(async () => (await remoteRow())?.stale === 0, 'b.test holds alice’s device list');
    await eventually(async () => (await syncFrom(since)).device_lists?.changed?.includes(alice.userId), 'alice in device_lists.changed');
    const q = await queryAlice();
    assert.deepEqual(q.failures, {});
    assert.deepEqual(q.device_keys[alice.userId][alice.deviceId].keys, (dk as any).keys);
    since = (await syncFrom(since)).next_batch;
  });

  it('a further change applies in place: no whole-list fetch, and /keys/query is answered without asking a.test', async () => {
    const before = { devices: askedOf(`${F}/user/devices/`), query: askedOf(`${F}/user/keys/query`) };
    const row0 = (await remoteRow())!;
    const alice2 = await newDevice(a, alice);
    const dk2 = deviceKeys(alice2);
    expectStatus(await a.request('POST', `${C}/keys/upload`, { token: alice2.accessToken, body: { device_keys: dk2 } }), 200);
    await eventually(async () => {
      const q = await queryAlice();
      return q.device_keys[alice.userId][alice2.deviceId]?.keys?.[`ed25519:${alice2.deviceId}`] === (dk2 as any).keys[`ed25519:${alice2.deviceId}`];
    }, 'alice’s second device on b.test');
    assert.ok(Number((await remoteRow())!.stream_id) > Number(row0.stream_id), 'the stream_id moved on');
    assert.equal(askedOf(`${F}/user/devices/`), before.devices, 'no resync');
    assert.equal(askedOf(`${F}/user/keys/query`), before.query, 'answered from the copy on b.test');
    await eventually(async () => (await syncFrom(since)).device_lists?.changed?.includes(alice.userId), 'alice in device_lists.changed again');
  });

  it('an update whose prev_id was never seen makes b.test fetch the whole list; an old or foreign one changes nothing', async () => {
    const row = (await remoteRow())!;
    const fetches = askedOf(`${F}/user/devices/`);
    // Older than the copy: ignored.
    await eduFromA('m.device_list_update', { user_id: alice.userId, device_id: 'OLD', stream_id: Number(row.stream_id) - 1, prev_id: [], keys: deviceKeys({ ...alice, deviceId: 'OLD' }) });
    // About a user of another server than the origin: ignored.
    await eduFromA('m.device_list_update', { user_id: bob.userId, device_id: 'X', stream_id: 1_000_000, prev_id: [999_999] });
    assert.equal(askedOf(`${F}/user/devices/`), fetches);
    assert.equal((await queryAlice()).device_keys[alice.userId].OLD, undefined);
    // A gap: prev_id names an update b.test never received.
    await eduFromA('m.device_list_update', {
      user_id: alice.userId,
      device_id: 'GAP',
      stream_id: Number(row.stream_id) + 1000,
      prev_id: [Number(row.stream_id) + 999],
      keys: deviceKeys({ ...alice, deviceId: 'GAP' }),
    });
    await eventually(async () => askedOf(`${F}/user/devices/${e(alice.userId)}`) > 0 && askedOf(`${F}/user/devices/`) > fetches, 'a resync through /user/devices');
    // The list is a.test's own: the device named only in the EDU is not in it.
    assert.equal((await queryAlice()).device_keys[alice.userId].GAP, undefined);
  });

  it('alice’s cross-signing keys reach b.test as m.signing_key_update', async () => {
    const master: ClientKey = newClientKey();
    const ssk: ClientKey = newClientKey();
    const xs = (usage: string, k: ClientKey) => ({ user_id: alice.userId, usage: [usage], keys: { [`ed25519:${k.pub}`]: k.pub } });
    const mk = `ed25519:${master.pub}`;
    const body = { master_key: xs('master', master), self_signing_key: sign(xs('self_signing', ssk), alice.userId, mk, master) };
    const query = askedOf(`${F}/user/keys/query`);
    expectStatus(await a.request('POST', `${C}/keys/device_signing/upload`, { token: alice.accessToken, body }), 200);
    await eventually(async () => (await queryAlice()).master_keys?.[alice.userId]?.keys?.[mk] === master.pub, 'alice’s master key on b.test');
    assert.equal((await queryAlice()).self_signing_keys[alice.userId].keys[`ed25519:${ssk.pub}`], ssk.pub);
    assert.equal(askedOf(`${F}/user/keys/query`), query, 'from the copy on b.test');
  });

  it('once bob leaves, alice is in device_lists.left and b.test’s copy is stale: her keys are asked of a.test', async () => {
    const token = (await syncFrom(since)).next_batch;
    expectStatus(await b.request('POST', `${C}/rooms/${e(roomId)}/leave`, { token: bob.accessToken, body: {} }), 200);
    await eventually(async () => (await syncFrom(token)).device_lists?.left?.includes(alice.userId), 'alice in device_lists.left');
    // Marked when the leave is persisted, before anyone asks for her keys.
    await eventually(async () => (await remoteRow())!.stale === 1, 'the copy marked stale');
    const query = askedOf(`${F}/user/keys/query`);
    const q = await queryAlice();
    assert.ok(q.device_keys[alice.userId][alice.deviceId]);
    assert.equal(askedOf(`${F}/user/keys/query`), query + 1, 'asked of a.test');
    assert.equal((await remoteRow())!.stale, 1);
    // Updates about her are no longer applied, nor fetched.
    const row = (await remoteRow())!;
    const fetches = askedOf(`${F}/user/devices/`);
    await eduFromA('m.device_list_update', { user_id: alice.userId, device_id: 'LATE', stream_id: Number(row.stream_id) + 5000, prev_id: [] });
    assert.equal(askedOf(`${F}/user/devices/`), fetches);
    assert.equal((await remoteRow())!.stale, 1);
  });
});
