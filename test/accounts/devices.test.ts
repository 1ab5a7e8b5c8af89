import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { CLIENT, login, passwordAuth, spyCrossDomain, whoami, withPasswordUia, type CrossDomainCalls } from './helpers.js';

let server: TestServer;
let calls: CrossDomainCalls;
let alice: TestUser;
let bob: TestUser;

before(async () => {
  server = await startTestServer();
  calls = spyCrossDomain(server);
  alice = await server.registerUser('alice');
  bob = await server.registerUser('bob');
});
after(async () => {
  await server.stop();
});

describe('GET /devices and /devices/{deviceId}', () => {
  it("lists the user's own devices with last-seen information", async () => {
    const second = await login(server, alice, { initial_device_display_name: 'Second' });
    const res = await server.request('GET', `${CLIENT}/devices`, { token: alice.accessToken });
    assert.equal(res.status, 200);
    const byId = new Map(res.body.devices.map((d: { device_id: string }) => [d.device_id, d]));
    assert.ok(byId.has(alice.deviceId));
    const d = byId.get(second.deviceId) as Record<string, unknown>;
    assert.equal(d.display_name, 'Second');
    assert.equal(d.last_seen_ip, '127.0.0.1');
    assert.equal(typeof d.last_seen_ts, 'number');
    // Bob's devices are not Alice's.
    const bobs = await server.request('GET', `${CLIENT}/devices`, { token: bob.accessToken });
    assert.deepEqual(bobs.body.devices.map((x: { device_id: string }) => x.device_id), [bob.deviceId]);
  });

  it('a device without a name has no display_name key', async () => {
    const res = await server.request('GET', `${CLIENT}/devices/${alice.deviceId}`, { token: alice.accessToken });
    assert.equal(res.status, 200);
    assert.equal(res.body.device_id, alice.deviceId);
    assert.equal('display_name' in res.body, false);
  });

  it("an unknown device, or another user's, is 404 M_NOT_FOUND", async () => {
    for (const id of ['NOSUCHDEVICE', bob.deviceId]) {
      const res = await server.request('GET', `${CLIENT}/devices/${id}`, { token: alice.accessToken });
      assert.equal(res.status, 404);
      assert.equal(res.body.errcode, 'M_NOT_FOUND');
    }
  });

  it('needs an access token', async () => {
    const res = await server.request('GET', `${CLIENT}/devices`);
    assert.equal(res.status, 401);
    assert.equal(res.body.errcode, 'M_MISSING_TOKEN');
  });
});

describe('PUT /devices/{deviceId}', () => {
  it('renames a device', async () => {
    const res = await server.request('PUT', `${CLIENT}/devices/${alice.deviceId}`, { token: alice.accessToken, body: { display_name: 'Renamed' } });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, {});
    const d = await server.request('GET', `${CLIENT}/devices/${alice.deviceId}`, { token: alice.accessToken });
    assert.equal(d.body.display_name, 'Renamed');
    // Without display_name nothing changes.
    assert.equal((await server.request('PUT', `${CLIENT}/devices/${alice.deviceId}`, { token: alice.accessToken, body: {} })).status, 200);
    const again = await server.request('GET', `${CLIENT}/devices/${alice.deviceId}`, { token: alice.accessToken });
    assert.equal(again.body.display_name, 'Renamed');
  });

  it("an unknown device, or another user's, is 404: clients cannot create devices", async () => {
    for (const id of ['NEWDEVICE', bob.deviceId]) {
      const res = await server.request('PUT', `${CLIENT}/devices/${id}`, { token: alice.accessToken, body: { display_name: 'x' } });
      assert.equal(res.status, 404);
      assert.equal(res.body.errcode, 'M_NOT_FOUND');
    }
    const empty = await server.request('PUT', `${CLIENT}/devices/NEWDEVICE`, { token: alice.accessToken, body: {} });
    assert.equal(empty.status, 404);
  });

  it('a non-string name is M_BAD_JSON; an overlong one M_INVALID_PARAM', async () => {
    const bad = await server.request('PUT', `${CLIENT}/devices/${alice.deviceId}`, { token: alice.accessToken, body: { display_name: 42 } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.errcode, 'M_BAD_JSON');
    const long = await server.request('PUT', `${CLIENT}/devices/${alice.deviceId}`, { token: alice.accessToken, body: { display_name: 'x'.repeat(101) } });
    assert.equal(long.status, 400);
    assert.equal(long.body.errcode, 'M_INVALID_PARAM');
  });
});

describe('DELETE /devices/{deviceId} (user-interactive auth with m.login.password)', () => {
  it('without auth: 401 with the password flow and a session', async () => {
    const victim = await login(server, alice);
    const res = await server.request('DELETE', `${CLIENT}/devices/${victim.deviceId}`, { token: alice.accessToken });
    assert.equal(res.status, 401);
    assert.deepEqual(res.body.flows, [{ stages: ['m.login.password'] }]);
    assert.equal(typeof res.body.session, 'string');
    assert.equal(res.body.errcode, undefined);
    // Nothing was deleted.
    assert.equal((await whoami(server, victim.accessToken)).status, 200);
  });

  it('a wrong password is 401 M_FORBIDDEN with the session; the right one deletes the device and its tokens', async () => {
    const victim = await login(server, alice, { refresh_token: true });
    const path = `${CLIENT}/devices/${victim.deviceId}`;
    const first = await server.request('DELETE', path, { token: alice.accessToken, body: {} });
    const wrong = await server.request('DELETE', path, { token: alice.accessToken, body: { auth: passwordAuth(alice, first.body.session, 'nope') } });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body.errcode, 'M_FORBIDDEN');
    assert.equal(wrong.body.session, first.body.session);
    assert.deepEqual(wrong.body.flows, [{ stages: ['m.login.password'] }]);

    const before = calls.devicesChanged.length;
    const ok = await server.request('DELETE', path, { token: alice.accessToken, body: { auth: passwordAuth(alice, first.body.session) } });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.deepEqual(ok.body, {});
    const gone = await whoami(server, victim.accessToken);
    assert.equal(gone.status, 401);
    assert.equal(gone.body.errcode, 'M_UNKNOWN_TOKEN');
    assert.equal((await server.request('GET', path, { token: alice.accessToken })).status, 404);
    const refresh = await server.request('POST', `${CLIENT}/refresh`, { body: { refresh_token: victim.body.refresh_token } });
    assert.equal(refresh.status, 401);
    assert.deepEqual(calls.devicesChanged.slice(before), [{ userId: alice.userId, deleted: [victim.deviceId] }]);
  });

  it("another user's password does not complete the stage", async () => {
    const victim = await login(server, alice);
    const path = `${CLIENT}/devices/${victim.deviceId}`;
    const first = await server.request('DELETE', path, { token: alice.accessToken });
    const res = await server.request('DELETE', path, { token: alice.accessToken, body: { auth: passwordAuth(bob, first.body.session) } });
    assert.equal(res.status, 401);
    assert.equal(res.body.errcode, 'M_FORBIDDEN');
    assert.equal((await whoami(server, victim.accessToken)).status, 200);
  });

  it('a session opened for one device cannot delete another', async () => {
    const one = await login(server, alice);
    const two = await login(server, alice);
    const first = await server.request('DELETE', `${CLIENT}/devices/${one.deviceId}`, { token: alice.accessToken });
    const res = await server.request('DELETE', `${CLIENT}/devices/${two.deviceId}`, { token: alice.accessToken, body: { auth: passwordAuth(alice, first.body.session) } });
    assert.equal(res.status, 403);
    assert.equal(res.body.errcode, 'M_FORBIDDEN');
    assert.equal((await whoami(server, two.accessToken)).status, 200);
  });

  it("a session opened by one user cannot be used by another", async () => {
    const victim = await login(server, alice);
    const path = `${CLIENT}/devices/${victim.deviceId}`;
    const first = await server.request('DELETE', path, { token: alice.accessToken });
    const res = await server.request('DELETE', path, { token: bob.accessToken, body: { auth: passwordAuth(bob, first.body.session) } });
    assert.equal(res.status, 403);
    assert.equal((await whoami(server, victim.accessToken)).status, 200);
  });

  it('deleting an unknown device succeeds (it may have been removed already)', async () => {
    const res = await withPasswordUia(server, 'DELETE', `${CLIENT}/devices/ALREADYGONE`, alice);
    assert.equal(res.status, 200);
  });

  it('the auth dict may omit the identifier: the requester is meant', async () => {
    const victim = await login(server, alice);
    const path = `${CLIENT}/devices/${victim.deviceId}`;
    const first = await server.request('DELETE', path, { token: alice.accessToken });
    const res = await server.request('DELETE', path, {
      token: alice.accessToken,
      body: { auth: { type: 'm.login.password', password: alice.password, session: first.body.session } },
    });
    assert.equal(res.status, 200);
  });

  it('a wrongly typed auth is M_BAD_JSON', async () => {
    const res = await server.request('DELETE', `${CLIENT}/devices/X`, { token: alice.accessToken, body: { auth: 'password' } });
    assert.equal(res.status, 400);
    assert.equal(res.body.errcode, 'M_BAD_JSON');
  });
});

describe('POST /delete_devices', () => {
  it('deletes several devices behind one user-interactive auth', async () => {
    const one = await login(server, alice);
    const two = await login(server, alice);
    const before = calls.devicesChanged.length;
    const res = await withPasswordUia(server, 'POST', `${CLIENT}/delete_devices`, alice, { devices: [one.deviceId, two.deviceId, 'NOTADEVICE'] });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal((await whoami(server, one.accessToken)).status, 401);
    assert.equal((await whoami(server, two.accessToken)).status, 401);
    assert.equal((await whoami(server, alice.accessToken)).status, 200);
    const changed = calls.devicesChanged.slice(before);
    assert.equal(changed.length, 1);
    assert.deepEqual(changed[0].deleted.sort(), [one.deviceId, two.deviceId].sort());
  });

  it('a session for one list of devices cannot delete a different list', async () => {
    const one = await login(server, alice);
    const first = await server.request('POST', `${CLIENT}/delete_devices`, { token: alice.accessToken, body: { devices: ['SOMETHINGELSE'] } });
    assert.equal(first.status, 401);
    const res = await server.request('POST', `${CLIENT}/delete_devices`, {
      token: alice.accessToken,
      body: { devices: [one.deviceId], auth: passwordAuth(alice, first.body.session) },
    });
    assert.equal(res.status, 403);
    assert.equal((await whoami(server, one.accessToken)).status, 200);
  });

  it('devices is required and must be a list of strings (M_BAD_JSON)', async () => {
    for (const body of [{}, { devices: 'ABC' }, { devices: [1] }]) {
      const res = await server.request('POST', `${CLIENT}/delete_devices`, { token: alice.accessToken, body });
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(res.body.errcode, 'M_BAD_JSON');
    }
  });
});
