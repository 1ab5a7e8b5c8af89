/**
 * End-to-end encryption with matrix-js-sdk's Rust crypto, as Element does it:
 * device and one-time keys uploaded, queried and claimed, the megolm room key
 * sent olm-encrypted over /sendToDevice and delivered in /sync, and the room
 * message decrypted on the other side. Cross-signing and key backup are not
 * set up (no bootstrapCrossSigning): plain device-to-device encryption.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { MatrixClient, MatrixEvent } from 'matrix-js-sdk';
import { type ServerWatch, loginAndStart, sdk, stopClients, waitUntil, waitUntilAsync, watchServer } from '../helpers/matrix-client.js';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';

const STEP = { timeout: 25_000 };
const MEGOLM = 'm.megolm.v1.aes-sha2';

function timelineEvent(client: MatrixClient, roomId: string, eventId: string): MatrixEvent | undefined {
  return client.getRoom(roomId)?.getLiveTimeline().getEvents().find((e) => e.getId() === eventId);
}

describe('two people talk in an encrypted room with Rust crypto', { timeout: 60_000 }, () => {
  let server: TestServer;
  let watch: ServerWatch;
  let aliceUser: TestUser;
  let bobUser: TestUser;
  let alice: MatrixClient;
  let bob: MatrixClient;
  let roomId: string;
  let bob2: MatrixClient | undefined;

  before(async () => {
    server = await startTestServer();
    watch = watchServer(server);
  });

  after(async () => {
    await stopClients(alice, bob, bob2);
    await server?.stop();
  });

  it('alice and bob start clients with Rust crypto and publish their device keys', STEP, async () => {
    aliceUser = await server.registerUser(`alice${process.pid}`);
    bobUser = await server.registerUser(`bob${process.pid}`);
    alice = await loginAndStart(server, aliceUser, { crypto: true });
    bob = await loginAndStart(server, bobUser, { crypto: true });
    assert.ok(alice.getCrypto(), 'alice has a crypto backend');

    // The server now holds bob's device keys (from /keys/upload) for anyone to query.
    const bobDevice = bob.getDeviceId()!;
    const dk = await waitUntilAsync(async () => {
      const res = await server.request('POST', '/_matrix/client/v3/keys/query', {
        token: alice.getAccessToken()!,
        body: { device_keys: { [bobUser.userId]: [] } },
      });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return res.body.device_keys?.[bobUser.userId]?.[bobDevice];
    }, `bob's device ${bobDevice} is in /keys/query`);
    assert.equal(dk.user_id, bobUser.userId);
    assert.equal(dk.device_id, bobDevice);
    assert.ok(dk.algorithms.includes(MEGOLM));
    const own = await bob.getCrypto()!.getOwnDeviceKeys();
    assert.equal(dk.keys[`ed25519:${bobDevice}`], own.ed25519, 'the server returns the ed25519 key bob uploaded');
    assert.equal(dk.keys[`curve25519:${bobDevice}`], own.curve25519, 'and his curve25519 key');
    assert.ok(dk.signatures[bobUser.userId][`ed25519:${bobDevice}`], 'the device keys are self-signed');

    // And one-time keys to claim: the SDK uploads them once it learns how many the server holds.
    const otk = await waitUntilAsync(async () => {
      const res = await server.request('POST', '/_matrix/client/v3/keys/upload', { token: bob.getAccessToken()!, body: {} });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return res.body.one_time_key_counts?.signed_curve25519 as number | undefined;
    }, 'bob uploaded one-time keys');
    assert.ok(otk > 0, 'bob uploaded signed_curve25519 one-time keys');
  });

  it('alice creates an encrypted room and bob joins it', STEP, async () => {
    roomId = (
      await alice.createRoom({
        name: 'Secrets',
        invite: [bobUser.userId],
        initial_state: [{ type: 'm.room.encryption', state_key: '', content: { algorithm: MEGOLM } }],
      })
    ).room_id;
    await waitUntil(() => bob.getRoom(roomId)?.getMyMembership() === 'invite', 'bob sees the invite');
    await bob.joinRoom(roomId);
    await waitUntil(() => alice.getRoom(roomId)?.getMember(bobUser.userId)?.membership === 'join', 'alice sees bob joined');
    const enc = alice.getRoom(roomId)!.currentState.getStateEvents('m.room.encryption', '');
    assert.equal(enc?.getContent().algorithm, MEGOLM);
    assert.equal(await alice.getCrypto()!.isEncryptionEnabledInRoom(roomId), true);
    await waitUntil(() => bob.getRoom(roomId)?.hasEncryptionStateEvent(), 'bob knows the room is encrypted');
  });

  it('alice sends an encrypted message and bob decrypts it', STEP, async () => {
    assert.ok(roomId, 'an earlier step failed to make the room');
    const { MatrixEventEvent } = await sdk();
    const decrypted: string[] = [];
    bob.on(MatrixEventEvent.Decrypted, (ev) => {
      if (!ev.isDecryptionFailure()) decrypted.push(ev.getId()!);
    });

    const { event_id } = await alice.sendTextMessage(roomId, 'The password is swordfish');

    // The server only ever saw ciphertext.
    const stored = await server.request('GET', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/event/${encodeURIComponent(event_id)}`, {
      token: bobUser.accessToken,
    });
    assert.equal(stored.status, 200, JSON.stringify(stored.body));
    assert.equal(stored.body.type, 'm.room.encrypted');
    assert.equal(stored.body.content.algorithm, MEGOLM);
    assert.equal(typeof stored.body.content.ciphertext, 'string');
    assert.ok(!JSON.stringify(stored.body).includes('swordfish'), 'no plaintext on the server');

    const ev = await waitUntil(() => {
      const e = timelineEvent(bob, roomId, event_id);
      return e && !e.isBeingDecrypted() && e.getType() === 'm.room.message' ? e : undefined;
    }, `bob decrypts ${event_id} (state: ${JSON.stringify(timelineEvent(bob, roomId, event_id)?.getContent())})`);
    assert.equal(ev.isEncrypted(), true);
    assert.equal(ev.getWireType(), 'm.room.encrypted');
    assert.equal(ev.getClearContent()?.body, 'The password is swordfish');
    assert.equal(ev.getSender(), aliceUser.userId);
    assert.ok(decrypted.includes(event_id), 'bob got MatrixEventEvent.Decrypted for it');
  });

  it('bob answers encrypted and alice decrypts it', STEP, async () => {
    assert.ok(roomId, 'an earlier step failed to make the room');
    const { event_id } = await bob.sendTextMessage(roomId, 'Swordfish? I thought it was mackerel');
    const ev = await waitUntil(() => {
      const e = timelineEvent(alice, roomId, event_id);
      return e && !e.isBeingDecrypted() && e.getType() === 'm.room.message' ? e : undefined;
    }, `alice decrypts ${event_id}`);
    assert.equal(ev.getWireType(), 'm.room.encrypted');
    assert.equal(ev.getClearContent()?.body, 'Swordfish? I thought it was mackerel');
    assert.equal(ev.getSender(), bobUser.userId);
  });

  it("bob signs in on a second device; alice learns of it through sync and her next message is readable there", STEP, async () => {
    assert.ok(roomId, 'an earlier step failed to make the room');
    bob2 = await loginAndStart(server, bobUser, { crypto: true });
    const bob2Device = bob2.getDeviceId()!;
    // device_lists.changed in alice's sync makes her crypto query bob's devices again.
    await waitUntilAsync(async () => (await alice.getCrypto()!.getUserDeviceInfo([bobUser.userId])).get(bobUser.userId)?.has(bob2Device), `alice's crypto knows bob's new device ${bob2Device}`);
    await waitUntil(() => bob2!.getRoom(roomId)?.hasEncryptionStateEvent(), 'the new device knows the room is encrypted');

    const { event_id } = await alice.sendTextMessage(roomId, 'Welcome, second device');
    for (const [who, client] of [['bob2', bob2], ['bob', bob]] as const) {
      const ev = await waitUntil(() => {
        const e = timelineEvent(client, roomId, event_id);
        return e && !e.isBeingDecrypted() && e.getType() === 'm.room.message' ? e : undefined;
      }, `${who} decrypts ${event_id}`);
      assert.equal(ev.getClearContent()?.body, 'Welcome, second device');
    }
  });

  it('no request the clients made was answered with a 5xx', () => {
    if (watch.unrecognized.size) console.log(`# e2ee: the SDK asked for endpoints Hearth does not serve: ${[...watch.unrecognized].sort().join(', ')}`);
    assert.deepEqual(watch.serverErrors, []);
  });
});
