import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { C, createRoom, e, expectStatus, join } from '../rooms/room-helpers.js';

let server: TestServer;
let alice: TestUser;
let users: TestUser[];
const rooms: string[] = [];

before(async () => {
  server = await startTestServer();
  alice = await server.registerUser('pr_alice');
  users = [];
  for (let i = 0; i < 4; i++) users.push(await server.registerUser(`pr_user${i}`));
  // Room i has i extra members, so the directory order is known.
  for (let i = 0; i < 5; i++) {
    const roomId = await createRoom(server, alice, {
      visibility: 'public',
      name: `Public ${i}`,
      topic: i === 2 ? 'Gardening and tomatoes' : `topic ${i}`,
      room_alias_name: `pr${i}`,
      ...(i === 4 ? { creation_content: { type: 'm.space' } } : {}),
    });
    for (let j = 0; j < i; j++) expectStatus(await join(server, users[j]!, roomId), 200);
    rooms.push(roomId);
  }
  await createRoom(server, alice, { name: 'Private' });
});
after(async () => {
  await server.stop();
});

describe('published room directory', () => {
  test('GET /publicRooms lists published rooms, largest first, with their summaries (no token needed)', async () => {
    const res = await server.request('GET', `${C}/publicRooms`);
    expectStatus(res, 200);
    assert.deepEqual(res.body.chunk.map((r: any) => r.room_id), [...rooms].reverse());
    assert.equal(res.body.total_room_count_estimate, 5);
    const r2 = res.body.chunk.find((r: any) => r.room_id === rooms[2]);
    assert.deepEqual(r2, {
      room_id: rooms[2],
      name: 'Public 2',
      topic: 'Gardening and tomatoes',
      canonical_alias: '#pr2:localhost',
      join_rule: 'public',
      world_readable: false,
      guest_can_join: false,
      num_joined_members: 3,
    });
    assert.equal(res.body.chunk.find((r: any) => r.room_id === rooms[4]).room_type, 'm.space');
  });

  test('pagination with limit and since: next_batch then prev_batch', async () => {
    const p1 = await server.request('GET', `${C}/publicRooms?limit=2`);
    assert.deepEqual(p1.body.chunk.map((r: any) => r.room_id), [rooms[4], rooms[3]]);
    assert.equal(p1.body.prev_batch, undefined);
    const p2 = await server.request('GET', `${C}/publicRooms?limit=2&since=${e(p1.body.next_batch)}`);
    assert.deepEqual(p2.body.chunk.map((r: any) => r.room_id), [rooms[2], rooms[1]]);
    const p3 = await server.request('GET', `${C}/publicRooms?limit=2&since=${e(p2.body.next_batch)}`);
    assert.deepEqual(p3.body.chunk.map((r: any) => r.room_id), [rooms[0]]);
    assert.equal(p3.body.next_batch, undefined);
    const back = await server.request('GET', `${C}/publicRooms?limit=2&since=${e(p3.body.prev_batch)}`);
    assert.deepEqual(back.body.chunk.map((r: any) => r.room_id), [rooms[2], rooms[1]]);
    expectStatus(await server.request('GET', `${C}/publicRooms?since=bogus`), 400, 'M_INVALID_PARAM');
  });

  test('POST /publicRooms filters by generic_search_term and room_types', async () => {
    const res = await server.request('POST', `${C}/publicRooms`, { token: alice.accessToken, body: { filter: { generic_search_term: 'tomato' }, include_all_networks: false } });
    expectStatus(res, 200);
    assert.deepEqual(res.body.chunk.map((r: any) => r.room_id), [rooms[2]]);
    const byAlias = await server.request('POST', `${C}/publicRooms`, { token: alice.accessToken, body: { filter: { generic_search_term: '#PR3' } } });
    assert.deepEqual(byAlias.body.chunk.map((r: any) => r.room_id), [rooms[3]]);
    const spaces = await server.request('POST', `${C}/publicRooms`, { token: alice.accessToken, body: { filter: { room_types: ['m.space'] } } });
    assert.deepEqual(spaces.body.chunk.map((r: any) => r.room_id), [rooms[4]]);
    const plain = await server.request('POST', `${C}/publicRooms`, { token: alice.accessToken, body: { filter: { room_types: [null] }, limit: 10 } });
    assert.equal(plain.body.chunk.length, 4);
    expectStatus(await server.request('POST', `${C}/publicRooms`, { body: {} }), 401, 'M_MISSING_TOKEN');
    expectStatus(await server.request('POST', `${C}/publicRooms`, { token: alice.accessToken, body: { limit: 'x' } }), 400, 'M_BAD_JSON');
  });

  test('visibility: GET and PUT /directory/list/room; only room admins may change it', async () => {
    const roomId = rooms[0]!;
    const get = await server.request('GET', `${C}/directory/list/room/${e(roomId)}`);
    assert.deepEqual(get.body, { visibility: 'public' });
    const member = users[0]!;
    expectStatus(await join(server, member, roomId), 200);
    expectStatus(await server.request('PUT', `${C}/directory/list/room/${e(roomId)}`, { token: member.accessToken, body: { visibility: 'private' } }), 403, 'M_FORBIDDEN');
    expectStatus(await server.request('PUT', `${C}/directory/list/room/${e(roomId)}`, { token: alice.accessToken, body: { visibility: 'private' } }), 200);
    assert.deepEqual((await server.request('GET', `${C}/directory/list/room/${e(roomId)}`)).body, { visibility: 'private' });
    const list = await server.request('GET', `${C}/publicRooms`);
    assert.ok(!list.body.chunk.some((r: any) => r.room_id === roomId));
    expectStatus(await server.request('PUT', `${C}/directory/list/room/${e(roomId)}`, { token: alice.accessToken, body: { visibility: 'public' } }), 200);
    expectStatus(await server.request('GET', `${C}/directory/list/room/${e('!nope:localhost')}`), 404, 'M_NOT_FOUND');
    expectStatus(await server.request('PUT', `${C}/directory/list/room/${e(roomId)}`, { token: alice.accessToken, body: { visibility: 'hidden' } }), 400, 'M_BAD_JSON');
  });

  test('another server\'s directory is asked of it; one that cannot be reached is a 502, not a 500', async () => {
    expectStatus(await server.request('GET', `${C}/publicRooms?server=elsewhere.example`), 502, 'M_UNKNOWN');
    expectStatus(await server.request('GET', `${C}/publicRooms?server=localhost`), 200);
  });
});
