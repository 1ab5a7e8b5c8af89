import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { CLIENT, spyCrossDomain } from './helpers.js';

const VALIDITY = '/_matrix/client/v1/register/m.login.registration_token/validity';

describe("registration: 'token' (m.login.registration_token)", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ config: { registration: 'token', registration_tokens: ['tok-alpha', 'tok-beta'] } });
    spyCrossDomain(server);
  });
  after(async () => {
    await server.stop();
  });

  it('offers the registration token flow', async () => {
    const res = await server.request('POST', `${CLIENT}/register`, { body: {} });
    assert.equal(res.status, 401);
    assert.deepEqual(res.body.flows, [{ stages: ['m.login.registration_token'] }]);
  });

  it('a wrong token is a 401 with M_FORBIDDEN and the same session; the right one registers', async () => {
    const body = { username: 'tokenuser', password: 'pw' };
    const first = await server.request('POST', `${CLIENT}/register`, { body });
    const wrong = await server.request('POST', `${CLIENT}/register`, {
      body: { ...body, auth: { type: 'm.login.registration_token', token: 'tok-gamma', session: first.body.session } },
    });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body.errcode, 'M_FORBIDDEN');
    assert.equal(wrong.body.session, first.body.session);
    assert.deepEqual(wrong.body.flows, [{ stages: ['m.login.registration_token'] }]);
    const ok = await server.request('POST', `${CLIENT}/register`, {
      body: { ...body, auth: { type: 'm.login.registration_token', token: 'tok-beta', session: first.body.session } },
    });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.body.user_id, '@tokenuser:localhost');
  });

  it('the dummy stage is not accepted in token mode', async () => {
    const res = await server.request('POST', `${CLIENT}/register`, {
      body: { username: 'sneaky', password: 'pw', auth: { type: 'm.login.dummy' } },
    });
    assert.equal(res.status, 401);
    assert.equal(res.body.errcode, 'M_FORBIDDEN');
  });

  it('GET .../validity (v1) says whether a token is valid', async () => {
    const yes = await server.request('GET', `${VALIDITY}?token=tok-alpha`);
    assert.equal(yes.status, 200);
    assert.deepEqual(yes.body, { valid: true });
    const no = await server.request('GET', `${VALIDITY}?token=tok-alph`);
    assert.deepEqual(no.body, { valid: false });
    const missing = await server.request('GET', VALIDITY);
    assert.equal(missing.status, 400);
    // v1 only: there is no v3 path.
    const v3 = await server.request('GET', `${CLIENT}/register/m.login.registration_token/validity?token=tok-alpha`);
    assert.equal(v3.status, 404);
    assert.equal(v3.body.errcode, 'M_UNRECOGNIZED');
  });
});

describe("registration: 'closed'", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ config: { registration: 'closed' } });
    spyCrossDomain(server);
  });
  after(async () => {
    await server.stop();
  });

  it('POST /register is 403 M_FORBIDDEN, even without auth', async () => {
    for (const body of [{}, { username: 'x', password: 'pw', auth: { type: 'm.login.dummy' } }]) {
      const res = await server.request('POST', `${CLIENT}/register`, { body });
      assert.equal(res.status, 403);
      assert.equal(res.body.errcode, 'M_FORBIDDEN');
    }
  });

  it('token validity and username availability are 403 M_FORBIDDEN', async () => {
    const v = await server.request('GET', `${VALIDITY}?token=x`);
    assert.equal(v.status, 403);
    assert.equal(v.body.errcode, 'M_FORBIDDEN');
    const a = await server.request('GET', `${CLIENT}/register/available?username=x`);
    assert.equal(a.status, 403);
  });

  it('login still works for users the admin created', async () => {
    const u = await server.registerUser('closeduser');
    assert.equal(u.userId, '@closeduser:localhost');
  });
});
