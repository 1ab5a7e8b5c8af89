import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { C, createRoom, e, expectStatus, messages, roomState, stateOf } from './room-helpers.js';

let server: TestServer;
let alice: TestUser;
let bob: TestUser;

before(async () => {
  server = await startTestServer();
  alice = await server.registerUser('cr_alice');
  bob = await server.registerUser('cr_bob');
});
after(async () => {
  await server.stop();
});

describe('POST /createRoom', () => {
  test('private_chat preset (default): invite join rule, shared history, can_join guests, invite power 0', async () => {
    const roomId = await createRoom(server, alice);
    const state = await roomState(server, alice, roomId);
    assert.equal(stateOf(state, 'm.room.join_rules').content.join_rule, 'invite');
    assert.equal(stateOf(state, 'm.room.history_visibility').content.history_visibility, 'shared');
    assert.equal(stateOf(state, 'm.room.guest_access').content.guest_access, 'can_join');
    const pl = stateOf(state, 'm.room.power_levels').content;
    assert.equal(pl.invite, 0);
    // v12 (the default version): the creator is not listed in `users` and tombstone is above state_default.
    assert.deepEqual(pl.users, {});
    assert.equal(pl.events['m.room.tombstone'], 150);
    assert.equal(pl.state_default, 50);
    const create = stateOf(state, 'm.room.create');
    assert.equal(create.content.room_version, '12');
    assert.equal(create.content.creator, undefined, 'v11+ create events carry no creator');
    assert.equal(create.sender, alice.userId);
    assert.equal(stateOf(state, 'm.room.member', alice.userId).content.membership, 'join');
    // v12: the room id is the create event's reference hash.
    assert.equal(roomId.slice(1), create.event_id.slice(1));
  });

  test('identical rooms made at the same moment by one user are different rooms (v12 ids are create-event hashes)', async () => {
    // Without care their m.room.create events would be byte-identical within a millisecond, and so would the ids.
    // The clock is held still so that "the same millisecond" is certain.
    const ctx = server.hs.ctx as { now: () => number };
    const realNow = ctx.now;
    const frozen = realNow();
    ctx.now = () => frozen;
    try {
      const ids = await Promise.all(Array.from({ length: 6 }, () => createRoom(server, alice, { preset: 'private_chat' })));
      ids.push(await createRoom(server, alice, { preset: 'private_chat' }));
      assert.equal(new Set(ids).size, ids.length);
    } finally {
      ctx.now = realNow;
    }
  });

  test('public_chat preset: public join rule, forbidden guests, invite power 50; visibility public publishes it', async () => {
    const roomId = await createRoom(server, alice, { preset: 'public_chat', visibility: 'public' });
    const state = await roomState(server, alice, roomId);
    assert.equal(stateOf(state, 'm.room.join_rules').content.join_rule, 'public');
    assert.equal(stateOf(state, 'm.room.guest_access').content.guest_access, 'forbidden');
    assert.equal(stateOf(state, 'm.room.power_levels').content.invite, 50);
    const vis = await server.request('GET', `${C}/directory/list/room/${e(roomId)}`);
    expectStatus(vis, 200);
    assert.equal(vis.body.visibility, 'public');
  });

  test('visibility public without preset means public_chat', async () => {
    const roomId = await createRoom(server, alice, { visibility: 'public' });
    const state = await roomState(server, alice, roomId);
    assert.equal(stateOf(state, 'm.room.join_rules').content.join_rule, 'public');
  });

  test('trusted_private_chat in v12: invitees become additional creators and are invited', async () => {
    const roomId = await createRoom(server, alice, { preset: 'trusted_private_chat', invite: [bob.userId], is_direct: true });
    const state = await roomState(server, alice, roomId);
    assert.deepEqual(stateOf(state, 'm.room.create').content.additional_creators, [bob.userId]);
    const invite = stateOf(state, 'm.room.member', bob.userId);
    assert.equal(invite.content.membership, 'invite');
    assert.equal(invite.content.is_direct, true);
    assert.deepEqual(stateOf(state, 'm.room.power_levels').content.users, {});
  });

  test('trusted_private_chat in v10: the creator and invitees get power level 100', async () => {
    const roomId = await createRoom(server, alice, { preset: 'trusted_private_chat', invite: [bob.userId], room_version: '10' });
    const state = await roomState(server, alice, roomId);
    const create = stateOf(state, 'm.room.create');
    assert.equal(create.content.creator, alice.userId, 'v1-v10 create events name the creator');
    assert.equal(create.content.room_version, '10');
    assert.match(roomId, /^![A-Za-z]+:localhost$/);
    assert.deepEqual(stateOf(state, 'm.room.power_levels').content.users, { [alice.userId]: 100, [bob.userId]: 100 });
    assert.equal(stateOf(state, 'm.room.power_levels').content.events['m.room.tombstone'], 100);
  });

  test('events are created in the order the spec lists', async () => {
    const roomId = await createRoom(server, alice, {
      preset: 'public_chat',
      room_alias_name: 'ordered',
      name: 'Ordered',
      topic: 'A topic',
      invite: [bob.userId],
      initial_state: [{ type: 'm.room.encryption', content: { algorithm: 'm.megolm.v1.aes-sha2' } }],
    });
    const res = await messages(server, alice, roomId, { dir: 'f', limit: 50 });
    expectStatus(res, 200);
    const order = res.body.chunk.map((ev: any) => `${ev.type}|${ev.state_key}`);
    assert.deepEqual(order, [
      'm.room.create|',
      `m.room.member|${alice.userId}`,
      'm.room.power_levels|',
      'm.room.canonical_alias|',
      'm.room.join_rules|',
      'm.room.history_visibility|',
      'm.room.guest_access|',
      'm.room.encryption|',
      'm.room.name|',
      'm.room.topic|',
      `m.room.member|${bob.userId}`,
    ]);
    const topic = res.body.chunk.find((ev: any) => ev.type === 'm.room.topic');
    assert.equal(topic.content.topic, 'A topic');
    assert.deepEqual(topic.content['m.topic'], { 'm.text': [{ body: 'A topic', mimetype: 'text/plain' }] });
    const alias = res.body.chunk.find((ev: any) => ev.type === 'm.room.canonical_alias');
    assert.equal(alias.content.alias, '#ordered:localhost');
    const resolved = await server.request('GET', `${C}/directory/room/${e('#ordered:localhost')}`, { token: bob.accessToken });
    expectStatus(resolved, 200);
    assert.equal(resolved.body.room_id, roomId);
  });

  test('initial_state overrides the preset; name overrides initial_state m.room.name', async () => {
    const roomId = await createRoom(server, alice, {
      preset: 'public_chat',
      name: 'Wins',
      initial_state: [
        { type: 'm.room.join_rules', state_key: '', content: { join_rule: 'knock' } },
        { type: 'm.room.name', content: { name: 'Loses' } },
        { type: 'org.example.custom', state_key: 'k', content: { a: 1 } },
      ],
    });
    const state = await roomState(server, alice, roomId);
    assert.equal(stateOf(state, 'm.room.join_rules').content.join_rule, 'knock');
    assert.equal(stateOf(state, 'm.room.name').content.name, 'Wins');
    assert.deepEqual(stateOf(state, 'org.example.custom', 'k').content, { a: 1 });
    const res = await messages(server, alice, roomId, { dir: 'f', limit: 50 });
    assert.equal(res.body.chunk.filter((ev: any) => ev.type === 'm.room.join_rules').length, 1);
    assert.equal(res.body.chunk.filter((ev: any) => ev.type === 'm.room.name').length, 1);
  });

  test('power_level_content_override is applied on top of the defaults', async () => {
    const roomId = await createRoom(server, alice, { power_level_content_override: { events_default: 10, users: { [bob.userId]: 20 } } });
    const pl = stateOf(await roomState(server, alice, roomId), 'm.room.power_levels').content;
    assert.equal(pl.events_default, 10);
    assert.deepEqual(pl.users, { [bob.userId]: 20 });
    assert.equal(pl.state_default, 50);
  });

  test('listing a v12 creator in the power levels is M_INVALID_ROOM_STATE', async () => {
    const res = await server.request('POST', `${C}/createRoom`, {
      token: alice.accessToken,
      body: { power_level_content_override: { users: { [alice.userId]: 100 } } },
    });
    expectStatus(res, 400, 'M_INVALID_ROOM_STATE');
  });

  test('creation_content keys reach m.room.create (room type, m.federate); creator and room_version are the server\'s', async () => {
    const roomId = await createRoom(server, alice, {
      creation_content: { type: 'm.space', 'm.federate': false, room_version: '1', creator: '@mallory:localhost' },
    });
    const create = stateOf(await roomState(server, alice, roomId), 'm.room.create').content;
    assert.equal(create.type, 'm.space');
    assert.equal(create['m.federate'], false);
    assert.equal(create.room_version, '12');
    assert.equal(create.creator, undefined);
  });

  test('every supported room version can be created; unknown versions are M_UNSUPPORTED_ROOM_VERSION', async () => {
    for (const v of ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12']) {
      const roomId = await createRoom(server, alice, { room_version: v, name: `v${v}` });
      const state = await roomState(server, alice, roomId);
      assert.equal(stateOf(state, 'm.room.create').content.room_version, v);
      assert.equal(stateOf(state, 'm.room.name').content.name, `v${v}`);
    }
    const res = await server.request('POST', `${C}/createRoom`, { token: alice.accessToken, body: { room_version: '999' } });
    expectStatus(res, 400, 'M_UNSUPPORTED_ROOM_VERSION');
  });

  test('a taken room_alias_name is M_ROOM_IN_USE and creates nothing', async () => {
    await createRoom(server, alice, { room_alias_name: 'taken' });
    const before = await server.request('GET', `${C}/joined_rooms`, { token: alice.accessToken });
    const res = await server.request('POST', `${C}/createRoom`, { token: alice.accessToken, body: { room_alias_name: 'taken' } });
    expectStatus(res, 400, 'M_ROOM_IN_USE');
    const after = await server.request('GET', `${C}/joined_rooms`, { token: alice.accessToken });
    assert.equal(after.body.joined_rooms.length, before.body.joined_rooms.length);
  });

  test('bad input: invalid invitee, bad alias name, wrong types', async () => {
    expectStatus(await server.request('POST', `${C}/createRoom`, { token: alice.accessToken, body: { invite: ['not-a-user'] } }), 400, 'M_INVALID_PARAM');
    expectStatus(await server.request('POST', `${C}/createRoom`, { token: alice.accessToken, body: { room_alias_name: 'a:b' } }), 400, 'M_INVALID_PARAM');
    expectStatus(await server.request('POST', `${C}/createRoom`, { token: alice.accessToken, body: { name: 5 } }), 400, 'M_BAD_JSON');
    expectStatus(await server.request('POST', `${C}/createRoom`, { token: alice.accessToken, body: { preset: 'nope' } }), 400, 'M_BAD_JSON');
    expectStatus(await server.request('POST', `${C}/createRoom`, { body: {} }), 401, 'M_MISSING_TOKEN');
  });
});
