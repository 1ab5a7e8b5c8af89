// createRoom with `invite` naming users of other servers (create_room.yaml, `invite`): each is
// invited through their server (invite v2), so the invite reaches them and they can join; a
// server that cannot be reached does not stop the room being made.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { TestServer, TestUser } from '../helpers/server.js';
import { C, createRoom, e, expectStatus, roomState, stateOf } from '../rooms/room-helpers.js';
import { eventually, REFUSED_URL, startPair, type Pair } from './federation-helpers.js';

let pair: Pair;
let a: TestServer;
let b: TestServer;
let alice: TestUser;
let bob: TestUser;

before(async () => {
  // c.test's address is a port nothing listens on.
  pair = await startPair({ 'c.test': REFUSED_URL });
  ({ a, b } = pair);
  alice = await a.registerUser('alice');
  bob = await b.registerUser('bob');
});
after(async () => {
  await pair.stop();
});

test('a direct chat made on a.test inviting bob of b.test reaches bob, who joins', async () => {
  const roomId = await createRoom(a, alice, { preset: 'trusted_private_chat', is_direct: true, invite: [bob.userId], name: 'Just us' });
  const invite = await eventually(async () => {
    const res = await b.request('GET', `${C}/sync?timeout=0`, { token: bob.accessToken });
    expectStatus(res, 200);
    return res.body.rooms?.invite?.[roomId];
  }, 'the invite in bob’s sync on b.test');
  const events = invite.invite_state.events as any[];
  const own = events.find((ev) => ev.type === 'm.room.member' && ev.state_key === bob.userId);
  assert.equal(own?.content.membership, 'invite');
  assert.equal(own?.content.is_direct, true);
  assert.equal(own?.sender, alice.userId);
  assert.equal(events.find((ev) => ev.type === 'm.room.name')?.content.name, 'Just us');

  expectStatus(await b.request('POST', `${C}/join/${e(roomId)}?via=a.test`, { token: bob.accessToken, body: {} }), 200);
  await eventually(async () => stateOf(await roomState(a, alice, roomId), 'm.room.member', bob.userId)?.content.membership === 'join', 'bob joined, on a.test');
});

test('an invitee whose server cannot be reached is left out; the room and the other invites are made', async () => {
  const res = await a.request('POST', `${C}/createRoom`, { token: alice.accessToken, body: { preset: 'private_chat', invite: ['@carol:c.test', bob.userId] } });
  expectStatus(res, 200);
  const state = await roomState(a, alice, res.body.room_id);
  assert.equal(stateOf(state, 'm.room.member', bob.userId)?.content.membership, 'invite');
  assert.equal(stateOf(state, 'm.room.member', '@carol:c.test'), undefined);
});
