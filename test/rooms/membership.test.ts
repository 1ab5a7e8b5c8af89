import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { C, createRoom, e, expectStatus, join, membershipAction, messages, putState, roomState, sendText, stateOf } from './room-helpers.js';

let server: TestServer;
let alice: TestUser;
let bob: TestUser;
let carol: TestUser;

before(async () => {
  server = await startTestServer();
  alice = await server.registerUser('mb_alice');
  bob = await server.registerUser('mb_bob');
  carol = await server.registerUser('mb_carol');
});
after(async () => {
  await server.stop();
});

async function membershipOf(roomId: string, viewer: TestUser, userId: string): Promise<string | undefined> {
  const state = await roomState(server, viewer, roomId);
  return stateOf(state, 'm.room.member', userId)?.content.membership;
}

describe('joining', () => {
  test('anyone may join a public room, by id or by alias; the join carries the profile', async () => {
    const roomId = await createRoom(server, alice, { preset: 'public_chat', room_alias_name: 'mbpub' });
    const res = await join(server, bob, '#mbpub:localhost');
    expectStatus(res, 200);
    assert.equal(res.body.room_id, roomId);
    const member = stateOf(await roomState(server, alice, roomId), 'm.room.member', bob.userId);
    assert.equal(member.content.membership, 'join');
    assert.equal(member.content.displayname, 'mb_bob');
    expectStatus(await membershipAction(server, carol, roomId, 'join'), 200);
    const joined = await server.request('GET', `${C}/joined_rooms`, { token: carol.accessToken });
    assert.ok(joined.body.joined_rooms.includes(roomId));
  });

  test('joining again while joined sends no new event', async () => {
    const roomId = await createRoom(server, alice, { preset: 'public_chat' });
    expectStatus(await join(server, bob, roomId), 200);
    const before = await messages(server, alice, roomId, { dir: 'b', limit: 50 });
    expectStatus(await join(server, bob, roomId), 200);
    const after = await messages(server, alice, roomId, { dir: 'b', limit: 50 });
    assert.equal(after.body.chunk.length, before.body.chunk.length);
  });

  test('an invite-only room refuses uninvited joiners with 403 M_FORBIDDEN, accepts invited ones', async () => {
    const roomId = await createRoom(server, alice);
    expectStatus(await join(server, bob, roomId), 403, 'M_FORBIDDEN');
    expectStatus(await membershipAction(server, alice, roomId, 'invite', { user_id: bob.userId }), 200);
    assert.equal(await membershipOf(roomId, alice, bob.userId), 'invite');
    // Inviting again is fine ("or was already invited").
    expectStatus(await membershipAction(server, alice, roomId, 'invite', { user_id: bob.userId }), 200);
    expectStatus(await join(server, bob, roomId), 200);
    assert.equal(await membershipOf(roomId, alice, bob.userId), 'join');
    // Inviting a joined member is refused.
    expectStatus(await membershipAction(server, alice, roomId, 'invite', { user_id: bob.userId }), 403, 'M_FORBIDDEN');
  });

  test('unknown rooms and aliases are 404 M_NOT_FOUND; malformed ids 400', async () => {
    expectStatus(await join(server, bob, '!nowhere:localhost'), 404, 'M_NOT_FOUND');
    expectStatus(await join(server, bob, '#nowhere:localhost'), 404, 'M_NOT_FOUND');
    expectStatus(await join(server, bob, '!remote:elsewhere.example'), 404, 'M_NOT_FOUND');
    expectStatus(await membershipAction(server, bob, '!nowhere:localhost', 'leave'), 404, 'M_NOT_FOUND');
    expectStatus(await membershipAction(server, bob, '!nowhere:localhost', 'invite', { user_id: carol.userId }), 404, 'M_NOT_FOUND');
    expectStatus(await join(server, bob, 'garbage'), 400, 'M_INVALID_PARAM');
  });

  test('a user without invite power cannot invite (403)', async () => {
    const roomId = await createRoom(server, alice, { preset: 'public_chat' });
    expectStatus(await join(server, bob, roomId), 200);
    // public_chat: invite needs 50.
    expectStatus(await membershipAction(server, bob, roomId, 'invite', { user_id: carol.userId }), 403, 'M_FORBIDDEN');
    // Not a member at all.
    expectStatus(await membershipAction(server, carol, roomId, 'invite', { user_id: bob.userId }), 403, 'M_FORBIDDEN');
    expectStatus(await membershipAction(server, alice, roomId, 'invite', { user_id: 'nope' }), 400, 'M_INVALID_PARAM');
    expectStatus(await membershipAction(server, alice, roomId, 'invite', { user_id: '@ghost:localhost' }), 404, 'M_NOT_FOUND');
  });
});

describe('leaving, kicking, banning', () => {
  test('leave: rejects an invite, leaves a room; leaving twice is fine; a stranger gets 403', async () => {
    const roomId = await createRoom(server, alice);
    expectStatus(await membershipAction(server, alice, roomId, 'invite', { user_id: bob.userId }), 200);
    expectStatus(await membershipAction(server, bob, roomId, 'leave', { reason: 'no thanks' }), 200);
    const member = stateOf(await roomState(server, alice, roomId), 'm.room.member', bob.userId);
    assert.equal(member.content.membership, 'leave');
    assert.equal(member.content.reason, 'no thanks');
    expectStatus(await membershipAction(server, bob, roomId, 'leave'), 200);
    expectStatus(await membershipAction(server, carol, roomId, 'leave'), 403, 'M_FORBIDDEN');
  });

  test('kick needs the kick level and a lower target; kicked users may rejoin public rooms', async () => {
    const roomId = await createRoom(server, alice, { preset: 'public_chat' });
    expectStatus(await join(server, bob, roomId), 200);
    expectStatus(await join(server, carol, roomId), 200);
    expectStatus(await membershipAction(server, bob, roomId, 'kick', { user_id: carol.userId }), 403, 'M_FORBIDDEN');
    expectStatus(await membershipAction(server, bob, roomId, 'kick', { user_id: alice.userId }), 403, 'M_FORBIDDEN');
    expectStatus(await membershipAction(server, alice, roomId, 'kick', { user_id: carol.userId, reason: 'spam' }), 200);
    const member = stateOf(await roomState(server, alice, roomId), 'm.room.member', carol.userId);
    assert.equal(member.content.membership, 'leave');
    assert.equal(member.sender, alice.userId);
    assert.equal(member.content.reason, 'spam');
    // Kicking someone who is not in the room.
    expectStatus(await membershipAction(server, alice, roomId, 'kick', { user_id: carol.userId }), 403, 'M_FORBIDDEN');
    expectStatus(await join(server, carol, roomId), 200);
  });

  test('ban keeps the user out until unbanned; only the ban level may ban or unban', async () => {
    const roomId = await createRoom(server, alice, { preset: 'public_chat' });
    expectStatus(await join(server, bob, roomId), 200);
    expectStatus(await join(server, carol, roomId), 200);
    expectStatus(await membershipAction(server, bob, roomId, 'ban', { user_id: carol.userId }), 403, 'M_FORBIDDEN');
    expectStatus(await membershipAction(server, alice, roomId, 'ban', { user_id: carol.userId, reason: 'bye' }), 200);
    assert.equal(await membershipOf(roomId, alice, carol.userId), 'ban');
    expectStatus(await join(server, carol, roomId), 403, 'M_FORBIDDEN');
    expectStatus(await membershipAction(server, alice, roomId, 'invite', { user_id: carol.userId }), 403, 'M_FORBIDDEN');
    expectStatus(await membershipAction(server, carol, roomId, 'leave'), 403, 'M_FORBIDDEN');
    expectStatus(await membershipAction(server, bob, roomId, 'unban', { user_id: carol.userId }), 403, 'M_FORBIDDEN');
    expectStatus(await membershipAction(server, alice, roomId, 'unban', { user_id: bob.userId }), 403, 'M_FORBIDDEN');
    expectStatus(await membershipAction(server, alice, roomId, 'unban', { user_id: carol.userId }), 200);
    assert.equal(await membershipOf(roomId, alice, carol.userId), 'leave');
    expectStatus(await join(server, carol, roomId), 200);
  });

  test('ban via PUT state m.room.member works like /ban', async () => {
    const roomId = await createRoom(server, alice, { preset: 'public_chat' });
    expectStatus(await join(server, bob, roomId), 200);
    expectStatus(await putState(server, alice, roomId, 'm.room.member', bob.userId, { membership: 'ban' }), 200);
    assert.equal(await membershipOf(roomId, alice, bob.userId), 'ban');
  });
});

describe('knocking', () => {
  test('knock on a knock room, then be invited and join; knocking elsewhere is 403', async () => {
    const roomId = await createRoom(server, alice, { initial_state: [{ type: 'm.room.join_rules', content: { join_rule: 'knock' } }] });
    const res = await server.request('POST', `${C}/knock/${e(roomId)}`, { token: bob.accessToken, body: { reason: 'let me in' } });
    expectStatus(res, 200);
    assert.equal(res.body.room_id, roomId);
    const knock = stateOf(await roomState(server, alice, roomId), 'm.room.member', bob.userId);
    assert.equal(knock.content.membership, 'knock');
    assert.equal(knock.content.reason, 'let me in');
    expectStatus(await join(server, bob, roomId), 403, 'M_FORBIDDEN');
    expectStatus(await membershipAction(server, alice, roomId, 'invite', { user_id: bob.userId }), 200);
    expectStatus(await join(server, bob, roomId), 200);

    const inviteOnly = await createRoom(server, alice);
    expectStatus(await server.request('POST', `${C}/knock/${e(inviteOnly)}`, { token: carol.accessToken, body: {} }), 403, 'M_FORBIDDEN');
    expectStatus(await server.request('POST', `${C}/knock/${e('!none:localhost')}`, { token: carol.accessToken, body: {} }), 404, 'M_NOT_FOUND');
  });

  test('a knock can be retracted with leave', async () => {
    const roomId = await createRoom(server, alice, { initial_state: [{ type: 'm.room.join_rules', content: { join_rule: 'knock' } }] });
    expectStatus(await server.request('POST', `${C}/knock/${e(roomId)}`, { token: carol.accessToken, body: {} }), 200);
    expectStatus(await membershipAction(server, carol, roomId, 'leave'), 200);
    assert.equal(await membershipOf(roomId, alice, carol.userId), 'leave');
  });
});

describe('restricted rooms', () => {
  test('members of an allowed room may join a restricted room; others may not', async () => {
    const space = await createRoom(server, alice, { preset: 'public_chat' });
    const roomId = await createRoom(server, alice, {
      initial_state: [{ type: 'm.room.join_rules', content: { join_rule: 'restricted', allow: [{ type: 'm.room_membership', room_id: space }] } }],
    });
    expectStatus(await join(server, bob, roomId), 403, 'M_FORBIDDEN');
    expectStatus(await join(server, bob, space), 200);
    expectStatus(await join(server, bob, roomId), 200);
    const member = stateOf(await roomState(server, alice, roomId), 'm.room.member', bob.userId);
    assert.equal(member.content.join_authorised_via_users_server, alice.userId);
  });
});

describe('forget', () => {
  test('forget needs the user to have left (400 M_UNKNOWN); a forgotten room is gone from history', async () => {
    const roomId = await createRoom(server, alice, { preset: 'public_chat' });
    expectStatus(await join(server, bob, roomId), 200);
    await sendText(server, bob, roomId, 'before forgetting');
    expectStatus(await membershipAction(server, bob, roomId, 'forget'), 400, 'M_UNKNOWN');
    expectStatus(await membershipAction(server, bob, roomId, 'leave'), 200);
    expectStatus(await messages(server, bob, roomId, { dir: 'b' }), 200);
    expectStatus(await membershipAction(server, bob, roomId, 'forget'), 200);
    expectStatus(await messages(server, bob, roomId, { dir: 'b' }), 403, 'M_FORBIDDEN');
    expectStatus(await membershipAction(server, bob, '!unknown:localhost', 'forget'), 404, 'M_NOT_FOUND');
    const memberships = await server.hs.ctx.services.rooms.getMemberships(bob.userId);
    assert.ok(!memberships.some((m) => m.roomId === roomId), 'forgotten rooms are not listed');
    // Re-joining brings it back.
    expectStatus(await join(server, bob, roomId), 200);
    const again = await server.hs.ctx.services.rooms.getMemberships(bob.userId);
    assert.equal(again.find((m) => m.roomId === roomId)?.membership, 'join');
  });
});

describe('member lists', () => {
  test('GET /members with membership / not_membership filters and `at`; joined_members with profiles', async () => {
    const roomId = await createRoom(server, alice, { preset: 'public_chat' });
    expectStatus(await join(server, bob, roomId), 200);
    const beforeCarol = await messages(server, alice, roomId, { dir: 'b', limit: 1 });
    const at = beforeCarol.body.start as string;
    expectStatus(await membershipAction(server, alice, roomId, 'invite', { user_id: carol.userId }), 200);

    const all = await server.request('GET', `${C}/rooms/${e(roomId)}/members`, { token: bob.accessToken });
    expectStatus(all, 200);
    assert.deepEqual(all.body.chunk.map((ev: any) => ev.state_key).sort(), [alice.userId, bob.userId, carol.userId].sort());
    const joined = await server.request('GET', `${C}/rooms/${e(roomId)}/members?membership=join`, { token: bob.accessToken });
    assert.deepEqual(joined.body.chunk.map((ev: any) => ev.state_key).sort(), [alice.userId, bob.userId].sort());
    const notJoined = await server.request('GET', `${C}/rooms/${e(roomId)}/members?not_membership=join`, { token: bob.accessToken });
    assert.deepEqual(notJoined.body.chunk.map((ev: any) => ev.state_key), [carol.userId]);
    const past = await server.request('GET', `${C}/rooms/${e(roomId)}/members?at=${e(at)}`, { token: bob.accessToken });
    assert.deepEqual(past.body.chunk.map((ev: any) => ev.state_key).sort(), [alice.userId, bob.userId].sort());

    const jm = await server.request('GET', `${C}/rooms/${e(roomId)}/joined_members`, { token: bob.accessToken });
    expectStatus(jm, 200);
    assert.deepEqual(jm.body.joined, { [alice.userId]: { display_name: 'mb_alice' }, [bob.userId]: { display_name: 'mb_bob' } });
    expectStatus(await server.request('GET', `${C}/rooms/${e(roomId)}/joined_members`, { token: carol.accessToken }), 403, 'M_FORBIDDEN');

    const outsider = await server.registerUser('mb_outsider');
    expectStatus(await server.request('GET', `${C}/rooms/${e(roomId)}/members`, { token: outsider.accessToken }), 403, 'M_FORBIDDEN');
  });

  test('after leaving, /members and /state show the room as it was when the user left', async () => {
    const roomId = await createRoom(server, alice, { preset: 'public_chat', name: 'Old name' });
    expectStatus(await join(server, bob, roomId), 200);
    expectStatus(await membershipAction(server, bob, roomId, 'leave'), 200);
    expectStatus(await putState(server, alice, roomId, 'm.room.name', '', { name: 'New name' }), 200);
    expectStatus(await join(server, carol, roomId), 200);
    const state = await roomState(server, bob, roomId);
    assert.equal(stateOf(state, 'm.room.name').content.name, 'Old name');
    const members = await server.request('GET', `${C}/rooms/${e(roomId)}/members`, { token: bob.accessToken });
    assert.ok(!members.body.chunk.some((ev: any) => ev.state_key === carol.userId));
  });
});
