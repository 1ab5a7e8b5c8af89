/**
 * Dehydrated devices (MSC3814): a user keeps one token-less device whose keys others encrypt to;
 * a new client fetches its encrypted data and reads its to-device messages through `/events`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';

const V3 = '/_matrix/client/v3';
const DD = '/_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device';

describe('dehydrated devices (MSC3814)', () => {
  let server: TestServer;
  let alice: TestUser;
  let bob: TestUser;
  before(async () => {
    server = await startTestServer();
    alice = await server.registerUser();
    bob = await server.registerUser();
  });
  after(async () => {
    await server.stop();
  });

  const deviceKeys = (userId: string, deviceId: string) => ({
    user_id: userId,
    device_id: deviceId,
    algorithms: ['m.olm.v1.curve25519-aes-sha2', 'm.megolm.v1.aes-sha2'],
    keys: { [`curve25519:${deviceId}`]: `curve-${deviceId}`, [`ed25519:${deviceId}`]: `ed-${deviceId}` },
    signatures: { [userId]: { [`ed25519:${deviceId}`]: 'sig' } },
    dehydrated: true,
  });
  const put = (deviceId: string, extra: Record<string, unknown> = {}) =>
    server.request('PUT', DD, {
      token: alice.accessToken,
      body: {
        device_id: deviceId,
        device_data: { algorithm: 'm.dehydration.v1.olm', device_pickle: `pickle-${deviceId}`, nonce: 'n' },
        initial_device_display_name: 'Dehydrated',
        device_keys: deviceKeys(alice.userId, deviceId),
        one_time_keys: { [`signed_curve25519:${deviceId}1`]: { key: 'otk', signatures: {} } },
        ...extra,
      },
    });
  const deviceIds = async () => ((await server.request('GET', `${V3}/devices`, { token: alice.accessToken })).body.devices as { device_id: string }[]).map((d) => d.device_id);

  it('is advertised in /versions', async () => {
    const res = await server.request('GET', '/_matrix/client/versions');
    assert.equal(res.body.unstable_features['org.matrix.msc3814'], true);
  });

  it('none yet: GET and DELETE answer 404 M_NOT_FOUND', async () => {
    for (const method of ['GET', 'DELETE']) {
      const res = await server.request(method, DD, { token: alice.accessToken });
      assert.equal(res.status, 404, method);
      assert.equal(res.body.errcode, 'M_NOT_FOUND', method);
    }
  });

  it('PUT makes a device with keys that others see; GET gives its data back', async () => {
    const res = await put('DEHYD1');
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body, { device_id: 'DEHYD1' });
    const got = await server.request('GET', DD, { token: alice.accessToken });
    assert.deepEqual(got.body, { device_id: 'DEHYD1', device_data: { algorithm: 'm.dehydration.v1.olm', device_pickle: 'pickle-DEHYD1', nonce: 'n' } });
    assert.ok((await deviceIds()).includes('DEHYD1'));
    const q = await server.request('POST', `${V3}/keys/query`, { token: bob.accessToken, body: { device_keys: { [alice.userId]: [] } } });
    assert.equal(q.body.device_keys[alice.userId].DEHYD1.dehydrated, true);
    const claim = await server.request('POST', `${V3}/keys/claim`, { token: bob.accessToken, body: { one_time_keys: { [alice.userId]: { DEHYD1: 'signed_curve25519' } } } });
    assert.deepEqual(Object.keys(claim.body.one_time_keys[alice.userId].DEHYD1), ['signed_curve25519:DEHYD11']);
  });

  it('/events hands over the to-device messages sent to it, and forgets them once acknowledged', async () => {
    for (const [i, txn] of ['t1', 't2'].entries()) {
      const sent = await server.request('PUT', `${V3}/sendToDevice/m.room.encrypted/${txn}`, {
        token: bob.accessToken,
        body: { messages: { [alice.userId]: { DEHYD1: { ciphertext: `c${i}` } } } },
      });
      assert.equal(sent.status, 200);
    }
    const first = await server.request('POST', `${DD}/DEHYD1/events`, { token: alice.accessToken, body: {} });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.deepEqual(first.body.events.map((e: { content: { ciphertext: string } }) => e.content.ciphertext), ['c0', 'c1']);
    assert.equal(first.body.events[0].sender, bob.userId);
    assert.equal(typeof first.body.next_batch, 'string');
    const again = await server.request('POST', `${DD}/DEHYD1/events`, { token: alice.accessToken, body: { next_batch: first.body.next_batch } });
    assert.deepEqual(again.body.events, []);
    // Acknowledged: a fresh read from the start finds nothing left.
    const fresh = await server.request('POST', `${DD}/DEHYD1/events`, { token: alice.accessToken, body: {} });
    assert.deepEqual(fresh.body.events, []);
    const bad = await server.request('POST', `${DD}/DEHYD1/events`, { token: alice.accessToken, body: { next_batch: 'garbage' } });
    assert.equal(bad.status, 400);
  });

  it("another device id, or another user's, is 403 M_FORBIDDEN", async () => {
    const wrong = await server.request('POST', `${DD}/${alice.deviceId}/events`, { token: alice.accessToken, body: {} });
    assert.equal(wrong.status, 403);
    assert.equal(wrong.body.errcode, 'M_FORBIDDEN');
    await server.request('PUT', DD, {
      token: bob.accessToken,
      body: { device_id: 'BOBDEHYD', device_data: { algorithm: 'x' }, device_keys: deviceKeys(bob.userId, 'BOBDEHYD') },
    });
    const foreign = await server.request('POST', `${DD}/DEHYD1/events`, { token: bob.accessToken, body: {} });
    assert.equal(foreign.status, 403);
  });

  it('a new PUT replaces the old device; bad keys leave nothing behind; DELETE removes it', async () => {
    assert.equal((await put('DEHYD2')).status, 200);
    let ids = await deviceIds();
    assert.ok(ids.includes('DEHYD2') && !ids.includes('DEHYD1'), ids.join());

    const bad = await put('DEHYD3', { device_keys: deviceKeys(alice.userId, 'SOMEONEELSE') });
    assert.equal(bad.status, 400, JSON.stringify(bad.body));
    ids = await deviceIds();
    assert.ok(!ids.includes('DEHYD3') && ids.includes('DEHYD2'), ids.join());

    // An id one of the user's running devices has is refused.
    const taken = await put(alice.deviceId, { device_keys: deviceKeys(alice.userId, alice.deviceId) });
    assert.equal(taken.status, 400);
    assert.equal((await server.request('GET', `${V3}/account/whoami`, { token: alice.accessToken })).status, 200);

    const del = await server.request('DELETE', DD, { token: alice.accessToken });
    assert.equal(del.status, 200, JSON.stringify(del.body));
    assert.equal((await server.request('GET', DD, { token: alice.accessToken })).status, 404);
    assert.ok(!(await deviceIds()).includes('DEHYD2'));
  });

  it('deleting the device through /devices removes the dehydrated device too', async () => {
    assert.equal((await put('DEHYD4')).status, 200);
    const del = await server.request('DELETE', `${V3}/devices/DEHYD4`, {
      token: alice.accessToken,
      body: { auth: { type: 'm.login.password', identifier: { type: 'm.id.user', user: alice.userId }, password: alice.password } },
    });
    assert.equal(del.status, 200, JSON.stringify(del.body));
    const res = await server.request('GET', DD, { token: alice.accessToken });
    assert.equal(res.status, 404);
    assert.equal(res.body.errcode, 'M_NOT_FOUND');
  });

  it('needs device_id and an object device_data', async () => {
    for (const body of [{ device_data: {} }, { device_id: 'X', device_data: 'text' }, { device_id: 'X' }]) {
      const res = await server.request('PUT', DD, { token: alice.accessToken, body });
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(res.body.errcode, 'M_BAD_JSON');
    }
  });
});
