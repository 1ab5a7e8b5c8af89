import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MatrixError } from '../../src/http/errors.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { CLIENT, spyCrossDomain, whoami, type CrossDomainCalls } from './helpers.js';

let server: TestServer;
let calls: CrossDomainCalls;

before(async () => {
  server = await startTestServer();
  calls = spyCrossDomain(server);
});
after(async () => {
  await server.stop();
});

let n = 0;
const uniqueName = (p = 'reg') => `${p}${process.pid}x${++n}`;

/** Registers through the m.login.dummy flow. */
async function register(body: Record<string, unknown>, path = `${CLIENT}/register`) {
  const first = await server.request('POST', path, { body });
  if (first.status !== 401) return first;
  return server.request('POST', path, { body: { ...body, auth: { type: 'm.login.dummy', session: first.body.session } } });
}

describe('POST /register (open registration, m.login.dummy)', () => {
  it('an empty request answers 401 with the dummy flow, params and a session', async () => {
    const res = await server.request('POST', `${CLIENT}/register`, { body: {} });
    assert.equal(res.status, 401);
    assert.deepEqual(res.body.flows, [{ stages: ['m.login.dummy'] }]);
    assert.deepEqual(res.body.params, {});
    assert.equal(typeof res.body.session, 'string');
    assert.ok(res.body.session.length > 0);
    // A plain "authentication needed" carries no error: clients would show it as one.
    assert.equal(res.body.errcode, undefined);
    assert.equal(res.body.completed, undefined);
  });

  it('completing the dummy stage registers the user and logs them in', async () => {
    const name = uniqueName();
    const before = calls.devicesChanged.length;
    const res = await register({ username: name, password: 'pw-1', initial_device_display_name: 'Phone' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.user_id, `@${name}:${server.serverName}`);
    assert.equal(res.body.home_server, server.serverName);
    assert.equal(typeof res.body.access_token, 'string');
    assert.equal(typeof res.body.device_id, 'string');
    assert.equal(res.body.refresh_token, undefined);
    assert.equal(res.body.expires_in_ms, undefined);
    const me = await whoami(server, res.body.access_token);
    assert.equal(me.status, 200);
    assert.deepEqual(me.body, { user_id: res.body.user_id, device_id: res.body.device_id, is_guest: false });
    const dev = await server.request('GET', `${CLIENT}/devices/${res.body.device_id}`, { token: res.body.access_token });
    assert.equal(dev.body.display_name, 'Phone');
    // A new device is a device-list change for e2ee.
    assert.deepEqual(calls.devicesChanged.slice(before), [{ userId: res.body.user_id, deleted: [] }]);
    // The registered password works for login.
    const login = await server.request('POST', `${CLIENT}/login`, {
      body: { type: 'm.login.password', identifier: { type: 'm.id.user', user: name }, password: 'pw-1' },
    });
    assert.equal(login.status, 200);
  });

  it('the device id the client chose is used', async () => {
    const res = await register({ username: uniqueName(), password: 'pw', device_id: 'MYDEVICE' });
    assert.equal(res.status, 200);
    assert.equal(res.body.device_id, 'MYDEVICE');
  });

  it('upper-case usernames are lower-cased (appendices: user ids are lower case)', async () => {
    const name = uniqueName('Mixed');
    const res = await register({ username: name, password: 'pw' });
    assert.equal(res.status, 200);
    assert.equal(res.body.user_id, `@${name.toLowerCase()}:${server.serverName}`);
  });

  it('without a username the server generates a valid localpart', async () => {
    const res = await register({ password: 'pw' });
    assert.equal(res.status, 200);
    assert.match(res.body.user_id, /^@[a-z][a-z0-9]+:localhost$/);
  });

  it('inhibit_login registers without an access token or device', async () => {
    const name = uniqueName();
    const res = await register({ username: name, password: 'pw', inhibit_login: true });
    assert.equal(res.status, 200);
    assert.equal(res.body.user_id, `@${name}:${server.serverName}`);
    assert.equal(res.body.access_token, undefined);
    assert.equal(res.body.device_id, undefined);
  });

  it('refresh_token: true returns a refresh token and the access token lifetime', async () => {
    const res = await register({ username: uniqueName(), password: 'pw', refresh_token: true });
    assert.equal(res.status, 200);
    assert.equal(typeof res.body.refresh_token, 'string');
    assert.equal(res.body.expires_in_ms, server.hs.ctx.config.access_token_lifetime_ms);
  });

  it('works on the r0 path too', async () => {
    const res = await register({ username: uniqueName(), password: 'pw' }, '/_matrix/client/r0/register');
    assert.equal(res.status, 200);
  });

  it('a taken username is M_USER_IN_USE, before user-interactive auth', async () => {
    const name = uniqueName();
    assert.equal((await register({ username: name, password: 'pw' })).status, 200);
    const res = await server.request('POST', `${CLIENT}/register`, { body: { username: name, password: 'pw' } });
    assert.equal(res.status, 400);
    assert.equal(res.body.errcode, 'M_USER_IN_USE');
    // Case folding makes the upper-case spelling the same user.
    const upper = await server.request('POST', `${CLIENT}/register`, { body: { username: name.toUpperCase(), password: 'pw' } });
    assert.equal(upper.body.errcode, 'M_USER_IN_USE');
  });

  it('an invalid username is M_INVALID_USERNAME, before user-interactive auth', async () => {
    for (const username of ['has space', 'colon:name', 'ümlaut', '', '_reserved', '12345', 'x'.repeat(250)]) {
      const res = await server.request('POST', `${CLIENT}/register`, { body: { username, password: 'pw' } });
      assert.equal(res.status, 400, username);
      assert.equal(res.body.errcode, 'M_INVALID_USERNAME', username);
    }
  });

  it('fields of the wrong type are M_BAD_JSON', async () => {
    for (const body of [{ username: 5 }, { password: ['x'] }, { inhibit_login: 'yes' }, { refresh_token: 1 }, { auth: 'dummy' }, { device_id: 3 }]) {
      const res = await server.request('POST', `${CLIENT}/register`, { body });
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(res.body.errcode, 'M_BAD_JSON', JSON.stringify(body));
    }
  });

  it('a registration attempt without a password is M_MISSING_PARAM; an empty one M_WEAK_PASSWORD', async () => {
    const first = await server.request('POST', `${CLIENT}/register`, { body: { username: uniqueName() } });
    assert.equal(first.status, 401);
    const res = await server.request('POST', `${CLIENT}/register`, {
      body: { username: uniqueName(), auth: { type: 'm.login.dummy', session: first.body.session } },
    });
    assert.equal(res.status, 400);
    assert.equal(res.body.errcode, 'M_MISSING_PARAM');
    const empty = await server.request('POST', `${CLIENT}/register`, { body: { username: uniqueName(), password: '', auth: { type: 'm.login.dummy' } } });
    assert.equal(empty.status, 400);
    assert.equal(empty.body.errcode, 'M_WEAK_PASSWORD');
  });

  it('an unknown kind is M_INVALID_PARAM (guests: guests.test.ts)', async () => {
    const odd = await server.request('POST', `${CLIENT}/register?kind=robot`, { body: {} });
    assert.equal(odd.status, 400);
    assert.equal(odd.body.errcode, 'M_INVALID_PARAM');
  });
});

describe('user-interactive auth sessions on /register', () => {
  it('a stage can be attempted without a session: the server starts one', async () => {
    const res = await server.request('POST', `${CLIENT}/register`, {
      body: { username: uniqueName(), password: 'pw', auth: { type: 'm.login.dummy' } },
    });
    assert.equal(res.status, 200);
  });

  it('a session from an empty probe is claimed by the first real request', async () => {
    const probe = await server.request('POST', `${CLIENT}/register`, { body: {} });
    const res = await server.request('POST', `${CLIENT}/register`, {
      body: { username: uniqueName(), password: 'pw', auth: { type: 'm.login.dummy', session: probe.body.session } },
    });
    assert.equal(res.status, 200);
  });

  it('a session cannot be reused for a different request', async () => {
    const first = await server.request('POST', `${CLIENT}/register`, { body: { username: uniqueName(), password: 'pw' } });
    assert.equal(first.status, 401);
    const res = await server.request('POST', `${CLIENT}/register`, {
      body: { username: uniqueName(), password: 'pw', auth: { type: 'm.login.dummy', session: first.body.session } },
    });
    assert.equal(res.status, 403);
    assert.equal(res.body.errcode, 'M_FORBIDDEN');
  });

  it('an unknown session is refused', async () => {
    const res = await server.request('POST', `${CLIENT}/register`, {
      body: { username: uniqueName(), password: 'pw', auth: { type: 'm.login.dummy', session: 'nope' } },
    });
    assert.equal(res.status, 400);
    assert.equal(res.body.errcode, 'M_UNKNOWN');
  });

  it('a stage that is not in any flow is a 401 with an error and the session', async () => {
    const body = { username: uniqueName(), password: 'pw' };
    const first = await server.request('POST', `${CLIENT}/register`, { body });
    const res = await server.request('POST', `${CLIENT}/register`, {
      body: { ...body, auth: { type: 'm.login.registration_token', token: 'x', session: first.body.session } },
    });
    assert.equal(res.status, 401);
    assert.equal(res.body.errcode, 'M_FORBIDDEN');
    assert.equal(res.body.session, first.body.session);
    assert.deepEqual(res.body.flows, [{ stages: ['m.login.dummy'] }]);
  });

  it('an auth dict with only the session reports progress; once complete, retrying yields the result', async () => {
    const body = { username: uniqueName(), password: 'pw', inhibit_login: true };
    const first = await server.request('POST', `${CLIENT}/register`, { body });
    const again = await server.request('POST', `${CLIENT}/register`, { body: { ...body, auth: { session: first.body.session } } });
    assert.equal(again.status, 401);
    assert.equal(again.body.session, first.body.session);
    assert.equal(again.body.completed, undefined);
    const done = await server.request('POST', `${CLIENT}/register`, { body: { ...body, auth: { type: 'm.login.dummy', session: first.body.session } } });
    assert.equal(done.status, 200);
    // The session is complete; a retry runs the request again, which now finds the name taken.
    const retry = await server.request('POST', `${CLIENT}/register`, { body: { ...body, auth: { session: first.body.session } } });
    assert.equal(retry.status, 400);
    assert.equal(retry.body.errcode, 'M_USER_IN_USE');
  });
});

describe('GET /register/available', () => {
  it('answers available: true for a free, valid name', async () => {
    const res = await server.request('GET', `${CLIENT}/register/available?username=${uniqueName()}`);
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { available: true });
  });

  it('a taken name is M_USER_IN_USE, an invalid one M_INVALID_USERNAME, a missing one M_INVALID_PARAM', async () => {
    const name = uniqueName();
    await server.registerUser(name);
    const taken = await server.request('GET', `${CLIENT}/register/available?username=${name}`);
    assert.equal(taken.status, 400);
    assert.equal(taken.body.errcode, 'M_USER_IN_USE');
    const bad = await server.request('GET', `${CLIENT}/register/available?username=${encodeURIComponent('a b')}`);
    assert.equal(bad.status, 400);
    assert.equal(bad.body.errcode, 'M_INVALID_USERNAME');
    const missing = await server.request('GET', `${CLIENT}/register/available`);
    assert.equal(missing.status, 400);
    assert.equal(missing.body.errcode, 'M_INVALID_PARAM');
  });
});

describe('createUser (CLI, shared-secret registration)', () => {
  it('creates a user with a password who can log in; the localpart is lower-cased', async () => {
    const name = uniqueName('Cli');
    const { userId } = await server.hs.ctx.services.accounts.createUser({ localpart: name, password: 'pw' });
    assert.equal(userId, `@${name.toLowerCase()}:${server.serverName}`);
    assert.equal(await server.hs.ctx.services.accounts.userExists(userId), true);
    assert.deepEqual(await server.hs.ctx.services.accounts.getProfile(userId), { displayname: name.toLowerCase() });
  });

  it('rejects a duplicate with M_USER_IN_USE and a bad name with M_INVALID_USERNAME', async () => {
    const name = uniqueName();
    await server.hs.ctx.services.accounts.createUser({ localpart: name, password: 'pw' });
    await assert.rejects(server.hs.ctx.services.accounts.createUser({ localpart: name, password: 'pw' }), (e: unknown) => {
      assert.ok(e instanceof MatrixError);
      assert.equal(e.errcode, 'M_USER_IN_USE');
      assert.equal(e.status, 400);
      return true;
    });
    for (const localpart of ['bad name', 'a:b', '']) {
      await assert.rejects(server.hs.ctx.services.accounts.createUser({ localpart, password: 'pw' }), (e: unknown) => {
        assert.ok(e instanceof MatrixError);
        assert.equal(e.errcode, 'M_INVALID_USERNAME');
        return true;
      });
    }
  });

  it('userExists and getProfile answer false / null for unknown users', async () => {
    assert.equal(await server.hs.ctx.services.accounts.userExists('@nobody-here:localhost'), false);
    assert.equal(await server.hs.ctx.services.accounts.getProfile('@nobody-here:localhost'), null);
  });
});
