/**
 * A room upgraded with matrix-js-sdk and its members following it, as Element
 * does: the tombstone arrives through /sync, the client finds the successor
 * and joins it, and the new room names the old one as its predecessor.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { MatrixClient } from 'matrix-js-sdk';
import { loginAndStart, stopClients, waitUntil } from '../helpers/matrix-client.js';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';

describe('a room upgrade followed by its members (matrix-js-sdk)', { timeout: 90_000 }, () => {
  let server: TestServer;
  let aliceUser: TestUser;
  let bobUser: TestUser;
  let alice: MatrixClient;
  let bob: MatrixClient;

  before(async () => {
    server = await startTestServer();
    aliceUser = await server.registerUser(`alice${process.pid}`);
    bobUser = await server.registerUser(`bob${process.pid}`);
    alice = await loginAndStart(server, aliceUser);
    bob = await loginAndStart(server, bobUser);
  });
  after(async () => {
    await stopClients(alice, bob);
    await server?.stop();
  });

  it('alice upgrades, bob sees the tombstone, follows it and they talk in the new room', { timeout: 45_000 }, async () => {
    const { room_id: oldId } = await alice.createRoom({ name: 'Old hall', room_version: '11', preset: 'public_chat', invite: [bobUser.userId] } as never);
    await waitUntil(() => bob.getRoom(oldId)?.getMyMembership() === 'invite', 'bob sees the invite');
    await bob.joinRoom(oldId);
    await waitUntil(() => alice.getRoom(oldId)?.getMember(bobUser.userId)?.membership === 'join', 'alice sees bob joined');

    const { replacement_room: newId } = await alice.upgradeRoom(oldId, '12');
    const tombstone = await waitUntil(() => bob.getRoom(oldId)?.currentState.getStateEvents('m.room.tombstone', ''), 'bob sees the tombstone');
    assert.equal(tombstone.getContent().replacement_room, newId);
    assert.equal(bob.getRoom(oldId)!.findPredecessor() ?? null, null);

    await bob.joinRoom(newId);
    const newRoom = await waitUntil(() => {
      const r = bob.getRoom(newId);
      return r?.getMyMembership() === 'join' ? r : undefined;
    }, 'bob is in the new room');
    assert.equal(newRoom.findPredecessor()?.roomId, oldId, 'the new room names its predecessor');
    assert.equal(newRoom.name, 'Old hall');
    const history = bob.getRoomUpgradeHistory(oldId, false);
    assert.deepEqual(history.map((r) => r.roomId), [oldId, newId], 'the client links both rooms');

    await waitUntil(() => alice.getRoom(newId)?.getMember(bobUser.userId)?.membership === 'join', 'alice sees bob follow');
    await bob.sendTextMessage(newId, 'made it');
    await waitUntil(
      () => alice.getRoom(newId)?.getLiveTimeline().getEvents().some((e) => e.getContent().body === 'made it'),
      'alice reads bob in the new room',
    );
    assert.deepEqual(
      newRoom.getJoinedMembers().map((m) => m.userId).sort(),
      [aliceUser.userId, bobUser.userId].sort(),
    );
  });
});
