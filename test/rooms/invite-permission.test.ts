// client-server modules/invite_permission.md (v1.18): a user whose m.invite_permission_config has
// `default_action: block` gets no invites: the inviting endpoints answer 403 M_INVITE_BLOCKED
// (createRoom leaves them out and succeeds), and invites already held are not served by /sync or
// sliding sync until the block is lifted. Over federation the invitee's server refuses the invite.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startServers } from '../federation/federation-helpers.js';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { SS_PATH } from '../sliding-sync/client.js';

const V3 = '/_matrix/client/v3';
const enc = encodeURIComponent;

describe('invite permission (m.invite_permission_config)', () => {
  let server: TestServer;
  let alice: TestUser;
  let bob: TestUser;
  const req = (u: TestUser, method: string, path: string, body?: unknown) => server.request(method, path, { token: u.accessToken, body });
  const setBlock = (u: TestUser, content: Record<string, unknown>) => req(u, 'PUT', `${V3}/user/${enc(u.userId)}/account_data/m.invite_permission_config`, content);
  const newRoom = async (body: Record<string, unknown> = {}) => {
    const res = await req(alice, 'POST', `${V3}/createRoom`, { preset: 'private_chat', ...body });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.room_id as string;
  };
  const membership = async (roomId: string, userId: string) => {
    const res = await req(alice, 'GET', `${V3}/rooms/${enc(roomId)}/state/m.room.member/${enc(userId)}`);
    return res.status === 200 ? (res.body.membership as string) : null;
  };
  const invitedRooms = async (u: TestUser) => {
    const res = await req(u, 'GET', `${V3}/sync?timeout=0`);
    assert.equal(res.status, 200);
    return Object.keys(res.body.rooms?.invite ?? {});
  };
  const slidingRooms = async (u: TestUser) => {
    const res = await req(u, 'POST', SS_PATH, { lists: { all: { ranges: [[0, 50]], timeline_limit: 1 } } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return Object.keys(res.body.rooms ?? {});
  };

  before(async () => {
    server = await startTestServer();
    alice = await server.registerUser();
    bob = await server.registerUser();
  });
  after(async () => {
    await server.stop();
  });

  it('refuses /invite and an invite through the state endpoint with M_INVITE_BLOCKED, and createRoom leaves the user out', async () => {
    const held = await newRoom({ invite: [bob.userId] });
    assert.deepEqual(await invitedRooms(bob), [held]);

    assert.equal((await setBlock(bob, { default_action: 'block' })).status, 200);
    const roomId = await newRoom();
    const invite = await req(alice, 'POST', `${V3}/rooms/${enc(roomId)}/invite`, { user_id: bob.userId });
    assert.equal(invite.status, 403);
    assert.equal(invite.body.errcode, 'M_INVITE_BLOCKED');
    const viaState = await req(alice, 'PUT', `${V3}/rooms/${enc(roomId)}/state/m.room.member/${enc(bob.userId)}`, { membership: 'invite' });
    assert.equal(viaState.status, 403);
    assert.equal(viaState.body.errcode, 'M_INVITE_BLOCKED');
    assert.equal(await membership(roomId, bob.userId), null, 'nothing was written');

    const carol = await server.registerUser();
    const made = await newRoom({ invite: [bob.userId, carol.userId] });
    assert.equal(await membership(made, bob.userId), null, 'the blocking user is left out');
    assert.equal(await membership(made, carol.userId), 'invite', 'the others are invited');

    // The invite held from before the block is not served while it lasts, by either sync.
    assert.deepEqual(await invitedRooms(bob), []);
    assert.ok(!(await slidingRooms(bob)).includes(held));
    // ...but other endpoints are unaffected.
    assert.equal(await membership(held, bob.userId), 'invite');
  });

  it('lets invites through again once default_action is gone, and ignores values it does not know', async () => {
    assert.equal((await setBlock(bob, {})).status, 200);
    const roomId = await newRoom();
    assert.equal((await req(alice, 'POST', `${V3}/rooms/${enc(roomId)}/invite`, { user_id: bob.userId })).status, 200);
    assert.ok((await invitedRooms(bob)).includes(roomId));
    assert.ok((await slidingRooms(bob)).includes(roomId));

    assert.equal((await setBlock(bob, { default_action: 'allow-some' })).status, 200);
    const other = await newRoom();
    assert.equal((await req(alice, 'POST', `${V3}/rooms/${enc(other)}/invite`, { user_id: bob.userId })).status, 200);
  });
});

describe('invite permission over federation', () => {
  let stop: () => Promise<void>;
  let a: TestServer;
  let b: TestServer;

  before(async () => {
    const started = await startServers(['a.test', 'b.test']);
    [a, b] = started.servers as [TestServer, TestServer];
    stop = started.stop;
  });
  after(async () => {
    await stop();
  });

  it("the invitee's server refuses the invite with M_INVITE_BLOCKED, and the inviter's client is told so", async () => {
    const alice = await a.registerUser();
    const bob = await b.registerUser();
    const put = await b.request('PUT', `${V3}/user/${enc(bob.userId)}/account_data/m.invite_permission_config`, {
      token: bob.accessToken,
      body: { default_action: 'block' },
    });
    assert.equal(put.status, 200);
    const created = await a.request('POST', `${V3}/createRoom`, { token: alice.accessToken, body: { preset: 'private_chat' } });
    assert.equal(created.status, 200);
    const roomId = created.body.room_id as string;
    const invite = await a.request('POST', `${V3}/rooms/${enc(roomId)}/invite`, { token: alice.accessToken, body: { user_id: bob.userId } });
    assert.equal(invite.status, 403, JSON.stringify(invite.body));
    assert.equal(invite.body.errcode, 'M_INVITE_BLOCKED');
    const member = await a.request('GET', `${V3}/rooms/${enc(roomId)}/state/m.room.member/${enc(bob.userId)}`, { token: alice.accessToken });
    assert.equal(member.status, 404, 'no invite was stored on the inviting server');
  });
});
