import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';

const V3 = '/_matrix/client/v3';

// room_upgrades.yaml; client-server modules/room_upgrades.md "Server behaviour".
describe('POST /rooms/{roomId}/upgrade', () => {
  let server: TestServer;
  let alice: TestUser;
  let bob: TestUser;
  let carol: TestUser;
  let dave: TestUser;

  const req = (u: TestUser, method: string, path: string, body?: unknown) => server.request(method, path, { token: u.accessToken, body });
  const room = (id: string) => `${V3}/rooms/${encodeURIComponent(id)}`;
  const state = async (u: TestUser, roomId: string, type: string, key = '') => {
    const res = await req(u, 'GET', `${room(roomId)}/state/${type}/${encodeURIComponent(key)}`);
    return res.status === 200 ? res.body : undefined;
  };
  const putState = async (roomId: string, type: string, content: unknown, key = '') => {
    const res = await req(alice, 'PUT', `${room(roomId)}/state/${type}/${encodeURIComponent(key)}`, content);
    assert.equal(res.status, 200, `${type}: ${JSON.stringify(res.body)}`);
  };

  before(async () => {
    server = await startTestServer();
    alice = await server.registerUser();
    bob = await server.registerUser();
    carol = await server.registerUser();
    dave = await server.registerUser();
  });
  after(async () => {
    await server.stop();
  });

  /** A room of `version` with every transferable state event, bob at 50, carol banned, dave invited, an alias. */
  async function furnishedRoom(version: string, aliasName: string): Promise<string> {
    const created = await req(alice, 'POST', `${V3}/createRoom`, { room_version: version, preset: 'public_chat', name: 'Old name', topic: 'Old topic' });
    assert.equal(created.status, 200, JSON.stringify(created.body));
    const roomId = created.body.room_id as string;
    assert.equal((await req(bob, 'POST', `${room(roomId)}/join`, {})).status, 200);
    const pl = await state(alice, roomId, 'm.room.power_levels');
    await putState(roomId, 'm.room.power_levels', { ...pl, users: { ...pl.users, [bob.userId]: 50 } });
    await putState(roomId, 'm.room.avatar', { url: 'mxc://example.org/avatar' });
    await putState(roomId, 'm.room.encryption', { algorithm: 'm.megolm.v1.aes-sha2' });
    await putState(roomId, 'm.room.history_visibility', { history_visibility: 'joined' });
    await putState(roomId, 'm.room.guest_access', { guest_access: 'can_join' });
    await putState(roomId, 'm.room.server_acl', { allow: ['*'], deny: ['evil.example'], allow_ip_literals: false });
    assert.equal((await req(alice, 'POST', `${room(roomId)}/ban`, { user_id: carol.userId, reason: 'spam' })).status, 200);
    assert.equal((await req(alice, 'POST', `${room(roomId)}/invite`, { user_id: dave.userId })).status, 200);
    const alias = `#${aliasName}:${server.serverName}`;
    assert.equal((await req(alice, 'PUT', `${V3}/directory/room/${encodeURIComponent(alias)}`, { room_id: roomId })).status, 200);
    await putState(roomId, 'm.room.canonical_alias', { alias });
    assert.equal((await req(alice, 'PUT', `${V3}/directory/list/room/${encodeURIComponent(roomId)}`, { visibility: 'public' })).status, 200);
    return roomId;
  }

  for (const [from, to] of [['11', '12'], ['12', '11']]) {
    it(`upgrades a v${from} room to v${to}: tombstone, predecessor, copied state, levels, bans, invites, aliases`, async () => {
      const oldId = await furnishedRoom(from, `up${from}to${to}`);
      const alias = `#up${from}to${to}:${server.serverName}`;
      const res = await req(alice, 'POST', `${room(oldId)}/upgrade`, { new_version: to });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const newId = res.body.replacement_room as string;
      assert.ok(newId && newId !== oldId);

      const tombstone = await state(alice, oldId, 'm.room.tombstone');
      assert.equal(tombstone.replacement_room, newId);
      const create = await state(alice, newId, 'm.room.create');
      assert.equal(create.room_version, to);
      assert.equal(create.predecessor.room_id, oldId);
      if (to === '11') assert.equal(typeof create.predecessor.event_id, 'string', 'before v12 the predecessor names an event');

      assert.equal((await state(alice, newId, 'm.room.name')).name, 'Old name');
      assert.equal((await state(alice, newId, 'm.room.topic')).topic, 'Old topic');
      assert.equal((await state(alice, newId, 'm.room.avatar')).url, 'mxc://example.org/avatar');
      assert.equal((await state(alice, newId, 'm.room.encryption')).algorithm, 'm.megolm.v1.aes-sha2');
      assert.equal((await state(alice, newId, 'm.room.history_visibility')).history_visibility, 'joined');
      assert.equal((await state(alice, newId, 'm.room.guest_access')).guest_access, 'can_join');
      assert.equal((await state(alice, newId, 'm.room.join_rules')).join_rule, 'public');
      assert.deepEqual((await state(alice, newId, 'm.room.server_acl')).deny, ['evil.example']);

      const pl = await state(alice, newId, 'm.room.power_levels');
      assert.equal(pl.users[bob.userId], 50, "users' levels are copied");
      if (to === '12') assert.equal(pl.users[alice.userId], undefined, 'v12 creators are never listed');
      else assert.equal(pl.users[alice.userId], 100, 'a former v12 creator keeps the power to run the room');

      assert.equal((await state(alice, newId, 'm.room.member', carol.userId)).membership, 'ban');
      assert.equal((await state(alice, newId, 'm.room.member', dave.userId)).membership, 'invite');
      assert.equal((await state(alice, newId, 'm.room.member', alice.userId)).membership, 'join');
      assert.equal(await state(alice, newId, 'm.room.member', bob.userId), undefined, 'members are not moved; they follow');

      const resolved = await req(alice, 'GET', `${V3}/directory/room/${encodeURIComponent(alias)}`);
      assert.equal(resolved.body.room_id, newId, 'the local alias moved');
      assert.equal((await state(alice, newId, 'm.room.canonical_alias')).alias, alias);
      assert.equal((await state(alice, oldId, 'm.room.canonical_alias')).alias, undefined, 'the old room no longer claims the alias');
      assert.equal((await req(alice, 'GET', `${V3}/directory/list/room/${encodeURIComponent(newId)}`)).body.visibility, 'public');
      assert.equal((await req(alice, 'GET', `${V3}/directory/list/room/${encodeURIComponent(oldId)}`)).body.visibility, 'private');

      const oldPl = await state(alice, oldId, 'm.room.power_levels');
      assert.ok(oldPl.events_default >= 50 && oldPl.invite >= 50, 'the old room goes quiet');
      const members = await req(bob, 'PUT', `${room(oldId)}/send/m.room.message/late-${from}`, { msgtype: 'm.text', body: 'still here?' });
      assert.equal(members.status, 200, 'bob at 50 may still speak in the old room');

      // Bob follows the tombstone.
      assert.equal((await req(bob, 'POST', `${room(newId)}/join`, {})).status, 200);
      const banned = await req(carol, 'POST', `${room(newId)}/join`, {});
      assert.equal(banned.status, 403, 'a ban carries over');
    });
  }

  it('keeps the type of a space', async () => {
    const space = (await req(alice, 'POST', `${V3}/createRoom`, { creation_content: { type: 'm.space' } })).body.room_id as string;
    const res = await req(alice, 'POST', `${room(space)}/upgrade`, { new_version: '11' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal((await state(alice, res.body.replacement_room, 'm.room.create')).type, 'm.space');
  });

  it('answers 400 M_UNSUPPORTED_ROOM_VERSION, 403 without the power, 404 M_NOT_FOUND for an unknown room', async () => {
    const roomId = (await req(alice, 'POST', `${V3}/createRoom`, { preset: 'public_chat' })).body.room_id as string;
    assert.equal((await req(bob, 'POST', `${room(roomId)}/join`, {})).status, 200);
    const bad = await req(alice, 'POST', `${room(roomId)}/upgrade`, { new_version: '999' });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.errcode, 'M_UNSUPPORTED_ROOM_VERSION');
    const weak = await req(bob, 'POST', `${room(roomId)}/upgrade`, { new_version: '11' });
    assert.equal(weak.status, 403);
    assert.equal(weak.body.errcode, 'M_FORBIDDEN');
    const outsider = await req(carol, 'POST', `${room(roomId)}/upgrade`, { new_version: '11' });
    assert.equal(outsider.status, 403);
    const unknown = await req(alice, 'POST', `${room(`!missing:${server.serverName}`)}/upgrade`, { new_version: '11' });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.errcode, 'M_NOT_FOUND');
    const noVersion = await req(alice, 'POST', `${room(roomId)}/upgrade`, {});
    assert.equal(noVersion.status, 400);
    assert.equal(await state(alice, roomId, 'm.room.tombstone'), undefined, 'a refused upgrade changes nothing');
  });
});
