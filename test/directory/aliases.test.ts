import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { C, createRoom, e, expectStatus, join } from '../rooms/room-helpers.js';

let server: TestServer;
let alice: TestUser;
let bob: TestUser;
let carol: TestUser;
let roomId: string;

before(async () => {
  server = await startTestServer();
  alice = await server.registerUser('al_alice');
  bob = await server.registerUser('al_bob');
  carol = await server.registerUser('al_carol');
  roomId = await createRoom(server, alice, { preset: 'public_chat' });
  expectStatus(await join(server, bob, roomId), 200);
});
after(async () => {
  await server.stop();
});

const aliasPath = (alias: string) => `${C}/directory/room/${e(alias)}`;

describe('room aliases', () => {
  test('PUT creates a mapping, GET resolves it with servers, GET /aliases lists it', async () => {
    expectStatus(await server.request('PUT', aliasPath('#al-one:localhost'), { token: bob.accessToken, body: { room_id: roomId } }), 200);
    const res = await server.request('GET', aliasPath('#al-one:localhost'));
    expectStatus(res, 200);
    assert.deepEqual(res.body, { room_id: roomId, servers: ['localhost'] });
    const list = await server.request('GET', `${C}/rooms/${e(roomId)}/aliases`, { token: alice.accessToken });
    expectStatus(list, 200);
    assert.deepEqual(list.body.aliases, ['#al-one:localhost']);
  });

  test('a taken alias is 409 M_UNKNOWN; bad aliases 400; unknown rooms 404', async () => {
    expectStatus(await server.request('PUT', aliasPath('#al-dup:localhost'), { token: alice.accessToken, body: { room_id: roomId } }), 200);
    expectStatus(await server.request('PUT', aliasPath('#al-dup:localhost'), { token: alice.accessToken, body: { room_id: roomId } }), 409, 'M_UNKNOWN');
    expectStatus(await server.request('PUT', aliasPath('#al:elsewhere.example'), { token: alice.accessToken, body: { room_id: roomId } }), 400, 'M_INVALID_PARAM');
    expectStatus(await server.request('PUT', aliasPath('no-hash'), { token: alice.accessToken, body: { room_id: roomId } }), 400, 'M_INVALID_PARAM');
    expectStatus(await server.request('PUT', aliasPath('#al-x:localhost'), { token: alice.accessToken, body: { room_id: '!nope:localhost' } }), 404, 'M_NOT_FOUND');
    expectStatus(await server.request('PUT', aliasPath('#al-x:localhost'), { token: alice.accessToken, body: {} }), 400, 'M_BAD_JSON');
    expectStatus(await server.request('GET', aliasPath('#al-missing:localhost')), 404, 'M_NOT_FOUND');
  });

  test('DELETE: the creator or a room admin may delete, others get 403', async () => {
    expectStatus(await server.request('PUT', aliasPath('#al-del:localhost'), { token: bob.accessToken, body: { room_id: roomId } }), 200);
    expectStatus(await server.request('DELETE', aliasPath('#al-del:localhost'), { token: carol.accessToken }), 403, 'M_FORBIDDEN');
    expectStatus(await server.request('DELETE', aliasPath('#al-del:localhost'), { token: bob.accessToken }), 200);
    expectStatus(await server.request('GET', aliasPath('#al-del:localhost')), 404, 'M_NOT_FOUND');
    expectStatus(await server.request('DELETE', aliasPath('#al-del:localhost'), { token: bob.accessToken }), 404, 'M_NOT_FOUND');
    // Alice (room admin) deletes an alias bob created.
    expectStatus(await server.request('PUT', aliasPath('#al-del2:localhost'), { token: bob.accessToken, body: { room_id: roomId } }), 200);
    expectStatus(await server.request('DELETE', aliasPath('#al-del2:localhost'), { token: alice.accessToken }), 200);
  });

  test('GET /aliases needs membership unless the room is world-readable', async () => {
    expectStatus(await server.request('GET', `${C}/rooms/${e(roomId)}/aliases`, { token: carol.accessToken }), 403, 'M_FORBIDDEN');
    const open = await createRoom(server, alice, { initial_state: [{ type: 'm.room.history_visibility', content: { history_visibility: 'world_readable' } }] });
    expectStatus(await server.request('GET', `${C}/rooms/${e(open)}/aliases`, { token: carol.accessToken }), 200);
  });

  test('joining through an alias', async () => {
    expectStatus(await server.request('PUT', aliasPath('#al-join:localhost'), { token: alice.accessToken, body: { room_id: roomId } }), 200);
    const res = await join(server, carol, '#al-join:localhost');
    expectStatus(res, 200);
    assert.equal(res.body.room_id, roomId);
  });
});
