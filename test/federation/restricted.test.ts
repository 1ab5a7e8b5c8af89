// Joins to restricted rooms over federation (spec: server-server API, "Restricted rooms"; joins
// v2): the resident names a user of its own in `join_authorised_via_users_server` on make_join and
// signs the join on send_join; a resident that cannot check the conditions answers
// M_UNABLE_TO_AUTHORISE_JOIN, one whose users may not invite M_UNABLE_TO_GRANT_JOIN, and the
// joining server then tries the next server.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { TestServer, TestUser } from '../helpers/server.js';
import { C, createRoom, e, expectStatus, putState } from '../rooms/room-helpers.js';
import { eventually, F, startServers } from './federation-helpers.js';

let a: TestServer;
let b: TestServer;
let c: TestServer;
let stop: () => Promise<void>;
let alice: TestUser;
let bob: TestUser;
let carol: TestUser;
let space: string;

async function joinVia(server: TestServer, user: TestUser, room: string, via: string[]) {
  const q = via.map((v) => `via=${e(v)}`).join('&');
  return server.request('POST', `${C}/join/${e(room)}${q ? `?${q}` : ''}`, { token: user.accessToken, body: {} });
}

async function member(server: TestServer, user: TestUser, room: string, target: string): Promise<any> {
  const res = await server.request('GET', `${C}/rooms/${e(room)}/state/m.room.member/${e(target)}`, { token: user.accessToken });
  return res.status === 200 ? res.body : undefined;
}

async function restrictedRoom(server: TestServer, user: TestUser, allow: string[], version = '10'): Promise<string> {
  const room = await createRoom(server, user, { preset: 'private_chat', room_version: version });
  const res = await putState(server, user, room, 'm.room.join_rules', '', { join_rule: 'restricted', allow: allow.map((r) => ({ type: 'm.room_membership', room_id: r })) });
  expectStatus(res, 200);
  return room;
}

before(async () => {
  const started = await startServers(['a.test', 'b.test', 'c.test']);
  [a, b, c] = started.servers as [TestServer, TestServer, TestServer];
  stop = started.stop;
  alice = await a.registerUser('alice');
  bob = await b.registerUser('bob');
  carol = await c.registerUser('carol');
  // A space on a.test that bob (b.test) is in.
  space = await createRoom(a, alice, { preset: 'public_chat', creation_content: { type: 'm.space' }, name: 'Space' });
  expectStatus(await joinVia(b, bob, space, ['a.test']), 200);
});
after(async () => {
  await stop();
});

test('a user of b.test joins a restricted room on a.test through a space they are in; a.test vouches and signs', async () => {
  const room = await restrictedRoom(a, alice, [space]);
  // make_join names a.test's user, and the template passes the auth rules.
  const made = await b.hs.ctx.services.federation.client.request<any>('a.test', { method: 'GET', path: `${F}/make_join/${e(room)}/${e(bob.userId)}?ver=10` });
  assert.equal(made.event.content.join_authorised_via_users_server, alice.userId);
  expectStatus(await joinVia(b, bob, room, ['a.test']), 200);
  const onA = await member(a, alice, room, bob.userId);
  assert.equal(onA?.membership, 'join');
  assert.equal(onA?.join_authorised_via_users_server, alice.userId);
  // b.test stored the join a.test signed.
  const stored = await b.hs.ctx.services.rooms.core.events.get((await b.hs.ctx.services.rooms.core.heads.get(room))!.state.get(`m.room.member\u0000${bob.userId}`)!);
  assert.ok(stored?.pdu.signatures['a.test'], 'the join carries a.test’s signature');
  assert.ok(stored?.pdu.signatures['b.test'], 'and b.test’s');
});

test('restricted rooms work in room version 8 too', async () => {
  const dan = await b.registerUser('dan8');
  expectStatus(await joinVia(b, dan, space, ['a.test']), 200);
  // b.test is in the space already: the join reaches a.test through b.test's federation sender.
  await eventually(async () => (await member(a, alice, space, dan.userId))?.membership === 'join', 'dan in the space on a.test');
  const room = await restrictedRoom(a, alice, [space], '8');
  expectStatus(await joinVia(b, dan, room, ['a.test']), 200);
  assert.equal((await member(a, alice, room, dan.userId))?.membership, 'join');
});

test('a user in none of the allowed rooms is refused with 403', async () => {
  const eve = await b.registerUser('eve');
  const room = await restrictedRoom(a, alice, [space]);
  const res = await joinVia(b, eve, room, ['a.test']);
  expectStatus(res, 403, 'M_FORBIDDEN');
  assert.equal(await member(a, alice, room, eve.userId), undefined);
});

test('a resident that holds none of the allowed rooms answers M_UNABLE_TO_AUTHORISE_JOIN; the join goes through another server', async () => {
  // The room is on c.test, which is not in the space; alice (a.test) joins it by invite and may invite.
  const room = await restrictedRoom(c, carol, [space]);
  expectStatus(await c.request('POST', `${C}/rooms/${e(room)}/invite`, { token: carol.accessToken, body: { user_id: alice.userId } }), 200);
  expectStatus(await a.request('POST', `${C}/rooms/${e(room)}/join`, { token: alice.accessToken, body: {} }), 200);
  const client = b.hs.ctx.services.federation.client;
  await assert.rejects(
    client.request('c.test', { method: 'GET', path: `${F}/make_join/${e(room)}/${e(bob.userId)}?ver=10` }),
    (err: any) => err.status === 400 && err.errcode === 'M_UNABLE_TO_AUTHORISE_JOIN',
  );
  const only = await joinVia(b, bob, room, ['c.test']);
  expectStatus(only, 400, 'M_UNABLE_TO_AUTHORISE_JOIN');
  // c.test first, then a.test, which holds the space and vouches.
  expectStatus(await joinVia(b, bob, room, ['c.test', 'a.test']), 200);
  // The join went through a.test, which relays it to c.test.
  const onC = await eventually(async () => {
    const m = await member(c, carol, room, bob.userId);
    return m?.membership === 'join' ? m : undefined;
  }, 'bob’s join on c.test');
  assert.equal(onC?.join_authorised_via_users_server, alice.userId);
});

test('a resident whose users may not invite answers M_UNABLE_TO_GRANT_JOIN; the join goes through another server', async () => {
  // carol (c.test) is in the space as well; the room is hers, and inviting takes power 50.
  expectStatus(await joinVia(c, carol, space, ['a.test']), 200);
  const frank = await b.registerUser('frank');
  expectStatus(await joinVia(b, frank, space, ['a.test']), 200);
  // b.test is in the space already: the join reaches a.test through b.test's federation sender.
  await eventually(async () => (await member(a, alice, space, frank.userId))?.membership === 'join', 'frank in the space on a.test');
  const room = await restrictedRoom(c, carol, [space]);
  expectStatus(await putState(c, carol, room, 'm.room.power_levels', '', { users: { [carol.userId]: 100 }, invite: 50 }), 200);
  // alice joins through c.test (carol vouches); at power 0 she cannot vouch for anyone herself.
  expectStatus(await joinVia(a, alice, room, ['c.test']), 200);
  const client = b.hs.ctx.services.federation.client;
  await assert.rejects(
    client.request('a.test', { method: 'GET', path: `${F}/make_join/${e(room)}/${e(frank.userId)}?ver=10` }),
    (err: any) => err.status === 400 && err.errcode === 'M_UNABLE_TO_GRANT_JOIN',
  );
  // c.test hears of frank's join to the space from a.test (asynchronously) before it can vouch for him.
  await eventually(async () => (await member(c, carol, space, frank.userId))?.membership === 'join', 'frank in the space on c.test');
  expectStatus(await joinVia(b, frank, room, ['a.test', 'c.test']), 200);
  // The join went through c.test, which relays it to a.test.
  const onA = await eventually(async () => {
    const m = await member(a, alice, room, frank.userId);
    return m?.membership === 'join' ? m : undefined;
  }, 'frank’s join on a.test');
  assert.equal(onA?.join_authorised_via_users_server, carol.userId);
});
