// Invites whose `invite_room_state` is stripped and unsigned (what servers sent before spec v1.16,
// Synapse among them): in room versions 1-11 the invite is held out of band, its stripped state
// shown to the user as hints (invites-v2.yaml: the validation MAY be applied to those versions);
// in later versions it is refused with M_INVALID_PARAM.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { SigningKey } from '../../src/core/signing.js';
import { FakeRemote, roomHead } from '../helpers/remote-server.js';
import type { TestServer, TestUser } from '../helpers/server.js';
import { C, createRoom, e, expectStatus, sendText } from '../rooms/room-helpers.js';
import { eventually, startServers } from './federation-helpers.js';

let a: TestServer;
let b: TestServer;
let stop: () => Promise<void>;
let alice: TestUser;
let asA: FakeRemote;

function signedAs(name: string, key: SigningKey): FakeRemote {
  const r = new FakeRemote(name);
  (r as { key: SigningKey }).key = key;
  return r;
}

/** An invite of `target` built and signed as a.test on top of a.test's real room, sent with stripped state. */
async function inviteWithStrippedState(room: string, version: string, target: string, stripped: unknown[]) {
  const h = await roomHead(a, room);
  const invite = asA.event(room, version, {
    sender: alice.userId, type: 'm.room.member', stateKey: target, content: { membership: 'invite' },
    prev: h.extremities, authFrom: h.state, depth: h.depth + 1,
  });
  const client = a.hs.ctx.services.federation.client;
  const answer = await client.request<{ event: any }>('b.test', {
    method: 'PUT',
    path: `/_matrix/federation/v2/invite/${e(room)}/${e(invite.eventId)}`,
    body: { room_version: version, event: invite.pdu, invite_room_state: stripped },
  });
  return { invite, answer };
}

const strippedOf = (name: string) => [
  { type: 'm.room.create', state_key: '', sender: alice.userId, content: { room_version: '10', creator: alice.userId } },
  { type: 'm.room.join_rules', state_key: '', sender: alice.userId, content: { join_rule: 'public' } },
  { type: 'm.room.name', state_key: '', sender: alice.userId, content: { name } },
  { type: 'm.room.member', state_key: alice.userId, sender: alice.userId, content: { membership: 'join', displayname: 'Alice' } },
];

before(async () => {
  const started = await startServers(['a.test', 'b.test']);
  [a, b] = started.servers as [TestServer, TestServer];
  stop = started.stop;
  alice = await a.registerUser('alice');
  asA = signedAs('a.test', a.hs.ctx.signingKey);
});
after(async () => {
  await stop();
});

test('an invite with stripped, unsigned invite_room_state is signed, held, and shown with its hints', async () => {
  const bob = await b.registerUser('bob');
  const room = await createRoom(a, alice, { preset: 'public_chat', room_version: '10' });
  const { invite, answer } = await inviteWithStrippedState(room, '10', bob.userId, strippedOf('Stripped room'));
  assert.ok(answer.event.signatures['b.test'], 'signed by the invitee’s server');
  assert.equal(answer.event.unsigned, undefined, 'hints kept here are not sent back');
  const sync = await b.request('GET', `${C}/sync`, { token: bob.accessToken });
  expectStatus(sync, 200);
  const events = sync.body.rooms?.invite?.[room]?.invite_state?.events as any[] | undefined;
  assert.ok(events, JSON.stringify(sync.body.rooms));
  assert.equal(events.find((ev) => ev.type === 'm.room.name')?.content.name, 'Stripped room');
  assert.equal(events.find((ev) => ev.type === 'm.room.member' && ev.state_key === bob.userId)?.sender, alice.userId);
  // The invite is not a place to build on: b.test is not in the room until it joins through a.test.
  const head = await b.hs.ctx.services.rooms.core.heads.get(room);
  assert.deepEqual(head?.extremities, []);
  assert.equal(head?.members.get(bob.userId)?.membership, 'invite');
  assert.ok(invite.eventId);

  // Joining goes through a.test (the public room lets bob in) and gives b.test the room's graph.
  expectStatus(await b.request('POST', `${C}/rooms/${e(room)}/join`, { token: bob.accessToken, body: {} }), 200);
  await sendText(a, alice, room, 'after the join');
  await eventually(async () => {
    const res = await b.request('GET', `${C}/rooms/${e(room)}/messages?dir=b&limit=20`, { token: bob.accessToken });
    return res.status === 200 && res.body.chunk.some((ev: any) => ev.content?.body === 'after the join');
  }, 'a.test message on b.test');
});

test('rejecting an out-of-band invite whose room the inviter does not know leaves it here alone', async () => {
  const carol = await b.registerUser('carol');
  const room = await createRoom(a, alice, { preset: 'public_chat', room_version: '10' });
  await inviteWithStrippedState(room, '10', carol.userId, strippedOf('To reject'));
  expectStatus(await b.request('POST', `${C}/rooms/${e(room)}/leave`, { token: carol.accessToken, body: {} }), 200);
  const sync = await b.request('GET', `${C}/sync`, { token: carol.accessToken });
  expectStatus(sync, 200);
  assert.equal(sync.body.rooms?.invite?.[room], undefined, 'no longer invited');
});

test('in room version 12 stripped invite_room_state is refused with M_INVALID_PARAM', async () => {
  const dave = await b.registerUser('dave');
  const room = await createRoom(a, alice, { preset: 'public_chat', room_version: '12' });
  await assert.rejects(inviteWithStrippedState(room, '12', dave.userId, strippedOf('v12')), (err: any) => err.status === 400 && err.errcode === 'M_INVALID_PARAM');
  const sync = await b.request('GET', `${C}/sync`, { token: dave.accessToken });
  assert.equal(sync.body.rooms?.invite?.[room], undefined);
});
