/**
 * `POST /login/get_token` and the `m.login.token` login flow (client-server-api "Login", spec
 * v1.7): a logged-in user, after re-entering the password every time, makes a single-use,
 * short-lived token; another client logs in with it once. Disabled by config, the capability
 * says so and the endpoint answers 400.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';

const V1 = '/_matrix/client/v1';
const V3 = '/_matrix/client/v3';

async function getToken(server: TestServer, user: TestUser): Promise<{ status: number; body: any }> {
  const probe = await server.request('POST', `${V1}/login/get_token`, { token: user.accessToken, body: {} });
  assert.equal(probe.status, 401, JSON.stringify(probe.body));
  const auth = { type: 'm.login.password', identifier: { type: 'm.id.user', user: user.userId }, password: user.password, session: probe.body.session };
  return server.request('POST', `${V1}/login/get_token`, { token: user.accessToken, body: { auth } });
}

describe('login tokens', () => {
  let server: TestServer;
  let alice: TestUser;
  before(async () => {
    server = await startTestServer();
    alice = await server.registerUser();
  });
  after(async () => {
    await server.stop();
  });

  it('GET /login offers m.login.token with get_login_token, and the capability is on', async () => {
    const flows = await server.request('GET', `${V3}/login`);
    assert.deepEqual(flows.body.flows.find((f: { type: string }) => f.type === 'm.login.token'), { type: 'm.login.token', get_login_token: true });
    const caps = await server.request('GET', `${V3}/capabilities`, { token: alice.accessToken });
    assert.deepEqual(caps.body.capabilities['m.get_login_token'], { enabled: true });
  });

  it('asks for the password, then gives a token that logs another client in once', async () => {
    const probe = await server.request('POST', `${V1}/login/get_token`, { token: alice.accessToken, body: {} });
    assert.equal(probe.status, 401);
    assert.deepEqual(probe.body.flows, [{ stages: ['m.login.password'] }]);

    const res = await getToken(server, alice);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(typeof res.body.login_token, 'string');
    assert.equal(res.body.expires_in_ms, 120_000);

    const login = await server.request('POST', `${V3}/login`, { body: { type: 'm.login.token', token: res.body.login_token, initial_device_display_name: 'second' } });
    assert.equal(login.status, 200, JSON.stringify(login.body));
    assert.equal(login.body.user_id, alice.userId);
    assert.notEqual(login.body.device_id, alice.deviceId);
    const who = await server.request('GET', `${V3}/account/whoami`, { token: login.body.access_token });
    assert.equal(who.body.user_id, alice.userId);

    const again = await server.request('POST', `${V3}/login`, { body: { type: 'm.login.token', token: res.body.login_token } });
    assert.equal(again.status, 403);
    assert.equal(again.body.errcode, 'M_FORBIDDEN');
  });

  it('a wrong password gives no token, and a completed session cannot make a second one', async () => {
    const probe = await server.request('POST', `${V1}/login/get_token`, { token: alice.accessToken, body: {} });
    const wrong = await server.request('POST', `${V1}/login/get_token`, {
      token: alice.accessToken,
      body: { auth: { type: 'm.login.password', identifier: { type: 'm.id.user', user: alice.userId }, password: 'nope', session: probe.body.session } },
    });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body.errcode, 'M_FORBIDDEN');
    assert.equal(wrong.body.login_token, undefined);

    const ok = await server.request('POST', `${V1}/login/get_token`, {
      token: alice.accessToken,
      body: { auth: { type: 'm.login.password', identifier: { type: 'm.id.user', user: alice.userId }, password: alice.password, session: probe.body.session } },
    });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    // The same session again, without the password: the user must be asked again.
    const reuse = await server.request('POST', `${V1}/login/get_token`, { token: alice.accessToken, body: { auth: { session: probe.body.session } } });
    assert.ok(reuse.status === 400 || reuse.status === 401, JSON.stringify(reuse.body));
    assert.equal(reuse.body.login_token, undefined);
  });

  it('an unknown token is 403 M_FORBIDDEN, a missing one 400', async () => {
    const bad = await server.request('POST', `${V3}/login`, { body: { type: 'm.login.token', token: 'hlt_nothing' } });
    assert.equal(bad.status, 403);
    assert.equal(bad.body.errcode, 'M_FORBIDDEN');
    const missing = await server.request('POST', `${V3}/login`, { body: { type: 'm.login.token' } });
    assert.equal(missing.status, 400);
    assert.equal(missing.body.errcode, 'M_MISSING_PARAM');
  });

  it('needs an access token', async () => {
    const res = await server.request('POST', `${V1}/login/get_token`, { body: {} });
    assert.equal(res.status, 401);
    assert.equal(res.body.errcode, 'M_MISSING_TOKEN');
  });
});

describe('login tokens that expire, and disabled', () => {
  let shortLived: TestServer;
  let disabled: TestServer;
  before(async () => {
    shortLived = await startTestServer({ config: { login_token: { lifetime_ms: 50 } } });
    disabled = await startTestServer({ config: { login_token: { enabled: false } } });
  });
  after(async () => {
    await shortLived.stop();
    await disabled.stop();
  });

  it('an expired token is 403 M_FORBIDDEN', async () => {
    const bob = await shortLived.registerUser();
    const res = await getToken(shortLived, bob);
    assert.equal(res.status, 200);
    assert.equal(res.body.expires_in_ms, 50);
    await new Promise((r) => setTimeout(r, 120));
    const login = await shortLived.request('POST', `${V3}/login`, { body: { type: 'm.login.token', token: res.body.login_token } });
    assert.equal(login.status, 403);
    assert.equal(login.body.errcode, 'M_FORBIDDEN');
  });

  it('disabled: no flow, capability off, get_token answers 400', async () => {
    const carol = await disabled.registerUser();
    const flows = await disabled.request('GET', `${V3}/login`);
    assert.ok(!flows.body.flows.some((f: { type: string }) => f.type === 'm.login.token'));
    const caps = await disabled.request('GET', `${V3}/capabilities`, { token: carol.accessToken });
    assert.deepEqual(caps.body.capabilities['m.get_login_token'], { enabled: false });
    const res = await disabled.request('POST', `${V1}/login/get_token`, { token: carol.accessToken, body: {} });
    assert.equal(res.status, 400);
    assert.equal(res.body.errcode, 'M_FORBIDDEN');
    const login = await disabled.request('POST', `${V3}/login`, { body: { type: 'm.login.token', token: 'x' } });
    assert.equal(login.status, 400);
  });
});
