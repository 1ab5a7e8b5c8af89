/**
 * Account locking and suspension by an administrator (client-server-api "Account moderation",
 * admin.yaml `/v1/admin/lock/{userId}`, `/v1/admin/suspend/{userId}`): who may call them, what
 * they answer, and what a locked (401 M_USER_LOCKED, soft logout, only logout served) or
 * suspended (403 M_USER_SUSPENDED for joins, invites, messages, profile changes) user can do.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';

const V1 = '/_matrix/client/v1';
const V3 = '/_matrix/client/v3';
const enc = encodeURIComponent;

describe('account moderation', () => {
  let server: TestServer;
  let admin: TestUser;
  let admin2: TestUser;
  let alice: TestUser;
  let bob: TestUser;
  let roomId: string;
  before(async () => {
    server = await startTestServer();
    admin = await server.registerUser(undefined, { admin: true });
    admin2 = await server.registerUser(undefined, { admin: true });
    alice = await server.registerUser();
    bob = await server.registerUser();
    roomId = (await server.request('POST', `${V3}/createRoom`, { token: bob.accessToken, body: { preset: 'public_chat' } })).body.room_id;
  });
  after(async () => {
    await server.stop();
  });

  const put = (token: string, kind: 'lock' | 'suspend', userId: string, body: unknown) =>
    server.request('PUT', `${V1}/admin/${kind}/${enc(userId)}`, { token, body });
  const get = (token: string, kind: 'lock' | 'suspend', userId: string) => server.request('GET', `${V1}/admin/${kind}/${enc(userId)}`, { token });

  it('only administrators may look or change, and the check comes before any lookup', async () => {
    for (const kind of ['lock', 'suspend'] as const) {
      for (const target of [bob.userId, '@nobody:localhost', '@x:elsewhere.example']) {
        const g = await get(alice.accessToken, kind, target);
        assert.equal(g.status, 403, `${kind} ${target}`);
        assert.equal(g.body.errcode, 'M_FORBIDDEN');
      }
      const p = await put(alice.accessToken, kind, bob.userId, { [kind === 'lock' ? 'locked' : 'suspended']: true });
      assert.equal(p.status, 403);
    }
  });

  it('answers 400 M_INVALID_PARAM for another server, 404 M_NOT_FOUND for nobody, 403 for self or another admin', async () => {
    const remote = await get(admin.accessToken, 'lock', '@x:elsewhere.example');
    assert.equal(remote.status, 400);
    assert.equal(remote.body.errcode, 'M_INVALID_PARAM');
    const nobody = await get(admin.accessToken, 'suspend', '@nobody:localhost');
    assert.equal(nobody.status, 404);
    assert.equal(nobody.body.errcode, 'M_NOT_FOUND');
    assert.equal((await put(admin.accessToken, 'lock', admin.userId, { locked: true })).body.errcode, 'M_FORBIDDEN');
    assert.equal((await put(admin.accessToken, 'suspend', admin2.userId, { suspended: true })).body.errcode, 'M_FORBIDDEN');
    const bad = await put(admin.accessToken, 'lock', alice.userId, { locked: 'yes' });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.errcode, 'M_BAD_JSON');
  });

  it('administrators see the m.account_moderation capability, others do not', async () => {
    const a = await server.request('GET', `${V3}/capabilities`, { token: admin.accessToken });
    assert.deepEqual(a.body.capabilities['m.account_moderation'], { suspend: true, lock: true });
    const u = await server.request('GET', `${V3}/capabilities`, { token: alice.accessToken });
    assert.equal(u.body.capabilities['m.account_moderation'], undefined);
  });

  it('a suspended user reads and leaves, but cannot join, invite, send, change the profile or create rooms', async () => {
    const carol = await server.registerUser();
    const joined = await server.request('POST', `${V3}/join/${enc(roomId)}`, { token: carol.accessToken, body: {} });
    assert.equal(joined.status, 200);
    const own = await server.request('PUT', `${V3}/rooms/${enc(roomId)}/send/m.room.message/c1`, { token: carol.accessToken, body: { msgtype: 'm.text', body: 'mine' } });
    const bobs = await server.request('PUT', `${V3}/rooms/${enc(roomId)}/send/m.room.message/b1`, { token: bob.accessToken, body: { msgtype: 'm.text', body: 'bob' } });

    assert.deepEqual((await get(admin.accessToken, 'suspend', carol.userId)).body, { suspended: false });
    assert.deepEqual((await put(admin.accessToken, 'suspend', carol.userId, { suspended: true })).body, { suspended: true });
    assert.deepEqual((await get(admin.accessToken, 'suspend', carol.userId)).body, { suspended: true });

    const t = carol.accessToken;
    const refused: [string, string, unknown][] = [
      ['PUT', `${V3}/rooms/${enc(roomId)}/send/m.room.message/c2`, { msgtype: 'm.text', body: 'no' }],
      ['PUT', `${V3}/rooms/${enc(roomId)}/state/m.room.topic`, { topic: 'no' }],
      ['POST', `${V3}/rooms/${enc(roomId)}/invite`, { user_id: alice.userId }],
      ['POST', `${V3}/createRoom`, {}],
      ['PUT', `${V3}/profile/${enc(carol.userId)}/displayname`, { displayname: 'no' }],
      ['PUT', `${V3}/rooms/${enc(roomId)}/redact/${enc(bobs.body.event_id)}/r1`, {}],
    ];
    for (const [method, path, body] of refused) {
      const res = await server.request(method, path, { token: t, body });
      assert.equal(res.status, 403, `${method} ${path}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.errcode, 'M_USER_SUSPENDED', `${method} ${path}`);
    }
    // Still allowed: reading, redacting their own events, leaving.
    assert.equal((await server.request('GET', `${V3}/sync?timeout=0`, { token: t })).status, 200);
    assert.equal((await server.request('GET', `${V3}/rooms/${enc(roomId)}/messages?dir=b`, { token: t })).status, 200);
    const redactOwn = await server.request('PUT', `${V3}/rooms/${enc(roomId)}/redact/${enc(own.body.event_id)}/r2`, { token: t, body: {} });
    assert.equal(redactOwn.status, 200, JSON.stringify(redactOwn.body));
    assert.equal((await server.request('POST', `${V3}/rooms/${enc(roomId)}/leave`, { token: t, body: {} })).status, 200);
    const rejoin = await server.request('POST', `${V3}/rooms/${enc(roomId)}/join`, { token: t, body: {} });
    assert.equal(rejoin.body.errcode, 'M_USER_SUSPENDED');

    // Lifted: the same token works again.
    await put(admin.accessToken, 'suspend', carol.userId, { suspended: false });
    assert.equal((await server.request('POST', `${V3}/rooms/${enc(roomId)}/join`, { token: t, body: {} })).status, 200);
  });

  it('a locked user gets M_USER_LOCKED with soft_logout everywhere but logout, and cannot log in until unlocked', async () => {
    const dave = await server.registerUser();
    const second = await server.request('POST', `${V3}/login`, {
      body: { type: 'm.login.password', identifier: { type: 'm.id.user', user: dave.userId }, password: dave.password },
    });
    assert.equal(second.status, 200);
    assert.deepEqual((await put(admin.accessToken, 'lock', dave.userId, { locked: true })).body, { locked: true });
    assert.deepEqual((await get(admin.accessToken, 'lock', dave.userId)).body, { locked: true });

    for (const [method, path] of [['GET', `${V3}/sync?timeout=0`], ['GET', `${V3}/account/whoami`], ['POST', `${V3}/createRoom`]]) {
      const res = await server.request(method, path, { token: dave.accessToken, ...(method === 'POST' ? { body: {} } : {}) });
      assert.equal(res.status, 401, path);
      assert.equal(res.body.errcode, 'M_USER_LOCKED', path);
      assert.equal(res.body.soft_logout, true, path);
    }
    const login = await server.request('POST', `${V3}/login`, {
      body: { type: 'm.login.password', identifier: { type: 'm.id.user', user: dave.userId }, password: dave.password },
    });
    assert.equal(login.status, 401);
    assert.equal(login.body.errcode, 'M_USER_LOCKED');
    // Logout still works, and that token is gone.
    assert.equal((await server.request('POST', `${V3}/logout`, { token: second.body.access_token, body: {} })).status, 200);
    assert.equal((await server.request('GET', `${V3}/account/whoami`, { token: second.body.access_token })).body.errcode, 'M_UNKNOWN_TOKEN');

    // Unlocked: the kept session works again, without logging in.
    await put(admin.accessToken, 'lock', dave.userId, { locked: false });
    const who = await server.request('GET', `${V3}/account/whoami`, { token: dave.accessToken });
    assert.equal(who.status, 200);
    assert.equal(who.body.user_id, dave.userId);
  });
});
