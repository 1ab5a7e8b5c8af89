import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { CLIENT, localpartOf, login, sha256Hex, spyCrossDomain, whoami, type CrossDomainCalls } from './helpers.js';

let server: TestServer;
let calls: CrossDomainCalls;
let alice: TestUser;

before(async () => {
  server = await startTestServer();
  calls = spyCrossDomain(server);
  alice = await server.registerUser('alice');
});
after(async () => {
  await server.stop();
});

const passwordLogin = (user: string, password: string, extra: Record<string, unknown> = {}) =>
  server.request('POST', `${CLIENT}/login`, {
    body: { type: 'm.login.password', identifier: { type: 'm.id.user', user }, password, ...extra },
  });

describe('GET /login', () => {
  it('lists m.login.password, and m.login.token for tokens made with get_token', async () => {
    const res = await server.request('GET', `${CLIENT}/login`);
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { flows: [{ type: 'm.login.password' }, { type: 'm.login.token', get_login_token: true }] });
  });
});

describe('POST /login', () => {
  it('logs in with a localpart, a full user id, upper case, and the legacy user field', async () => {
    for (const user of ['alice', '@alice:localhost', 'ALICE']) {
      const res = await passwordLogin(user, alice.password);
      assert.equal(res.status, 200, user);
      assert.equal(res.body.user_id, alice.userId);
      assert.equal(res.body.home_server, 'localhost');
      assert.equal(typeof res.body.access_token, 'string');
      assert.equal(typeof res.body.device_id, 'string');
      assert.equal(res.body.refresh_token, undefined);
    }
    const legacy = await server.request('POST', `${CLIENT}/login`, {
      body: { type: 'm.login.password', user: '@alice:localhost', password: alice.password },
    });
    assert.equal(legacy.status, 200);
    assert.equal(legacy.body.user_id, alice.userId);
  });

  it('a new device gets initial_device_display_name and is announced to e2ee', async () => {
    const before = calls.devicesChanged.length;
    const res = await passwordLogin('alice', alice.password, { initial_device_display_name: 'Laptop' });
    const dev = await server.request('GET', `${CLIENT}/devices/${res.body.device_id}`, { token: res.body.access_token });
    assert.equal(dev.status, 200);
    assert.equal(dev.body.display_name, 'Laptop');
    assert.equal(dev.body.last_seen_ip, '127.0.0.1');
    assert.equal(typeof dev.body.last_seen_ts, 'number');
    assert.deepEqual(calls.devicesChanged.slice(before), [{ userId: alice.userId, deleted: [] }]);
  });

  it('a wrong password, an unknown user and another server are all 403 M_FORBIDDEN', async () => {
    for (const [user, pw] of [['alice', 'wrong'], ['nobody', 'x'], ['@alice:elsewhere.example', alice.password]]) {
      const res = await passwordLogin(user, pw);
      assert.equal(res.status, 403, user);
      assert.equal(res.body.errcode, 'M_FORBIDDEN', user);
    }
    const thirdParty = await server.request('POST', `${CLIENT}/login`, {
      body: { type: 'm.login.password', identifier: { type: 'm.id.thirdparty', medium: 'email', address: 'a@b.c' }, password: 'x' },
    });
    assert.equal(thirdParty.status, 403);
    assert.equal(thirdParty.body.errcode, 'M_FORBIDDEN');
  });

  it('an unknown user costs the same hashing work as a wrong password (no timing oracle)', async () => {
    const time = async (user: string) => {
      const t = performance.now();
      const res = await passwordLogin(user, 'definitely-wrong');
      assert.equal(res.status, 403);
      return performance.now() - t;
    };
    await time('alice');
    let known = 0;
    let unknown = 0;
    for (let i = 0; i < 3; i++) {
      known += await time('alice');
      unknown += await time(`ghost${i}`);
    }
    // Without the dummy hash an unknown user answers in about a millisecond; scrypt takes tens.
    assert.ok(unknown > known * 0.3, `unknown ${unknown.toFixed(1)} ms vs known ${known.toFixed(1)} ms`);
  });

  it('bad requests: unknown type M_UNKNOWN, missing type M_BAD_JSON, wrong types M_BAD_JSON, no password M_MISSING_PARAM', async () => {
    const bad = await server.request('POST', `${CLIENT}/login`, { body: { type: 'm.login.magic', user: 'alice' } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.errcode, 'M_UNKNOWN');
    const noType = await server.request('POST', `${CLIENT}/login`, { body: { user: 'alice', password: 'x' } });
    assert.equal(noType.status, 400);
    assert.equal(noType.body.errcode, 'M_BAD_JSON');
    for (const body of [
      { type: 'm.login.password', user: 'alice', password: 5 },
      { type: 'm.login.password', identifier: 'alice', password: 'x' },
      { type: 'm.login.password', identifier: { type: 'm.id.user', user: 7 }, password: 'x' },
      { type: 'm.login.password', user: 'alice', password: 'x', refresh_token: 'yes' },
    ]) {
      const res = await server.request('POST', `${CLIENT}/login`, { body });
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(res.body.errcode, 'M_BAD_JSON', JSON.stringify(body));
    }
    const noPw = await server.request('POST', `${CLIENT}/login`, { body: { type: 'm.login.password', user: 'alice' } });
    assert.equal(noPw.status, 400);
    assert.equal(noPw.body.errcode, 'M_MISSING_PARAM');
    const oddId = await server.request('POST', `${CLIENT}/login`, {
      body: { type: 'm.login.password', identifier: { type: 'm.id.carrier_pigeon' }, password: 'x' },
    });
    assert.equal(oddId.status, 400);
    assert.equal(oddId.body.errcode, 'M_UNKNOWN');
  });

  it('reusing a device_id keeps the device and invalidates its previous tokens', async () => {
    const first = await passwordLogin('alice', alice.password, { device_id: 'REUSED', initial_device_display_name: 'First name' });
    assert.equal(first.body.device_id, 'REUSED');
    assert.equal((await whoami(server, first.body.access_token)).status, 200);
    const before = calls.devicesChanged.length;
    const second = await passwordLogin('alice', alice.password, { device_id: 'REUSED', initial_device_display_name: 'Ignored' });
    assert.equal(second.body.device_id, 'REUSED');
    const old = await whoami(server, first.body.access_token);
    assert.equal(old.status, 401);
    assert.equal(old.body.errcode, 'M_UNKNOWN_TOKEN');
    assert.equal((await whoami(server, second.body.access_token)).body.device_id, 'REUSED');
    const dev = await server.request('GET', `${CLIENT}/devices/REUSED`, { token: second.body.access_token });
    assert.equal(dev.body.display_name, 'First name');
    // Not a new device: no device-list change.
    assert.equal(calls.devicesChanged.length, before);
  });

  it('works on the r0 path', async () => {
    const res = await server.request('POST', '/_matrix/client/r0/login', {
      body: { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'alice' }, password: alice.password },
    });
    assert.equal(res.status, 200);
    const me = await server.request('GET', '/_matrix/client/r0/account/whoami', { token: res.body.access_token });
    assert.equal(me.body.user_id, alice.userId);
  });
});

describe('access tokens', () => {
  it('GET /account/whoami answers user_id, device_id and is_guest false', async () => {
    const res = await whoami(server, alice.accessToken);
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { user_id: alice.userId, device_id: alice.deviceId, is_guest: false });
  });

  it('no token is 401 M_MISSING_TOKEN; an unknown one 401 M_UNKNOWN_TOKEN without soft_logout', async () => {
    const none = await server.request('GET', `${CLIENT}/account/whoami`);
    assert.equal(none.status, 401);
    assert.equal(none.body.errcode, 'M_MISSING_TOKEN');
    const bad = await whoami(server, 'hat_not-a-real-token');
    assert.equal(bad.status, 401);
    assert.equal(bad.body.errcode, 'M_UNKNOWN_TOKEN');
    assert.equal(bad.body.soft_logout, undefined);
  });

  it('the token works from the access_token query parameter', async () => {
    const res = await server.request('GET', `${CLIENT}/account/whoami?access_token=${encodeURIComponent(alice.accessToken)}`);
    assert.equal(res.status, 200);
    assert.equal(res.body.user_id, alice.userId);
  });

  it('cached tokens are dropped when the bus announces an invalidation (another node revoked them)', async () => {
    const s = await login(server, alice);
    assert.equal((await whoami(server, s.accessToken)).status, 200);
    // Delete the row behind the cache's back, as another node would.
    await server.hs.ctx.db.deleteFrom('access_tokens').where('token_hash', '=', sha256Hex(s.accessToken)).execute();
    assert.equal((await whoami(server, s.accessToken)).status, 200, 'served from the cache');
    server.hs.ctx.bus.invalidate({ cache: 'access_tokens', key: sha256Hex(s.accessToken) });
    assert.equal((await whoami(server, s.accessToken)).status, 401);
  });

  it('passwords are stored as scrypt hashes with their parameters and a per-user salt', async () => {
    const same = await server.registerUser('samepw1', { password: 'shared-password' });
    const other = await server.registerUser('samepw2', { password: 'shared-password' });
    const rows = await server.hs.ctx.db
      .selectFrom('users')
      .select(['user_id', 'password_hash'])
      .where('user_id', 'in', [same.userId, other.userId])
      .execute();
    assert.equal(rows.length, 2);
    for (const r of rows) assert.match(r.password_hash!, /^scrypt\$16384\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    assert.notEqual(rows[0].password_hash, rows[1].password_hash);
  });

  it('tokens are stored only as hashes', async () => {
    const rows = await server.hs.ctx.db.selectFrom('access_tokens').select('token_hash').execute();
    assert.ok(rows.some((r) => r.token_hash === sha256Hex(alice.accessToken)));
    assert.ok(rows.every((r) => !r.token_hash.startsWith('hat_')));
  });
});

describe('refresh tokens', () => {
  it('an expired access token is 401 M_UNKNOWN_TOKEN with soft_logout: true, cached or not', async () => {
    const s = await login(server, alice, { refresh_token: true });
    assert.equal(typeof s.body.refresh_token, 'string');
    assert.equal(s.body.expires_in_ms, server.hs.ctx.config.access_token_lifetime_ms);
    assert.equal((await whoami(server, s.accessToken)).status, 200);
    const realNow = server.hs.ctx.now;
    server.hs.ctx.now = () => realNow() + s.body.expires_in_ms + 1000;
    try {
      const cached = await whoami(server, s.accessToken);
      assert.equal(cached.status, 401);
      assert.equal(cached.body.errcode, 'M_UNKNOWN_TOKEN');
      assert.equal(cached.body.soft_logout, true);
      server.hs.ctx.bus.invalidate({ cache: 'access_tokens', key: alice.userId });
      const fresh = await whoami(server, s.accessToken);
      assert.equal(fresh.status, 401);
      assert.equal(fresh.body.soft_logout, true);
      // A token without refresh support never expires.
      assert.equal((await whoami(server, alice.accessToken)).status, 200);
      // The refresh token still gets a new access token.
      const r = await server.request('POST', `${CLIENT}/refresh`, { body: { refresh_token: s.body.refresh_token } });
      assert.equal(r.status, 200);
      assert.equal((await whoami(server, r.body.access_token)).status, 200);
    } finally {
      server.hs.ctx.now = realNow;
    }
  });

  it('refreshing rotates the refresh token; the old one stays usable until the new pair is used', async () => {
    const s = await login(server, alice, { refresh_token: true });
    const r1 = await server.request('POST', `${CLIENT}/refresh`, { body: { refresh_token: s.body.refresh_token } });
    assert.equal(r1.status, 200);
    assert.equal(typeof r1.body.access_token, 'string');
    assert.equal(typeof r1.body.refresh_token, 'string');
    assert.notEqual(r1.body.refresh_token, s.body.refresh_token);
    assert.equal(r1.body.expires_in_ms, server.hs.ctx.config.access_token_lifetime_ms);

    // The client lost that answer and repeats the call: it works, and the unused pair is discarded.
    const r2 = await server.request('POST', `${CLIENT}/refresh`, { body: { refresh_token: s.body.refresh_token } });
    assert.equal(r2.status, 200);
    assert.equal((await whoami(server, r1.body.access_token)).status, 401);
    const lost = await server.request('POST', `${CLIENT}/refresh`, { body: { refresh_token: r1.body.refresh_token } });
    assert.equal(lost.status, 401);

    // Using the new access token retires the old refresh token and the old access token.
    const me = await whoami(server, r2.body.access_token);
    assert.equal(me.status, 200);
    assert.equal(me.body.device_id, s.deviceId);
    const old = await server.request('POST', `${CLIENT}/refresh`, { body: { refresh_token: s.body.refresh_token } });
    assert.equal(old.status, 401);
    assert.equal(old.body.errcode, 'M_UNKNOWN_TOKEN');
    assert.equal((await whoami(server, s.accessToken)).status, 401);

    // Using the new refresh token also retires its predecessor.
    const r3 = await server.request('POST', `${CLIENT}/refresh`, { body: { refresh_token: r2.body.refresh_token } });
    assert.equal(r3.status, 200);
    const r4 = await server.request('POST', `${CLIENT}/refresh`, { body: { refresh_token: r3.body.refresh_token } });
    assert.equal(r4.status, 200);
    assert.equal((await server.request('POST', `${CLIENT}/refresh`, { body: { refresh_token: r2.body.refresh_token } })).status, 401);
  });

  it('an unknown refresh token is 401 M_UNKNOWN_TOKEN; a missing or mistyped one M_BAD_JSON', async () => {
    const res = await server.request('POST', `${CLIENT}/refresh`, { body: { refresh_token: 'hrt_nope' } });
    assert.equal(res.status, 401);
    assert.equal(res.body.errcode, 'M_UNKNOWN_TOKEN');
    for (const body of [{}, { refresh_token: 12 }]) {
      const r = await server.request('POST', `${CLIENT}/refresh`, { body });
      assert.equal(r.status, 400);
      assert.equal(r.body.errcode, 'M_BAD_JSON');
    }
  });

  it('logging out revokes the refresh token', async () => {
    const s = await login(server, alice, { refresh_token: true });
    assert.equal((await server.request('POST', `${CLIENT}/logout`, { token: s.accessToken })).status, 200);
    const r = await server.request('POST', `${CLIENT}/refresh`, { body: { refresh_token: s.body.refresh_token } });
    assert.equal(r.status, 401);
  });
});

describe('logout', () => {
  it('POST /logout invalidates the token and deletes the device (e2ee is told)', async () => {
    const s = await login(server, alice);
    const before = calls.devicesChanged.length;
    const res = await server.request('POST', `${CLIENT}/logout`, { token: s.accessToken });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, {});
    const after = await whoami(server, s.accessToken);
    assert.equal(after.status, 401);
    assert.equal(after.body.errcode, 'M_UNKNOWN_TOKEN');
    const dev = await server.request('GET', `${CLIENT}/devices/${s.deviceId}`, { token: alice.accessToken });
    assert.equal(dev.status, 404);
    assert.deepEqual(calls.devicesChanged.slice(before), [{ userId: alice.userId, deleted: [s.deviceId] }]);
  });

  it('POST /logout/all invalidates every token of the user', async () => {
    const bob = await server.registerUser('bob');
    const second = await login(server, bob);
    const res = await server.request('POST', `${CLIENT}/logout/all`, { token: bob.accessToken });
    assert.equal(res.status, 200);
    assert.equal((await whoami(server, bob.accessToken)).status, 401);
    assert.equal((await whoami(server, second.accessToken)).status, 401);
    const again = await login(server, bob);
    const devices = await server.request('GET', `${CLIENT}/devices`, { token: again.accessToken });
    assert.deepEqual(devices.body.devices.map((d: { device_id: string }) => d.device_id), [again.deviceId]);
    // Alice is untouched.
    assert.equal((await whoami(server, alice.accessToken)).status, 200);
  });

  it('logout needs a token', async () => {
    const res = await server.request('POST', `${CLIENT}/logout`);
    assert.equal(res.status, 401);
    assert.equal(res.body.errcode, 'M_MISSING_TOKEN');
  });
});

describe('restart', () => {
  it('users, devices and tokens survive a restart', async () => {
    const carol = await server.registerUser('carol');
    const withRefresh = await login(server, carol, { refresh_token: true, initial_device_display_name: 'Tablet' });
    await server.restart();
    calls = spyCrossDomain(server, calls);
    // fetch keeps a socket to the old server; on SQLite the restart never yields to I/O, so give it
    // one turn to see that socket closed (otherwise the next request fails with "other side closed").
    await new Promise((r) => setTimeout(r, 20));
    const me = await whoami(server, carol.accessToken);
    assert.equal(me.status, 200);
    assert.deepEqual(me.body, { user_id: carol.userId, device_id: carol.deviceId, is_guest: false });
    assert.equal((await whoami(server, withRefresh.accessToken)).status, 200);
    const devices = await server.request('GET', `${CLIENT}/devices`, { token: carol.accessToken });
    const ids = devices.body.devices.map((d: { device_id: string }) => d.device_id).sort();
    assert.deepEqual(ids, [carol.deviceId, withRefresh.deviceId].sort());
    const r = await server.request('POST', `${CLIENT}/refresh`, { body: { refresh_token: withRefresh.body.refresh_token } });
    assert.equal(r.status, 200);
    const again = await server.request('POST', `${CLIENT}/login`, {
      body: { type: 'm.login.password', identifier: { type: 'm.id.user', user: localpartOf(carol) }, password: carol.password },
    });
    assert.equal(again.status, 200);
  });
});

describe('rate limiting', () => {
  let limited: TestServer;
  before(async () => {
    limited = await startTestServer({
      config: { rate_limits: { enabled: true, login: { per_second: 0.01, burst: 2 }, registration: { per_second: 1, burst: 5 }, message: { per_second: 10, burst: 50 } } },
    });
    spyCrossDomain(limited);
  });
  after(async () => {
    await limited.stop();
  });

  it("POST /login is limited by the 'login' budget: 429 M_LIMIT_EXCEEDED with retry_after_ms", async () => {
    const attempt = () =>
      limited.request('POST', `${CLIENT}/login`, { body: { type: 'm.login.password', user: 'nobody', password: 'x' } });
    assert.equal((await attempt()).status, 403);
    assert.equal((await attempt()).status, 403);
    const third = await attempt();
    assert.equal(third.status, 429);
    assert.equal(third.body.errcode, 'M_LIMIT_EXCEEDED');
    assert.equal(typeof third.body.retry_after_ms, 'number');
  });
});
