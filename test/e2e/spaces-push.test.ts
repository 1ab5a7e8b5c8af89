/**
 * With matrix-js-sdk, as Element would: a space browsed through /hierarchy and
 * a child room joined through its restricted rule; a push gateway receiving a
 * mention for a pusher the client set.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { MatrixClient } from 'matrix-js-sdk';
import { loginAndStart, stopClients, waitUntil } from '../helpers/matrix-client.js';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';

const STEP = { timeout: 30_000 };

// The test's gateway listens on loopback, which outbound requests may reach only when allowed.
process.env.HEARTH_OUTBOUND_ALLOW = '127.0.0.1/32';

describe('spaces and push with matrix-js-sdk', { timeout: 90_000 }, () => {
  let server: TestServer;
  let gateway: Server;
  const pushed: { notification: { event_id?: string; room_id?: string; devices: { pushkey: string; tweaks?: Record<string, unknown> }[] } }[] = [];
  let gatewayUrl = '';
  let aliceUser: TestUser;
  let bobUser: TestUser;
  let alice: MatrixClient;
  let bob: MatrixClient;

  before(async () => {
    gateway = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        pushed.push(JSON.parse(body));
        res.setHeader('content-type', 'application/json');
        res.end('{"rejected":[]}');
      });
    });
    await new Promise<void>((r) => gateway.listen(0, '127.0.0.1', r));
    gatewayUrl = `http://127.0.0.1:${(gateway.address() as AddressInfo).port}/_matrix/push/v1/notify`;
    server = await startTestServer();
    aliceUser = await server.registerUser(`alice${process.pid}`);
    bobUser = await server.registerUser(`bob${process.pid}`);
    alice = await loginAndStart(server, aliceUser);
    bob = await loginAndStart(server, bobUser);
  });
  after(async () => {
    await stopClients(alice, bob);
    await server?.stop();
    await new Promise((r) => gateway.close(r));
  });

  it('bob browses a space with getRoomHierarchy and joins a child room through its restricted rule', STEP, async () => {
    const via = [server.serverName];
    const { room_id: spaceId } = await alice.createRoom({ name: 'Wonderland', preset: 'public_chat' as never, creation_content: { type: 'm.space' } });
    const { room_id: lobby } = await alice.createRoom({ name: 'Lobby', preset: 'public_chat' as never });
    const { room_id: garden } = await alice.createRoom({
      name: 'Garden',
      initial_state: [{ type: 'm.room.join_rules', state_key: '', content: { join_rule: 'restricted', allow: [{ type: 'm.room_membership', room_id: spaceId }] } }],
    });
    await alice.sendStateEvent(spaceId, 'm.space.child' as never, { via, order: 'a' } as never, lobby);
    await alice.sendStateEvent(spaceId, 'm.space.child' as never, { via, order: 'b' } as never, garden);

    const outside = await bob.getRoomHierarchy(spaceId, 10, 3);
    assert.deepEqual(outside.rooms.map((r) => r.name), ['Wonderland', 'Lobby'], 'the restricted room is hidden from non-members of the space');

    await bob.joinRoom(spaceId);
    const inside = await bob.getRoomHierarchy(spaceId, 10, 3);
    assert.deepEqual(inside.rooms.map((r) => r.name), ['Wonderland', 'Lobby', 'Garden']);
    const gardenChunk = inside.rooms.find((r) => r.room_id === garden)!;
    assert.equal(gardenChunk.join_rule, 'restricted');

    await bob.joinRoom(garden);
    await waitUntil(() => bob.getRoom(garden)?.getMyMembership() === 'join', 'bob sees himself joined to the garden');
    await waitUntil(() => alice.getRoom(garden)?.getMember(bobUser.userId)?.membership === 'join', 'alice sees bob joined to the garden');
  });

  it('a mention of bob reaches the push gateway of the pusher his client set', STEP, async () => {
    await bob.setPusher({
      kind: 'http',
      app_id: 'org.example.e2e',
      pushkey: 'bob-phone',
      app_display_name: 'E2E',
      device_display_name: 'Phone',
      lang: 'en',
      data: { url: gatewayUrl, format: 'event_id_only' },
    } as never);
    const { room_id: roomId } = await alice.createRoom({ name: 'Chat', invite: [bobUser.userId] });
    await waitUntil(() => bob.getRoom(roomId)?.getMyMembership() === 'invite', 'bob sees the invite');
    await bob.joinRoom(roomId);
    await waitUntil(() => alice.getRoom(roomId)?.getMember(bobUser.userId)?.membership === 'join', 'alice sees bob joined');
    const { event_id } = await alice.sendMessage(roomId, {
      msgtype: 'm.text',
      body: `${bobUser.userId}: look`,
      'm.mentions': { user_ids: [bobUser.userId] },
    } as never);
    const got = await waitUntil(() => pushed.find((p) => p.notification.event_id === event_id), 'the gateway receives the mention');
    assert.equal(got.notification.room_id, roomId);
    assert.equal(got.notification.devices[0].pushkey, 'bob-phone');
    assert.equal(got.notification.devices[0].tweaks?.highlight, true);
  });
});
