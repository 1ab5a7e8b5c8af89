import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { readStreamPositions } from '../../src/db/stream-positions.js';
import { MAX_ONE_TIME_KEYS } from '../../src/e2ee/service.js';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { deviceKeys, newDevice, otk, otks } from './helpers.js';

const V3 = '/_matrix/client/v3';

describe('E2EE key management (spec: client-server-api "Key management API", keys.yaml)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await server.stop();
  });

  const upload = (u: TestUser, body: unknown) => server.request('POST', `${V3}/keys/upload`, { token: u.accessToken, body });
  const query = (u: TestUser, device_keys: Record<string, string[]>) =>
    server.request('POST', `${V3}/keys/query`, { token: u.accessToken, body: { device_keys } });
  const claim = (u: TestUser, one_time_keys: Record<string, Record<string, string>>) =>
    server.request('POST', `${V3}/keys/claim`, { token: u.accessToken, body: { one_time_keys } });

  it('POST /keys/upload stores device keys that POST /keys/query returns as uploaded, with unsigned added', async () => {
    const alice = await server.registerUser();
    const bob = await server.registerUser();
    const dk = deviceKeys(alice);
    const up = await upload(alice, { device_keys: dk, one_time_keys: otks(alice, 3) });
    assert.equal(up.status, 200);
    assert.deepEqual(up.body.one_time_key_counts, { signed_curve25519: 3 });

    const res = await query(bob, { [alice.userId]: [] });
    assert.equal(res.status, 200);
    const got = res.body.device_keys[alice.userId][alice.deviceId];
    assert.ok(got, 'the device is listed');
    const { unsigned, ...rest } = got;
    assert.deepEqual(rest, dk, 'keys and signatures exactly as uploaded');
    assert.equal(typeof unsigned, 'object');
    assert.deepEqual(res.body.failures, {});
  });

  it('POST /keys/query shows each device display name in unsigned.device_display_name', async () => {
    const alice = await server.registerUser();
    const bob = await server.registerUser();
    const rename = await server.request('PUT', `${V3}/devices/${encodeURIComponent(alice.deviceId)}`, {
      token: alice.accessToken,
      body: { display_name: "Alice's laptop" },
    });
    assert.equal(rename.status, 200);
    assert.equal((await upload(alice, { device_keys: deviceKeys(alice) })).status, 200);
    const res = await query(bob, { [alice.userId]: [] });
    assert.equal(res.body.device_keys[alice.userId][alice.deviceId].unsigned.device_display_name, "Alice's laptop");
  });

  it("POST /keys/query includes the requester's own device and every device of the user for []", async () => {
    const alice = await server.registerUser();
    const phone = await newDevice(server, alice);
    assert.equal((await upload(alice, { device_keys: deviceKeys(alice) })).status, 200);
    assert.equal((await upload(phone, { device_keys: deviceKeys(phone) })).status, 200);
    const res = await query(alice, { [alice.userId]: [] });
    assert.equal(res.status, 200);
    assert.deepEqual(Object.keys(res.body.device_keys[alice.userId]).sort(), [alice.deviceId, phone.deviceId].sort());

    const one = await query(alice, { [alice.userId]: [phone.deviceId] });
    assert.deepEqual(Object.keys(one.body.device_keys[alice.userId]), [phone.deviceId], 'a device list restricts the answer');
  });

  it('POST /keys/query: unknown local users have no devices; unreachable remote servers are listed in failures', async () => {
    const alice = await server.registerUser();
    const res = await query(alice, { '@nobody:localhost': [], '@carol:remote.example': [] });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.device_keys['@nobody:localhost'] ?? {}, {});
    assert.equal(res.body.device_keys['@carol:remote.example'], undefined);
    assert.ok(res.body.failures['remote.example'], 'remote server recorded as a failure');
  });

  it('POST /keys/upload rejects device keys for another user or device with M_INVALID_PARAM', async () => {
    const alice = await server.registerUser();
    const bob = await server.registerUser();
    const wrongUser = await upload(alice, { device_keys: { ...deviceKeys(alice), user_id: bob.userId } });
    assert.equal(wrongUser.status, 400);
    assert.equal(wrongUser.body.errcode, 'M_INVALID_PARAM');
    const wrongDevice = await upload(alice, { device_keys: { ...deviceKeys(alice), device_id: 'OTHERDEVICE' } });
    assert.equal(wrongDevice.status, 400);
    assert.equal(wrongDevice.body.errcode, 'M_INVALID_PARAM');
    const res = await query(alice, { [alice.userId]: [] });
    assert.deepEqual(res.body.device_keys[alice.userId], {}, 'nothing was stored');
  });

  it('POST /keys/upload rejects malformed keys: M_BAD_JSON for wrong types, M_INVALID_PARAM for a bad key name', async () => {
    const alice = await server.registerUser();
    const notObject = await upload(alice, { one_time_keys: [] });
    assert.equal(notObject.status, 400);
    assert.equal(notObject.body.errcode, 'M_BAD_JSON');
    const noAlgorithm = await upload(alice, { one_time_keys: { AAAA: otk(alice) } });
    assert.equal(noAlgorithm.status, 400);
    assert.equal(noAlgorithm.body.errcode, 'M_INVALID_PARAM');
    const badValue = await upload(alice, { one_time_keys: { 'signed_curve25519:AAAA': 42 } });
    assert.equal(badValue.status, 400);
    assert.equal(badValue.body.errcode, 'M_BAD_JSON');
    const noKeys = await upload(alice, { device_keys: { user_id: alice.userId, device_id: alice.deviceId } });
    assert.equal(noKeys.status, 400);
    assert.equal(noKeys.body.errcode, 'M_BAD_JSON');
    const badQuery = await server.request('POST', `${V3}/keys/query`, { token: alice.accessToken, body: {} });
    assert.equal(badQuery.status, 400);
    assert.equal(badQuery.body.errcode, 'M_BAD_JSON');
  });

  it('POST /keys/upload: the same one-time key again is accepted, different content under the same id is a 400', async () => {
    const alice = await server.registerUser();
    const keys = otks(alice, 2);
    assert.equal((await upload(alice, { one_time_keys: keys })).status, 200);
    const again = await upload(alice, { one_time_keys: keys });
    assert.equal(again.status, 200);
    assert.equal(again.body.one_time_key_counts.signed_curve25519, 2, 'no duplicate stored');
    const conflict = await upload(alice, { one_time_keys: { 'signed_curve25519:AAAA0': otk(alice) } });
    assert.equal(conflict.status, 400);
    assert.equal(conflict.body.errcode, 'M_INVALID_PARAM');
    const counts = await server.hs.ctx.services.e2ee.getOneTimeKeyCounts(alice.userId, alice.deviceId);
    assert.equal(counts.signed_curve25519, 2);
  });

  it(`POST /keys/upload: a device holds at most ${MAX_ONE_TIME_KEYS} one-time keys per algorithm; more is 400 M_TOO_LARGE and stores none`, async () => {
    const alice = await server.registerUser();
    // In uploads of 500 (each about 150 kB).
    for (let i = 0; i < MAX_ONE_TIME_KEYS; i += 500) {
      const res = await upload(alice, { one_time_keys: otks(alice, Math.min(500, MAX_ONE_TIME_KEYS - i), `K${i}_`) });
      assert.equal(res.status, 200, JSON.stringify(res.body).slice(0, 200));
    }
    const over = await upload(alice, { one_time_keys: otks(alice, 2, 'OVER') });
    assert.equal(over.status, 400);
    assert.equal(over.body.errcode, 'M_TOO_LARGE');
    assert.match(over.body.error, /at most 1000 signed_curve25519 one-time keys/);
    assert.equal((await server.hs.ctx.services.e2ee.getOneTimeKeyCounts(alice.userId, alice.deviceId)).signed_curve25519, MAX_ONE_TIME_KEYS);
    // Once one is claimed there is room for one more.
    const bob = await server.registerUser();
    const claimed = await claim(bob, { [alice.userId]: { [alice.deviceId]: 'signed_curve25519' } });
    assert.equal(Object.keys(claimed.body.one_time_keys[alice.userId][alice.deviceId]).length, 1);
    const one = await upload(alice, { one_time_keys: otks(alice, 1, 'AFTER') });
    assert.equal(one.status, 200);
    assert.equal(one.body.one_time_key_counts.signed_curve25519, MAX_ONE_TIME_KEYS);
  });

  it('POST /keys/claim hands out one-time keys oldest upload first, then the fallback key, which stays and is marked used', async () => {
    const alice = await server.registerUser();
    const bob = await server.registerUser();
    const e2ee = server.hs.ctx.services.e2ee;
    const first = otks(alice, 1, 'FIRST');
    const second = otks(alice, 1, 'SECOND');
    const fb = otk(alice, true);
    assert.equal((await upload(alice, { one_time_keys: first, fallback_keys: { 'signed_curve25519:FB1': fb } })).status, 200);
    assert.equal((await upload(alice, { one_time_keys: second })).status, 200);
    assert.deepEqual(await e2ee.getUnusedFallbackKeyTypes(alice.userId, alice.deviceId), ['signed_curve25519']);

    const want = { [alice.userId]: { [alice.deviceId]: 'signed_curve25519' } };
    const c1 = await claim(bob, want);
    assert.equal(c1.status, 200);
    assert.deepEqual(c1.body.one_time_keys[alice.userId][alice.deviceId], first);
    const c2 = await claim(bob, want);
    assert.deepEqual(c2.body.one_time_keys[alice.userId][alice.deviceId], second);
    assert.deepEqual(await e2ee.getOneTimeKeyCounts(alice.userId, alice.deviceId), { signed_curve25519: 0 });

    const c3 = await claim(bob, want);
    assert.deepEqual(c3.body.one_time_keys[alice.userId][alice.deviceId], { 'signed_curve25519:FB1': fb });
    const c4 = await claim(bob, want);
    assert.deepEqual(c4.body.one_time_keys[alice.userId][alice.deviceId], { 'signed_curve25519:FB1': fb }, 'fallback keys are reused');
    assert.deepEqual(await e2ee.getUnusedFallbackKeyTypes(alice.userId, alice.deviceId), [], 'and reported as used');

    const fb2 = otk(alice, true);
    assert.equal((await upload(alice, { fallback_keys: { 'signed_curve25519:FB2': fb2 } })).status, 200);
    assert.deepEqual(await e2ee.getUnusedFallbackKeyTypes(alice.userId, alice.deviceId), ['signed_curve25519'], 'a new fallback key is unused');
    const c5 = await claim(bob, want);
    assert.deepEqual(c5.body.one_time_keys[alice.userId][alice.deviceId], { 'signed_curve25519:FB2': fb2 }, 'the old fallback key was replaced');
  });

  it('POST /keys/claim: 20 concurrent claims never return the same one-time key', async () => {
    const alice = await server.registerUser();
    const bob = await server.registerUser();
    const keys = otks(alice, 15, 'C');
    const fb = otk(alice, true);
    assert.equal((await upload(alice, { one_time_keys: keys, fallback_keys: { 'signed_curve25519:FALLBACK': fb } })).status, 200);
    const want = { [alice.userId]: { [alice.deviceId]: 'signed_curve25519' } };
    const results = await Promise.all(Array.from({ length: 20 }, () => claim(bob, want)));
    const ids: string[] = [];
    for (const r of results) {
      assert.equal(r.status, 200);
      const got = r.body.one_time_keys[alice.userId][alice.deviceId];
      assert.equal(Object.keys(got).length, 1);
      ids.push(Object.keys(got)[0]);
    }
    const otkIds = ids.filter((id) => id !== 'signed_curve25519:FALLBACK');
    assert.equal(otkIds.length, 15, 'every one-time key handed out');
    assert.equal(new Set(otkIds).size, 15, 'no one-time key handed out twice');
    assert.deepEqual(new Set(otkIds), new Set(Object.keys(keys)));
    assert.equal(ids.length - otkIds.length, 5, 'then the fallback key');
  });

  it('POST /keys/claim: unknown devices are simply missing; remote servers are failures', async () => {
    const bob = await server.registerUser();
    const res = await claim(bob, { '@nobody:localhost': { NODEVICE: 'signed_curve25519' }, '@x:remote.example': { D: 'signed_curve25519' } });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.one_time_keys, {});
    assert.ok(res.body.failures['remote.example']);
  });

  it('a device key upload records a device list change visible in GET /keys/changes and on the bus', async () => {
    const alice = await server.registerUser();
    const before = await readStreamPositions(server.hs.ctx.db);
    const seen: { stream: string; pos: number; userIds?: string[] }[] = [];
    const off = server.hs.ctx.bus.onAdvance((m) => seen.push(m));
    assert.equal((await upload(alice, { device_keys: deviceKeys(alice) })).status, 200);
    off();
    const after = await readStreamPositions(server.hs.ctx.db);
    assert.equal(after.device_lists, before.device_lists + 1);
    const msg = seen.find((m) => m.stream === 'device_lists');
    assert.ok(msg);
    assert.equal(msg.pos, after.device_lists);
    assert.ok(msg.userIds?.includes(alice.userId));

    const token = (p: typeof before) => `s${p.events}_${p.to_device}_${p.account_data}_${p.receipts}_${p.device_lists}_${p.typing}_${p.presence}`;
    const res = await server.request('GET', `${V3}/keys/changes?from=${token(before)}&to=${token(after)}`, { token: alice.accessToken });
    assert.equal(res.status, 200);
    assert.ok(res.body.changed.includes(alice.userId));
    assert.deepEqual(res.body.left, []);

    const none = await server.request('GET', `${V3}/keys/changes?from=${token(after)}&to=${token(after)}`, { token: alice.accessToken });
    assert.deepEqual(none.body.changed, []);

    const bad = await server.request('GET', `${V3}/keys/changes?from=garbage&to=${token(after)}`, { token: alice.accessToken });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.errcode, 'M_INVALID_PARAM');
  });

  it('re-uploading identical device keys records no device list change', async () => {
    const alice = await server.registerUser();
    const dk = deviceKeys(alice);
    await upload(alice, { device_keys: dk });
    const before = await readStreamPositions(server.hs.ctx.db);
    assert.equal((await upload(alice, { device_keys: dk })).status, 200);
    const after = await readStreamPositions(server.hs.ctx.db);
    assert.equal(after.device_lists, before.device_lists);
  });

  it("recordDevicesChangedIn drops a deleted device's keys and records a change", async () => {
    const alice = await server.registerUser();
    const phone = await newDevice(server, alice);
    await upload(phone, { device_keys: deviceKeys(phone), one_time_keys: otks(phone, 2) });
    const before = await readStreamPositions(server.hs.ctx.db);
    const e2ee = server.hs.ctx.services.e2ee;
    const pos = await server.hs.ctx.db.transaction().execute((trx) => e2ee.recordDevicesChangedIn(trx, alice.userId, [phone.deviceId]));
    await e2ee.publishDevicesChanged(alice.userId, pos);
    const after = await readStreamPositions(server.hs.ctx.db);
    assert.equal(after.device_lists, before.device_lists + 1);
    const res = await query(alice, { [alice.userId]: [] });
    assert.equal(res.body.device_keys[alice.userId][phone.deviceId], undefined);
    assert.deepEqual(await server.hs.ctx.services.e2ee.getOneTimeKeyCounts(alice.userId, phone.deviceId), { signed_curve25519: 0 });
    const changes = await server.hs.ctx.services.e2ee.getDeviceListChanges(before.device_lists, after.device_lists);
    assert.deepEqual([...changes], [alice.userId]);
  });

  it('GET /keys/changes: device changes of users sharing a room, users who joined a shared room, and users who left', async () => {
    const alice = await server.registerUser();
    const bob = await server.registerUser();
    const carol = await server.registerUser();
    const stranger = await server.registerUser();
    const create = await server.request('POST', `${V3}/createRoom`, { token: alice.accessToken, body: { preset: 'public_chat' } });
    assert.equal(create.status, 200);
    const roomId = create.body.room_id;
    const join = (u: TestUser) => server.request('POST', `${V3}/join/${encodeURIComponent(roomId)}`, { token: u.accessToken, body: {} });
    assert.equal((await join(carol)).status, 200);

    const token = (p: Awaited<ReturnType<typeof readStreamPositions>>) =>
      `s${p.events}_${p.to_device}_${p.account_data}_${p.receipts}_${p.device_lists}_${p.typing}_${p.presence}`;
    const from = await readStreamPositions(server.hs.ctx.db);

    const seen: { stream: string; userIds?: string[] }[] = [];
    const off = server.hs.ctx.bus.onAdvance((m) => seen.push(m));
    assert.equal((await upload(carol, { device_keys: deviceKeys(carol) })).status, 200);
    off();
    assert.ok(seen.find((m) => m.stream === 'device_lists')?.userIds?.includes(alice.userId), 'room members are woken');

    assert.equal((await join(bob)).status, 200);
    assert.equal((await upload(stranger, { device_keys: deviceKeys(stranger) })).status, 200);
    const mid = await readStreamPositions(server.hs.ctx.db);
    const r1 = await server.request('GET', `${V3}/keys/changes?from=${token(from)}&to=${token(mid)}`, { token: alice.accessToken });
    assert.equal(r1.status, 200);
    assert.ok(r1.body.changed.includes(carol.userId), 'device keys changed');
    assert.ok(r1.body.changed.includes(bob.userId), 'newly shares a room');
    assert.ok(!r1.body.changed.includes(stranger.userId), 'shares no room');
    assert.deepEqual(r1.body.left, []);

    const leave = await server.request('POST', `${V3}/rooms/${encodeURIComponent(roomId)}/leave`, { token: carol.accessToken, body: {} });
    assert.equal(leave.status, 200);
    const end = await readStreamPositions(server.hs.ctx.db);
    const r2 = await server.request('GET', `${V3}/keys/changes?from=${token(mid)}&to=${token(end)}`, { token: alice.accessToken });
    assert.deepEqual(r2.body.left, [carol.userId]);
    assert.ok(!r2.body.changed.includes(carol.userId));
  });

  it('GET /room_keys/version answers 404 M_NOT_FOUND while there is no backup (key_backup.yaml)', async () => {
    const alice = await server.registerUser();
    const res = await server.request('GET', `${V3}/room_keys/version`, { token: alice.accessToken });
    assert.equal(res.status, 404);
    assert.equal(res.body.errcode, 'M_NOT_FOUND');
  });
});
