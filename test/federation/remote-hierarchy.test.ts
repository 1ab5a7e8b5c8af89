// Spaces and rooms b.test is not in, seen by a user of b.test (client space_hierarchy.yaml and
// room_summary.yaml): b.test asks a.test through the federation `/hierarchy` and shows what the
// user may see (public rooms and spaces, not an invite-only room), paginated like a local tree.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { TestServer, TestUser } from '../helpers/server.js';
import { C, createRoom, e, expectStatus, putState } from '../rooms/room-helpers.js';
import { startServers } from './federation-helpers.js';

const V1 = '/_matrix/client/v1';

let a: TestServer;
let b: TestServer;
let stop: () => Promise<void>;
let alice: TestUser;
let bob: TestUser;
let space: string;
let general: string;
let secret: string;
let subspace: string;
let nested: string;

async function addChild(parent: string, child: string, order: string): Promise<void> {
  expectStatus(await putState(a, alice, parent, 'm.space.child', child, { via: ['a.test'], order }), 200);
}

async function walk(server: TestServer, user: TestUser, root: string, query = ''): Promise<any[]> {
  const rooms: any[] = [];
  let from: string | undefined;
  do {
    const res = await server.request('GET', `${V1}/rooms/${e(root)}/hierarchy?${query}${from ? `&from=${e(from)}` : ''}`, { token: user.accessToken });
    expectStatus(res, 200);
    rooms.push(...res.body.rooms);
    from = res.body.next_batch;
  } while (from);
  return rooms;
}

before(async () => {
  const started = await startServers(['a.test', 'b.test']);
  [a, b] = started.servers as [TestServer, TestServer];
  stop = started.stop;
  alice = await a.registerUser('alice');
  bob = await b.registerUser('bob');
  // Room version 10: the room IDs name a.test, where b.test asks for a space given by ID alone.
  const spaceBody = (name: string) => ({ preset: 'public_chat', name, room_version: '10', creation_content: { type: 'm.space' } });
  space = await createRoom(a, alice, spaceBody('Space'));
  subspace = await createRoom(a, alice, spaceBody('Subspace'));
  general = await createRoom(a, alice, { preset: 'public_chat', name: 'General', room_version: '10' });
  secret = await createRoom(a, alice, { preset: 'private_chat', name: 'Secret', room_version: '10' });
  nested = await createRoom(a, alice, { preset: 'public_chat', name: 'Nested', room_version: '10' });
  await addChild(space, general, 'a');
  await addChild(space, secret, 'b');
  await addChild(space, subspace, 'c');
  await addChild(subspace, nested, 'a');
});
after(async () => {
  await stop();
});

test('a space b.test is not in is walked through a.test: public rooms and the subspace shown, the invite-only room not', async () => {
  const rooms = await walk(b, bob, space);
  assert.deepEqual(rooms.map((r) => r.room_id), [space, general, subspace, nested]);
  assert.deepEqual(rooms.map((r) => r.name), ['Space', 'General', 'Subspace', 'Nested']);
  const root = rooms[0];
  assert.equal(root.room_type, 'm.space');
  assert.equal(root.join_rule, 'public');
  assert.equal(root.num_joined_members, 1);
  assert.deepEqual(root.children_state.map((c: any) => c.state_key).sort(), [general, secret, subspace].sort());
  assert.equal(rooms[1].room_version, '10');
  // On a.test, alice sees the same tree with her own invite-only room in it.
  const onA = await walk(a, alice, space);
  assert.deepEqual(onA.map((r) => r.room_id), [space, general, secret, subspace, nested]);
});

test('the remote tree pages like a local one, and max_depth holds', async () => {
  const paged = await walk(b, bob, space, 'limit=1');
  assert.deepEqual(paged.map((r) => r.room_id), [space, general, subspace, nested]);
  const shallow = await walk(b, bob, space, 'max_depth=1');
  assert.deepEqual(shallow.map((r) => r.room_id), [space, general, subspace]);
});

test('a local space with a child room held on a.test shows the child as a.test describes it', async () => {
  const own = await b.request('POST', `${C}/createRoom`, { token: bob.accessToken, body: { preset: 'public_chat', name: 'Bob space', creation_content: { type: 'm.space' } } });
  expectStatus(own, 200);
  expectStatus(await putState(b, bob, own.body.room_id, 'm.space.child', general, { via: ['a.test'] }), 200);
  expectStatus(await putState(b, bob, own.body.room_id, 'm.space.child', secret, { via: ['a.test'] }), 200);
  const rooms = await walk(b, bob, own.body.room_id);
  assert.deepEqual(rooms.map((r) => r.name), ['Bob space', 'General']);
});

test('an invite-only version 12 space bob is invited to is asked of the inviter’s server', async () => {
  const invited = await createRoom(a, alice, { preset: 'private_chat', name: 'Invited space', creation_content: { type: 'm.space' }, invite: [bob.userId] });
  await addChild(invited, general, 'a');
  let rooms: any[] = [];
  for (let i = 0; i < 100 && rooms.length === 0; i++) {
    const res = await b.request('GET', `${V1}/rooms/${e(invited)}/hierarchy`, { token: bob.accessToken });
    if (res.status === 200) rooms = res.body.rooms;
    else await new Promise((r) => setTimeout(r, 100));
  }
  assert.deepEqual(rooms.map((r) => r.name), ['Invited space', 'General']);
  assert.equal(rooms[0].join_rule, 'invite');
});

test('a space no server describes is refused, as one the user may not see is', async () => {
  const res = await b.request('GET', `${V1}/rooms/${e('!nowhere:b.test')}/hierarchy`, { token: bob.accessToken });
  expectStatus(res, 403, 'M_FORBIDDEN');
  const hidden = await b.request('GET', `${V1}/rooms/${e(secret)}/hierarchy`, { token: bob.accessToken });
  expectStatus(hidden, 403, 'M_FORBIDDEN');
});

test('the summary of a room b.test is not in is asked of the via servers', async () => {
  const res = await b.request('GET', `${V1}/room_summary/${e(general)}?via=a.test`, { token: bob.accessToken });
  expectStatus(res, 200);
  assert.equal(res.body.room_id, general);
  assert.equal(res.body.name, 'General');
  assert.equal(res.body.join_rule, 'public');
  assert.equal(res.body.membership, undefined);
  const anonymous = await b.request('GET', `${V1}/room_summary/${e(nested)}?via=a.test`);
  expectStatus(anonymous, 200);
  assert.equal(anonymous.body.name, 'Nested');
  expectStatus(await b.request('GET', `${V1}/room_summary/${e(secret)}?via=a.test`, { token: bob.accessToken }), 404, 'M_NOT_FOUND');
});

test('a version 12 space b.test is not in, whose room ID names no server, is asked of the via of its parent space bob is in', async () => {
  const v12 = (name: string) => ({ preset: 'public_chat', name, room_version: '12', creation_content: { type: 'm.space' } });
  const root = await createRoom(a, alice, v12('Hashed space'));
  const parent = await createRoom(a, alice, v12('Parent space'));
  await addChild(root, general, 'a');
  await addChild(parent, root, 'a');
  // Before bob is in any room that names it, b.test has nowhere to ask.
  expectStatus(await b.request('GET', `${V1}/rooms/${e(root)}/hierarchy`, { token: bob.accessToken }), 403, 'M_FORBIDDEN');
  expectStatus(await b.request('POST', `${C}/join/${e(parent)}?server_name=a.test`, { token: bob.accessToken, body: {} }), 200);
  const rooms = await walk(b, bob, root);
  assert.deepEqual(rooms.map((r) => r.name), ['Hashed space', 'General']);
  assert.equal(rooms[0].room_version, '12');
});
