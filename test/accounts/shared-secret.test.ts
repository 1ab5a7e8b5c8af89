import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { CLIENT, spyCrossDomain, whoami } from './helpers.js';

const ADMIN_REGISTER = '/_synapse/admin/v1/register';
const SECRET = 'test-shared-secret';

let server: TestServer;

before(async () => {
  server = await startTestServer();
  spyCrossDomain(server);
});
after(async () => {
  await server.stop();
});

/** The MAC as Synapse's register_new_matrix_user computes it. */
function mac(nonce: string, username: string, password: string, admin: boolean, secret = SECRET, userType?: string): string {
  const h = createHmac('sha1', secret);
  h.update(nonce).update('\x00').update(username).update('\x00').update(password).update('\x00').update(admin ? 'admin' : 'notadmin');
  if (userType !== undefined) h.update('\x00').update(userType);
  return h.digest('hex');
}

async function nonce(): Promise<string> {
  const res = await server.request('GET', ADMIN_REGISTER);
  assert.equal(res.status, 200);
  return res.body.nonce;
}

async function registerShared(username: string, password: string, admin: boolean, extra: Record<string, unknown> = {}) {
  const n = await nonce();
  return server.request('POST', ADMIN_REGISTER, { body: { nonce: n, username, password, admin, mac: mac(n, username, password, admin), ...extra } });
}

describe('shared-secret registration (/_synapse/admin/v1/register)', () => {
  it('GET gives a fresh nonce each time', async () => {
    const a = await nonce();
    const b = await nonce();
    assert.equal(typeof a, 'string');
    assert.ok(a.length >= 16);
    assert.notEqual(a, b);
  });

  it('registers a user with a correct MAC and answers as Synapse does', async () => {
    const res = await registerShared('sharon', 'sharon-pw', false, { displayname: 'Sharon' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(Object.keys(res.body).sort(), ['access_token', 'device_id', 'home_server', 'user_id']);
    assert.equal(res.body.user_id, '@sharon:localhost');
    assert.equal(res.body.home_server, 'localhost');
    const me = await whoami(server, res.body.access_token);
    assert.deepEqual(me.body, { user_id: '@sharon:localhost', device_id: res.body.device_id, is_guest: false });
    const requester = await server.hs.ctx.services.accounts.authenticate(res.body.access_token);
    assert.equal(requester.isAdmin, false);
    assert.deepEqual(await server.hs.ctx.services.accounts.getProfile('@sharon:localhost'), { displayname: 'Sharon' });
    const login = await server.request('POST', `${CLIENT}/login`, { body: { type: 'm.login.password', user: 'sharon', password: 'sharon-pw' } });
    assert.equal(login.status, 200);
  });

  it('admin: true makes a server admin; the username is lower-cased', async () => {
    const res = await registerShared('BossLady', 'pw', true);
    assert.equal(res.status, 200);
    assert.equal(res.body.user_id, '@bosslady:localhost');
    assert.equal((await server.hs.ctx.services.accounts.authenticate(res.body.access_token)).isAdmin, true);
  });

  it('user_type is part of the MAC when given', async () => {
    const n = await nonce();
    const res = await server.request('POST', ADMIN_REGISTER, {
      body: { nonce: n, username: 'typed', password: 'pw', admin: false, user_type: 'bot', mac: mac(n, 'typed', 'pw', false, SECRET, 'bot') },
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
  });

  it('a wrong MAC is 403 M_FORBIDDEN (wrong secret, tampered admin flag, garbage)', async () => {
    for (const make of [
      (n: string) => mac(n, 'mallory', 'pw', false, 'wrong-secret'),
      (n: string) => mac(n, 'mallory', 'pw', false), // signed as not admin, sent as admin below
      () => 'zz',
    ]) {
      const n = await nonce();
      const res = await server.request('POST', ADMIN_REGISTER, { body: { nonce: n, username: 'mallory', password: 'pw', admin: true, mac: make(n) } });
      assert.equal(res.status, 403);
      assert.equal(res.body.errcode, 'M_FORBIDDEN');
    }
    assert.equal(await server.hs.ctx.services.accounts.userExists('@mallory:localhost'), false);
  });

  it('a nonce is good once; an unknown nonce is refused', async () => {
    const n = await nonce();
    const body = { nonce: n, username: 'once', password: 'pw', admin: false, mac: mac(n, 'once', 'pw', false) };
    assert.equal((await server.request('POST', ADMIN_REGISTER, { body })).status, 200);
    const again = await server.request('POST', ADMIN_REGISTER, { body: { ...body, username: 'twice', mac: mac(n, 'twice', 'pw', false) } });
    assert.equal(again.status, 400);
    assert.equal(again.body.errcode, 'M_UNKNOWN');
    const unknown = await server.request('POST', ADMIN_REGISTER, { body: { ...body, nonce: 'made-up' } });
    assert.equal(unknown.status, 400);
  });

  it('a nonce expires after 60 seconds', async () => {
    const n = await nonce();
    const realNow = server.hs.ctx.now;
    server.hs.ctx.now = () => realNow() + 61_000;
    try {
      const res = await server.request('POST', ADMIN_REGISTER, { body: { nonce: n, username: 'late', password: 'pw', admin: false, mac: mac(n, 'late', 'pw', false) } });
      assert.equal(res.status, 400);
      assert.equal(res.body.errcode, 'M_UNKNOWN');
    } finally {
      server.hs.ctx.now = realNow;
    }
  });

  it('a taken name is M_USER_IN_USE and an invalid one M_INVALID_USERNAME', async () => {
    await server.registerUser('taken');
    const taken = await registerShared('taken', 'pw', false);
    assert.equal(taken.status, 400);
    assert.equal(taken.body.errcode, 'M_USER_IN_USE');
    const invalid = await registerShared('no spaces', 'pw', false);
    assert.equal(invalid.status, 400);
    assert.equal(invalid.body.errcode, 'M_INVALID_USERNAME');
  });

  it('wrongly typed fields are M_BAD_JSON', async () => {
    for (const patch of [{ username: 5 }, { password: null }, { admin: 'yes' }, { mac: 1 }, { nonce: 3 }]) {
      const n = await nonce();
      const res = await server.request('POST', ADMIN_REGISTER, { body: { nonce: n, username: 'typo', password: 'pw', admin: false, mac: mac(n, 'typo', 'pw', false), ...patch } });
      assert.equal(res.status, 400, JSON.stringify(patch));
      assert.equal(res.body.errcode, 'M_BAD_JSON', JSON.stringify(patch));
    }
  });
});

describe('shared-secret registration without a configured secret', () => {
  let bare: TestServer;
  before(async () => {
    bare = await startTestServer({ config: { registration_shared_secret: '' } });
  });
  after(async () => {
    await bare.stop();
  });

  it('is refused', async () => {
    const res = await bare.request('GET', ADMIN_REGISTER);
    assert.equal(res.status, 400);
    const post = await bare.request('POST', ADMIN_REGISTER, { body: { nonce: 'x', username: 'a', password: 'b', mac: mac('x', 'a', 'b', false, '') } });
    assert.equal(post.status, 400);
    assert.equal(await bare.hs.ctx.services.accounts.userExists('@a:localhost'), false);
  });
});
