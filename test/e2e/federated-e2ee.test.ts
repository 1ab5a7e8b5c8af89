/**
 * An encrypted DM between users of two Hearth servers, driven by matrix-js-sdk with Rust
 * crypto: alice (a.test) queries bob's keys through her server (`/user/devices` or
 * `/user/keys/query` on b.test), claims his one-time key (`/user/keys/claim`), sends the megolm
 * room key olm-encrypted to his device (an `m.direct_to_device` EDU), and bob decrypts her
 * message; then the other way round. Bob's second device reaches alice as an
 * `m.device_list_update` EDU, and her next message is readable there too.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { MatrixClient, MatrixEvent } from 'matrix-js-sdk';
import { type ServerWatch, loginAndStart, stopClients, waitUntil, waitUntilAsync, watchServer } from '../helpers/matrix-client.js';
import type { TestServer, TestUser } from '../helpers/server.js';
import { startServers } from '../federation/federation-helpers.js';

const STEP = { timeout: 40_000 };
const MEGOLM = 'm.megolm.v1.aes-sha2';

function timelineEvent(client: MatrixClient, roomId: string, eventId: string): MatrixEvent | undefined {
  return client.getRoom(roomId)?.getLiveTimeline().getEvents().find((e) => e.getId() === eventId);
}

/**
 * The event once its client has decrypted it. The room key travels as a to-device EDU, which
 * nothing orders with the room's PDUs: it may reach the other server after the message (more
 * often when each server is two nodes), and the client then fails to decrypt at first and
 * decrypts again when the key arrives, so a failure is waited out until the deadline.
 */
async function decrypted(client: MatrixClient, roomId: string, eventId: string, who: string): Promise<MatrixEvent> {
  return waitUntil(() => {
    const e = timelineEvent(client, roomId, eventId);
    return e && !e.isBeingDecrypted() && !e.isDecryptionFailure() && e.getType() === 'm.room.message' ? e : undefined;
  }, `${who} decrypts ${eventId} (now: ${JSON.stringify(timelineEvent(client, roomId, eventId)?.getContent())})`, 30_000);
}

describe('an encrypted DM between two servers with Rust crypto', { timeout: 150_000 }, () => {
  let a: TestServer;
  let b: TestServer;
  let stop: () => Promise<void>;
  let watchA: ServerWatch;
  let watchB: ServerWatch;
  let aliceUser: TestUser;
  let bobUser: TestUser;
  let alice: MatrixClient;
  let bob: MatrixClient;
  let bob2: MatrixClient | undefined;
  let roomId: string;

  before(async () => {
    const started = await startServers(['a.test', 'b.test']);
    [a, b] = started.servers as [TestServer, TestServer];
    stop = started.stop;
    watchA = watchServer(a);
    watchB = watchServer(b);
  });

  after(async () => {
    await stopClients(alice, bob, bob2);
    await stop?.();
  });

  it('alice on a.test and bob on b.test start Rust crypto; each server serves the other’s keys', STEP, async () => {
    aliceUser = await a.registerUser('alice');
    bobUser = await b.registerUser('bob');
    alice = await loginAndStart(a, aliceUser, { crypto: true });
    bob = await loginAndStart(b, bobUser, { crypto: true });
    const bobDevice = bob.getDeviceId()!;
    const dk = await waitUntilAsync(async () => {
      const res = await a.request('POST', '/_matrix/client/v3/keys/query', { token: alice.getAccessToken()!, body: { device_keys: { [bobUser.userId]: [] } } });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.deepEqual(res.body.failures, {});
      return res.body.device_keys?.[bobUser.userId]?.[bobDevice];
    }, `bob's device ${bobDevice} in alice's /keys/query on a.test`, 20_000);
    const own = await bob.getCrypto()!.getOwnDeviceKeys();
    assert.equal(dk.keys[`ed25519:${bobDevice}`], own.ed25519, 'the key bob uploaded to b.test, as a.test returns it');
  });

  it('alice opens an encrypted DM with bob; he joins over federation', STEP, async () => {
    roomId = (
      await alice.createRoom({
        is_direct: true,
        preset: 'trusted_private_chat' as never,
        initial_state: [{ type: 'm.room.encryption', state_key: '', content: { algorithm: MEGOLM } }],
      })
    ).room_id;
    // The invite travels by the federation invite endpoint.
    await alice.invite(roomId, bobUser.userId);
    await waitUntil(() => bob.getRoom(roomId)?.getMyMembership() === 'invite', 'bob sees the invite', 20_000);
    await bob.joinRoom(roomId, { viaServers: ['a.test'] });
    await waitUntil(() => alice.getRoom(roomId)?.getMember(bobUser.userId)?.membership === 'join', 'alice sees bob joined', 20_000);
    await waitUntil(() => bob.getRoom(roomId)?.hasEncryptionStateEvent(), 'bob knows the room is encrypted', 20_000);
  });

  it('alice’s message decrypts on b.test', STEP, async () => {
    const { event_id } = await alice.sendTextMessage(roomId, 'Across the servers: swordfish');
    const ev = await decrypted(bob, roomId, event_id, 'bob');
    assert.equal(ev.getWireType(), 'm.room.encrypted');
    assert.equal(ev.getClearContent()?.body, 'Across the servers: swordfish');
    assert.equal(ev.getSender(), aliceUser.userId);
    // b.test only ever held ciphertext.
    const stored = await b.request('GET', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/event/${encodeURIComponent(event_id)}`, { token: bobUser.accessToken });
    assert.equal(stored.body.type, 'm.room.encrypted');
    assert.ok(!JSON.stringify(stored.body).includes('swordfish'));
  });

  it('bob’s answer decrypts on a.test', STEP, async () => {
    const { event_id } = await bob.sendTextMessage(roomId, 'Mackerel, surely');
    const ev = await decrypted(alice, roomId, event_id, 'alice');
    assert.equal(ev.getClearContent()?.body, 'Mackerel, surely');
    assert.equal(ev.getSender(), bobUser.userId);
  });

  it('bob’s new device reaches alice through a device list update, and reads her next message', STEP, async () => {
    bob2 = await loginAndStart(b, bobUser, { crypto: true });
    const bob2Device = bob2.getDeviceId()!;
    await waitUntilAsync(
      async () => (await alice.getCrypto()!.getUserDeviceInfo([bobUser.userId])).get(bobUser.userId)?.has(bob2Device),
      `alice's crypto knows bob's new device ${bob2Device}`,
      30_000,
    );
    await waitUntil(() => bob2!.getRoom(roomId)?.hasEncryptionStateEvent(), 'the new device knows the room is encrypted', 20_000);
    const { event_id } = await alice.sendTextMessage(roomId, 'Hello, second device');
    for (const [who, client] of [['bob2', bob2], ['bob', bob]] as const) {
      const ev = await decrypted(client, roomId, event_id, who);
      assert.equal(ev.getClearContent()?.body, 'Hello, second device');
    }
  });

  it('no request either client made was answered with a 5xx', () => {
    assert.deepEqual(watchA.serverErrors, []);
    assert.deepEqual(watchB.serverErrors, []);
  });
});
