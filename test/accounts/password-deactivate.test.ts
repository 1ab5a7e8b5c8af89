import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { CLIENT, login, passwordAuth, spyCrossDomain, whoami, withPasswordUia, type CrossDomainCalls } from './helpers.js';

let server: TestServer;
let calls: CrossDomainCalls;

before(async () => {
  server = await startTestServer();
  calls = spyCrossDomain(server);
});
after(async () => {
  await server.stop();
});

const passwordLogin = (user: string, password: string) =>
  server.request('POST', `${CLIENT}/login`, { body: { type: 'm.login.password', identifier: { type: 'm.id.user', user }, password } });

describe('POST /account/password', () => {
  it('without auth: 401 with the m.login.password flow', async () => {
    const u = await server.registerUser('pw1');
    const res = await server.request('POST', `${CLIENT}/account/password`, { token: u.accessToken, body: { new_password: 'next' } });
    assert.equal(res.status, 401);
    assert.deepEqual(res.body.flows, [{ stages: ['m.login.password'] }]);
    assert.equal(typeof res.body.session, 'string');
  });

  it('a wrong current password is 401 M_FORBIDDEN and changes nothing', async () => {
    const u = await server.registerUser('pw2');
    const first = await server.request('POST', `${CLIENT}/account/password`, { token: u.accessToken, body: { new_password: 'next' } });
    const res = await server.request('POST', `${CLIENT}/account/password`, {
      token: u.accessToken,
      body: { new_password: 'next', auth: passwordAuth(u, first.body.session, 'not-it') },
    });
    assert.equal(res.status, 401);
    assert.equal(res.body.errcode, 'M_FORBIDDEN');
    assert.equal((await passwordLogin('pw2', u.password)).status, 200);
  });

  it('changes the password; other devices are logged out, this one stays (logout_devices defaults to true)', async () => {
    const u = await server.registerUser('pw3');
    const other = await login(server, u, { refresh_token: true });
    const before = calls.devicesChanged.length;
    const res = await withPasswordUia(server, 'POST', `${CLIENT}/account/password`, u, { new_password: 'brand-new' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body, {});
    assert.equal((await whoami(server, u.accessToken)).status, 200);
    const gone = await whoami(server, other.accessToken);
    assert.equal(gone.status, 401);
    assert.equal(gone.body.errcode, 'M_UNKNOWN_TOKEN');
    assert.equal((await server.request('POST', `${CLIENT}/refresh`, { body: { refresh_token: other.body.refresh_token } })).status, 401);
    const devices = await server.request('GET', `${CLIENT}/devices`, { token: u.accessToken });
    assert.deepEqual(devices.body.devices.map((d: { device_id: string }) => d.device_id), [u.deviceId]);
    assert.deepEqual(calls.devicesChanged.slice(before), [{ userId: u.userId, deleted: [other.deviceId] }]);
    assert.equal((await passwordLogin('pw3', u.password)).status, 403);
    assert.equal((await passwordLogin('pw3', 'brand-new')).status, 200);
  });

  it('logout_devices: false keeps the other devices', async () => {
    const u = await server.registerUser('pw4');
    const other = await login(server, u);
    const res = await withPasswordUia(server, 'POST', `${CLIENT}/account/password`, u, { new_password: 'kept', logout_devices: false });
    assert.equal(res.status, 200);
    assert.equal((await whoami(server, other.accessToken)).status, 200);
    assert.equal((await passwordLogin('pw4', 'kept')).status, 200);
  });

  it('new_password is required and must be a string (M_BAD_JSON); empty is M_WEAK_PASSWORD', async () => {
    const u = await server.registerUser('pw5');
    for (const body of [{}, { new_password: 5 }, { new_password: 'x', logout_devices: 'no' }]) {
      const res = await server.request('POST', `${CLIENT}/account/password`, { token: u.accessToken, body });
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(res.body.errcode, 'M_BAD_JSON');
    }
    const empty = await server.request('POST', `${CLIENT}/account/password`, { token: u.accessToken, body: { new_password: '' } });
    assert.equal(empty.status, 400);
    assert.equal(empty.body.errcode, 'M_WEAK_PASSWORD');
  });

  it('a completed session cannot carry a different new password', async () => {
    const u = await server.registerUser('pw6');
    const first = await server.request('POST', `${CLIENT}/account/password`, { token: u.accessToken, body: { new_password: 'one' } });
    const res = await server.request('POST', `${CLIENT}/account/password`, {
      token: u.accessToken,
      body: { new_password: 'two', auth: passwordAuth(u, first.body.session) },
    });
    assert.equal(res.status, 403);
    assert.equal((await passwordLogin('pw6', u.password)).status, 200);
  });

  it('needs an access token', async () => {
    const res = await server.request('POST', `${CLIENT}/account/password`, { body: { new_password: 'x' } });
    assert.equal(res.status, 401);
    assert.equal(res.body.errcode, 'M_MISSING_TOKEN');
  });
});

describe('POST /account/deactivate', () => {
  it('without auth: 401 with the m.login.password flow, and nothing happens', async () => {
    const u = await server.registerUser('de1');
    const res = await server.request('POST', `${CLIENT}/account/deactivate`, { token: u.accessToken, body: {} });
    assert.equal(res.status, 401);
    assert.deepEqual(res.body.flows, [{ stages: ['m.login.password'] }]);
    assert.equal((await whoami(server, u.accessToken)).status, 200);
  });

  it('deactivates: tokens die, login is refused, rooms are left, the id stays taken', async () => {
    const u = await server.registerUser('de2');
    const other = await login(server, u);
    const before = { devices: calls.devicesChanged.length, left: calls.leftAllRooms.length };
    const res = await withPasswordUia(server, 'POST', `${CLIENT}/account/deactivate`, u);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body, { id_server_unbind_result: 'success' });
    for (const token of [u.accessToken, other.accessToken]) {
      const r = await whoami(server, token);
      assert.equal(r.status, 401);
      assert.equal(r.body.errcode, 'M_UNKNOWN_TOKEN');
    }
    const relogin = await passwordLogin('de2', u.password);
    assert.equal(relogin.status, 403);
    assert.equal(relogin.body.errcode, 'M_FORBIDDEN');
    assert.deepEqual(calls.leftAllRooms.slice(before.left), [u.userId]);
    const changed = calls.devicesChanged.slice(before.devices);
    assert.equal(changed.length, 1);
    assert.deepEqual(changed[0].deleted.sort(), [u.deviceId, other.deviceId].sort());
    const available = await server.request('GET', `${CLIENT}/register/available?username=de2`);
    assert.equal(available.body.errcode, 'M_USER_IN_USE');
    assert.equal(await server.hs.ctx.services.accounts.userExists(u.userId), true);
    // Without erase, the profile stays (old events keep showing the name).
    assert.equal((await server.request('GET', `${CLIENT}/profile/${encodeURIComponent(u.userId)}`)).body.displayname, 'de2');
  });

  it('erase: true also clears the profile', async () => {
    const u = await server.registerUser('de3');
    const res = await withPasswordUia(server, 'POST', `${CLIENT}/account/deactivate`, u, { erase: true });
    assert.equal(res.status, 200);
    assert.deepEqual((await server.request('GET', `${CLIENT}/profile/${encodeURIComponent(u.userId)}`)).body, {});
  });

  it('a wrong password is 401 M_FORBIDDEN; a wrongly typed erase M_BAD_JSON', async () => {
    const u = await server.registerUser('de4');
    const first = await server.request('POST', `${CLIENT}/account/deactivate`, { token: u.accessToken, body: {} });
    const res = await server.request('POST', `${CLIENT}/account/deactivate`, { token: u.accessToken, body: { auth: passwordAuth(u, first.body.session, 'wrong') } });
    assert.equal(res.status, 401);
    assert.equal(res.body.errcode, 'M_FORBIDDEN');
    assert.equal((await whoami(server, u.accessToken)).status, 200);
    const typed = await server.request('POST', `${CLIENT}/account/deactivate`, { token: u.accessToken, body: { erase: 'yes' } });
    assert.equal(typed.status, 400);
    assert.equal(typed.body.errcode, 'M_BAD_JSON');
  });
});

describe('third-party identifiers without email or identity servers', () => {
  it('GET /account/3pid is an empty list; delete and unbind have no identity server to ask; adding is refused', async () => {
    const u = await server.registerUser('tp1');
    const list = await server.request('GET', `${CLIENT}/account/3pid`, { token: u.accessToken });
    assert.equal(list.status, 200);
    assert.deepEqual(list.body, { threepids: [] });
    for (const path of ['/account/3pid/delete', '/account/3pid/unbind']) {
      const r = await server.request('POST', `${CLIENT}${path}`, { token: u.accessToken, body: { medium: 'email', address: 'a@b.c' } });
      assert.equal(r.status, 200);
      assert.deepEqual(r.body, { id_server_unbind_result: 'no-support' });
    }
    const bad = await server.request('POST', `${CLIENT}/account/3pid/delete`, { token: u.accessToken, body: { medium: 'email' } });
    assert.equal(bad.body.errcode, 'M_BAD_JSON');
    const add = await server.request('POST', `${CLIENT}/account/3pid/add`, { token: u.accessToken, body: { sid: 's', client_secret: 'c' } });
    assert.equal(add.status, 400);
    assert.equal(add.body.errcode, 'M_THREEPID_MEDIUM_NOT_SUPPORTED');
    const bind = await server.request('POST', `${CLIENT}/account/3pid/bind`, { token: u.accessToken, body: { sid: 's', client_secret: 'c', id_server: 'id.example', id_access_token: 't' } });
    assert.equal(bind.status, 400);
    assert.equal(bind.body.errcode, 'M_SERVER_NOT_TRUSTED');
    const token = await server.request('POST', `${CLIENT}/register/email/requestToken`, { body: { client_secret: 'x', email: 'a@b.c', send_attempt: 1 } });
    assert.equal(token.status, 403);
    assert.equal(token.body.errcode, 'M_THREEPID_DENIED');
    const reset = await server.request('POST', `${CLIENT}/account/password/msisdn/requestToken`, { body: { client_secret: 'x', country: 'GB', phone_number: '1', send_attempt: 1 } });
    assert.equal(reset.status, 403);
    assert.equal(reset.body.errcode, 'M_THREEPID_DENIED');
    // administrative_contact.yaml names this case: the server cannot add addresses of that medium.
    const adding = await server.request('POST', `${CLIENT}/account/3pid/email/requestToken`, { body: { client_secret: 'x', email: 'a@b.c', send_attempt: 1 } });
    assert.equal(adding.status, 400);
    assert.equal(adding.body.errcode, 'M_THREEPID_MEDIUM_NOT_SUPPORTED');
    const sms = await server.request('POST', `${CLIENT}/account/3pid/msisdn/requestToken`, { body: { client_secret: 'x', country: 'GB', phone_number: '1', send_attempt: 1 } });
    assert.equal(sms.status, 400);
    assert.equal(sms.body.errcode, 'M_THREEPID_MEDIUM_NOT_SUPPORTED');
  });
});
