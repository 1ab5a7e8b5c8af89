import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';

const V3 = '/_matrix/client/v3';

describe('OpenID tokens (client-server and server-server openid.yaml) and /admin/whois (admin.yaml)', () => {
  let server: TestServer;
  let admin: TestUser;
  let alice: TestUser;
  let bob: TestUser;
  const enc = encodeURIComponent;
  const userinfo = (token: string) => server.request('GET', `/_matrix/federation/v1/openid/userinfo?access_token=${enc(token)}`);

  before(async () => {
    server = await startTestServer();
    admin = await server.registerUser(undefined, { admin: true });
    alice = await server.registerUser();
    bob = await server.registerUser();
  });
  after(async () => {
    await server.stop();
  });

  it('a user gets an OpenID token that the federation API maps back to them', async () => {
    const res = await server.request('POST', `${V3}/user/${enc(alice.userId)}/openid/request_token`, { token: alice.accessToken, body: {} });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.token_type, 'Bearer');
    assert.equal(res.body.matrix_server_name, server.serverName);
    assert.ok(res.body.expires_in > 0);
    assert.equal(typeof res.body.access_token, 'string');
    const info = await userinfo(res.body.access_token);
    assert.equal(info.status, 200, JSON.stringify(info.body));
    assert.deepEqual(info.body, { sub: alice.userId });
  });

  it('an OpenID token is no access token, and an access token is no OpenID token', async () => {
    const res = await server.request('POST', `${V3}/user/${enc(alice.userId)}/openid/request_token`, { token: alice.accessToken, body: {} });
    const who = await server.request('GET', `${V3}/account/whoami`, { token: res.body.access_token });
    assert.equal(who.status, 401);
    const wrong = await userinfo(alice.accessToken);
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body.errcode, 'M_UNKNOWN_TOKEN');
    const missing = await server.request('GET', '/_matrix/federation/v1/openid/userinfo');
    assert.equal(missing.status, 401);
    assert.equal(missing.body.errcode, 'M_UNKNOWN_TOKEN');
  });

  it('nobody asks for a token in another user\'s name', async () => {
    const res = await server.request('POST', `${V3}/user/${enc(alice.userId)}/openid/request_token`, { token: bob.accessToken, body: {} });
    assert.equal(res.status, 403);
    assert.equal(res.body.errcode, 'M_FORBIDDEN');
  });

  it('whois lists the devices with their last address and time, for admins and the user only', async () => {
    await server.request('GET', `${V3}/account/whoami`, { token: alice.accessToken });
    const res = await server.request('GET', `${V3}/admin/whois/${enc(alice.userId)}`, { token: admin.accessToken });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.user_id, alice.userId);
    const device = res.body.devices[alice.deviceId];
    assert.ok(device, 'the login device is listed');
    assert.equal(device.sessions.length, 1);
    assert.equal(device.sessions[0].connections.length, 1, 'the device was seen');
    for (const c of device.sessions[0].connections) {
      assert.equal(typeof c.last_seen, 'number');
      assert.equal(typeof c.ip, 'string');
    }
    assert.equal((await server.request('GET', `${V3}/admin/whois/${enc(alice.userId)}`, { token: alice.accessToken })).status, 200);
    const refused = await server.request('GET', `${V3}/admin/whois/${enc(alice.userId)}`, { token: bob.accessToken });
    assert.equal(refused.status, 403);
    assert.equal(refused.body.errcode, 'M_FORBIDDEN');
    const unknown = await server.request('GET', `${V3}/admin/whois/${enc(`@nobody:${server.serverName}`)}`, { token: admin.accessToken });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.errcode, 'M_NOT_FOUND');
  });
});
