/**
 * Guest accounts (spec: modules/guest_access): registration with kind=guest,
 * the endpoints guests may and may not call, joining only can_join rooms,
 * upgrading to a full account, and the switch that turns guests off.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';

const V3 = '/_matrix/client/v3';
const enc = encodeURIComponent;

describe('guest accounts', () => {
  let server: TestServer;
  let alice: TestUser;
  let guest: { user_id: string; access_token: string; device_id: string };
  let openRoom: string;
  let closedRoom: string;

  const req = (token: string | undefined, method: string, path: string, body?: unknown) => server.request(method, path, { token, body });

  before(async () => {
    server = await startTestServer();
    alice = await server.registerUser();
    // private_chat gives guest_access can_join; public_chat gives forbidden (createRoom presets).
    openRoom = (await req(alice.accessToken, 'POST', `${V3}/createRoom`, { preset: 'private_chat', name: 'Guests welcome' })).body.room_id;
    await req(alice.accessToken, 'PUT', `${V3}/rooms/${enc(openRoom)}/state/m.room.join_rules/`, { join_rule: 'public' });
    closedRoom = (await req(alice.accessToken, 'POST', `${V3}/createRoom`, { preset: 'public_chat', name: 'Members only' })).body.room_id;
  });
  after(async () => {
    await server.stop();
  });

  it('POST /register?kind=guest gives a password-less account with a token; body parameters other than the device name are ignored', async () => {
    const res = await req(undefined, 'POST', `${V3}/register?kind=guest`, { username: 'chosen', device_id: 'MINE', initial_device_display_name: 'Guest phone' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    guest = res.body;
    assert.match(guest.user_id, /^@[a-z0-9]+:localhost$/);
    assert.notEqual(guest.user_id, '@chosen:localhost');
    assert.notEqual(guest.device_id, 'MINE');
    assert.equal(typeof guest.access_token, 'string');
    const who = await req(guest.access_token, 'GET', `${V3}/account/whoami`);
    assert.equal(who.status, 200);
    assert.deepEqual(who.body, { user_id: guest.user_id, device_id: guest.device_id, is_guest: true });
    const mine = await req(alice.accessToken, 'GET', `${V3}/account/whoami`);
    assert.equal(mine.body.is_guest, false);
    const devices = await req(guest.access_token, 'GET', `${V3}/devices`);
    assert.equal(devices.status, 200);
    assert.equal(devices.body.devices[0].display_name, 'Guest phone');
    // No password: nobody can log in as the guest.
    const login = await req(undefined, 'POST', `${V3}/login`, { type: 'm.login.password', identifier: { type: 'm.id.user', user: guest.user_id }, password: '' });
    assert.equal(login.status, 403);
  });

  it('answers 403 M_GUEST_ACCESS_FORBIDDEN on endpoints guests may not call', async () => {
    for (const [method, path, body] of [
      ['POST', `${V3}/createRoom`, {}],
      ['GET', `${V3}/pushrules/`, undefined],
      ['POST', `${V3}/rooms/${enc(openRoom)}/invite`, { user_id: alice.userId }],
      ['GET', `${V3}/joined_rooms`, undefined],
      ['PUT', `${V3}/profile/${enc(guest.user_id)}/avatar_url`, { avatar_url: 'mxc://localhost/x' }],
      ['GET', `${V3}/events`, undefined],
    ] as const) {
      const res = await req(guest.access_token, method, path, body);
      assert.equal(res.status, 403, `${method} ${path}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.errcode, 'M_GUEST_ACCESS_FORBIDDEN', `${method} ${path}`);
    }
    // Allowed: display name, sync, key upload.
    assert.equal((await req(guest.access_token, 'PUT', `${V3}/profile/${enc(guest.user_id)}/displayname`, { displayname: 'Visitor' })).status, 200);
    assert.equal((await req(guest.access_token, 'GET', `${V3}/sync?timeout=0`)).status, 200);
    assert.equal((await req(guest.access_token, 'POST', `${V3}/keys/upload`, {})).status, 200);
  });

  it('joins only rooms whose m.room.guest_access is can_join, then sends and leaves', async () => {
    const refused = await req(guest.access_token, 'POST', `${V3}/rooms/${enc(closedRoom)}/join`, {});
    assert.equal(refused.status, 403);
    assert.equal(refused.body.errcode, 'M_GUEST_ACCESS_FORBIDDEN');
    const viaAlias = await req(guest.access_token, 'POST', `${V3}/join/${enc(closedRoom)}`, {});
    assert.equal(viaAlias.body.errcode, 'M_GUEST_ACCESS_FORBIDDEN');
    const joined = await req(guest.access_token, 'POST', `${V3}/rooms/${enc(openRoom)}/join`, {});
    assert.equal(joined.status, 200, JSON.stringify(joined.body));
    const sent = await req(guest.access_token, 'PUT', `${V3}/rooms/${enc(openRoom)}/send/m.room.message/g1`, { msgtype: 'm.text', body: 'hi from a guest' });
    assert.equal(sent.status, 200);
    const members = await req(guest.access_token, 'GET', `${V3}/rooms/${enc(openRoom)}/members`);
    assert.equal(members.status, 200);
    assert.ok(members.body.chunk.some((e: { state_key: string }) => e.state_key === guest.user_id));
    assert.equal((await req(guest.access_token, 'POST', `${V3}/rooms/${enc(openRoom)}/leave`, {})).status, 200);
  });

  it('guests still joined leave when the room stops being can_join', async () => {
    const room = (await req(alice.accessToken, 'POST', `${V3}/createRoom`, { preset: 'public_chat', initial_state: [{ type: 'm.room.guest_access', state_key: '', content: { guest_access: 'can_join' } }] })).body.room_id;
    const g = (await req(undefined, 'POST', `${V3}/register?kind=guest`, {})).body;
    assert.equal((await req(g.access_token, 'POST', `${V3}/rooms/${enc(room)}/join`, {})).status, 200);
    const bob = await server.registerUser();
    assert.equal((await req(bob.accessToken, 'POST', `${V3}/rooms/${enc(room)}/join`, {})).status, 200);
    const closed = await req(alice.accessToken, 'PUT', `${V3}/rooms/${enc(room)}/state/m.room.guest_access/`, { guest_access: 'forbidden' });
    assert.equal(closed.status, 200);
    const member = async (u: string) =>
      (await req(alice.accessToken, 'GET', `${V3}/rooms/${enc(room)}/state/m.room.member/${enc(u)}`)).body.membership;
    assert.equal(await member(g.user_id), 'leave');
    assert.equal(await member(bob.userId), 'join', 'full members stay');
    const back = await req(g.access_token, 'POST', `${V3}/rooms/${enc(room)}/join`, {});
    assert.equal(back.body.errcode, 'M_GUEST_ACCESS_FORBIDDEN');
  });

  it('upgrades a guest to a full account by registering with its guest token and localpart', async () => {
    const g = (await req(undefined, 'POST', `${V3}/register?kind=guest`, {})).body;
    const localpart = g.user_id.slice(1, g.user_id.indexOf(':'));
    const wrongName = await req(undefined, 'POST', `${V3}/register`, {
      guest_access_token: g.access_token,
      username: 'somebody-else',
      password: 'a fine passphrase',
      auth: { type: 'm.login.dummy' },
    });
    assert.equal(wrongName.status, 400);
    assert.equal(wrongName.body.errcode, 'M_INVALID_USERNAME');
    const notGuest = await req(undefined, 'POST', `${V3}/register`, { guest_access_token: alice.accessToken, username: 'x', password: 'p4ssw0rd!', auth: { type: 'm.login.dummy' } });
    assert.equal(notGuest.status, 403);
    const up = await req(undefined, 'POST', `${V3}/register`, {
      guest_access_token: g.access_token,
      username: localpart,
      password: 'a fine passphrase',
      auth: { type: 'm.login.dummy' },
    });
    assert.equal(up.status, 200, JSON.stringify(up.body));
    assert.equal(up.body.user_id, g.user_id);
    // Both the old token and the new one now belong to a full account.
    for (const token of [g.access_token, up.body.access_token]) {
      const who = await req(token, 'GET', `${V3}/account/whoami`);
      assert.equal(who.status, 200);
      assert.equal(who.body.is_guest, false);
    }
    assert.equal((await req(g.access_token, 'POST', `${V3}/createRoom`, {})).status, 200);
    const login = await req(undefined, 'POST', `${V3}/login`, { type: 'm.login.password', identifier: { type: 'm.id.user', user: localpart }, password: 'a fine passphrase' });
    assert.equal(login.status, 200, JSON.stringify(login.body));
    const again = await req(undefined, 'POST', `${V3}/register`, { guest_access_token: g.access_token, username: localpart, password: 'another one', auth: { type: 'm.login.dummy' } });
    assert.equal(again.status, 403);
  });
});

describe('guest accounts switched off', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ config: { guests: { enabled: false } } });
  });
  after(async () => {
    await server.stop();
  });

  it('answers kind=guest with 403 M_GUEST_ACCESS_FORBIDDEN', async () => {
    const res = await server.request('POST', `${V3}/register?kind=guest`, { body: {} });
    assert.equal(res.status, 403);
    assert.equal(res.body.errcode, 'M_GUEST_ACCESS_FORBIDDEN');
  });
});
