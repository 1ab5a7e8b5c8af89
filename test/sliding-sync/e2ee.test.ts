/**
 * An encrypted DM between a matrix-js-sdk client (Rust crypto, /sync) and a
 * sliding-sync client whose crypto is the Rust SDK's OlmMachine, driven
 * only by the `e2ee` and `to_device` extensions (MSC3884, MSC3885), the way
 * Element X does it: the room key arrives as an olm to-device message and
 * the message is decrypted; key counts and device lists move as they should.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { MatrixClient } from 'matrix-js-sdk';
import { loginAndStart, sdk, sdkLogin, stopClients, waitUntil } from '../helpers/matrix-client.js';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { SlidingClient } from './client.js';

const C = '/_matrix/client/v3';
const MEGOLM = 'm.megolm.v1.aes-sha2';

type Wasm = typeof import('@matrix-org/matrix-sdk-crypto-wasm');

describe('an encrypted DM through the e2ee and to_device extensions', { timeout: 90_000 }, () => {
  let s: TestServer;
  let aliceUser: TestUser;
  let bobUser: TestUser;
  let alice: MatrixClient;
  let w: Wasm;
  let machine: InstanceType<Wasm['OlmMachine']>;
  let bob: SlidingClient;
  let roomId: string;
  let toDeviceSince: string | undefined;
  let body: (rooms?: string[]) => Record<string, unknown>;

  /** Sends what the OlmMachine asks for and tells it the answers. */
  async function flush(token: string): Promise<void> {
    for (const req of (await machine.outgoingRequests()) as any[]) {
      let res;
      switch (req.type) {
        case w.RequestType.KeysUpload:
          res = await s.request('POST', `${C}/keys/upload`, { token, body: JSON.parse(req.body) });
          break;
        case w.RequestType.KeysQuery:
          res = await s.request('POST', `${C}/keys/query`, { token, body: JSON.parse(req.body) });
          break;
        case w.RequestType.KeysClaim:
          res = await s.request('POST', `${C}/keys/claim`, { token, body: JSON.parse(req.body) });
          break;
        case w.RequestType.ToDevice:
          res = await s.request('PUT', `${C}/sendToDevice/${encodeURIComponent(req.event_type)}/${encodeURIComponent(req.txn_id)}`, { token, body: JSON.parse(req.body) });
          break;
        default:
          continue;
      }
      assert.equal(res.status, 200, JSON.stringify(res.body));
      await machine.markRequestAsSent(req.id, req.type, JSON.stringify(res.body));
    }
  }

  /** One sliding-sync round: the extensions' answers go to the OlmMachine. */
  async function round(timeout = 0, rooms: string[] = []): Promise<any> {
    const res = await bob.sync(body(rooms), timeout);
    const e2ee = res.extensions.e2ee;
    const td = res.extensions.to_device;
    toDeviceSince = td.next_batch;
    const ids = (l: string[] | undefined) => (l ?? []).map((u) => new w.UserId(u));
    await machine.receiveSyncChanges(
      JSON.stringify(td.events),
      new w.DeviceLists(ids(e2ee.device_lists?.changed), ids(e2ee.device_lists?.left)),
      new Map(Object.entries(e2ee.device_one_time_keys_count)),
      new Set(e2ee.device_unused_fallback_key_types ?? []),
    );
    await flush(bobUser.accessToken);
    return res;
  }

  before(async () => {
    s = await startTestServer();
    aliceUser = await s.registerUser(`ssalice${process.pid}`);
    bobUser = await s.registerUser(`ssbob${process.pid}`);
    await sdk();
    w = (await import('@matrix-org/matrix-sdk-crypto-wasm')) as Wasm;
    await w.initAsync();
    const creds = await sdkLogin(s.url, bobUser);
    bobUser = { ...bobUser, accessToken: creds.accessToken, deviceId: creds.deviceId };
    machine = await w.OlmMachine.initialize(new w.UserId(bobUser.userId), new w.DeviceId(bobUser.deviceId));
    bob = new SlidingClient(s, bobUser, 'e2ee');
    body = (rooms = []) => ({
      lists: { all: { ranges: [[0, 9]], timeline_limit: 5, required_state: [['m.room.encryption', ''], ['m.room.member', '$LAZY']] } },
      room_subscriptions: Object.fromEntries(rooms.map((r) => [r, { timeline_limit: 5, required_state: [['*', '*']] }])),
      extensions: { e2ee: { enabled: true }, to_device: { enabled: true, ...(toDeviceSince ? { since: toDeviceSince } : {}) } },
    });
    alice = await loginAndStart(s, aliceUser, { crypto: true });
  });
  after(async () => {
    await stopClients(alice);
    machine?.close();
    await s?.stop();
  });

  it('the e2ee extension reports one-time key counts and fallback keys the OlmMachine uploads', async () => {
    const first = await round();
    assert.equal(first.extensions.e2ee.device_one_time_keys_count.signed_curve25519, 0, 'nothing uploaded yet');
    assert.deepEqual(first.extensions.to_device.events, []);
    // The machine uploaded its device keys, one-time keys and a fallback key in flush().
    const next = await round();
    assert.ok(next.extensions.e2ee.device_one_time_keys_count.signed_curve25519 > 0);
    assert.deepEqual(next.extensions.e2ee.device_unused_fallback_key_types, ['signed_curve25519']);
  });

  it("alice's encrypted DM is decrypted with the key that came through to_device", async () => {
    const before = (await round()).extensions.e2ee.device_one_time_keys_count.signed_curve25519 as number;
    roomId = (
      await alice.createRoom({
        is_direct: true,
        invite: [bobUser.userId],
        initial_state: [{ type: 'm.room.encryption', state_key: '', content: { algorithm: MEGOLM } }],
      })
    ).room_id;
    const invited = await round(10_000);
    assert.equal(invited.rooms[roomId]?.membership, 'invite');
    const join = await s.request('POST', `${C}/rooms/${encodeURIComponent(roomId)}/join`, { token: bobUser.accessToken, body: {} });
    assert.equal(join.status, 200);
    const joined = await round(10_000, [roomId]);
    assert.equal(joined.rooms[roomId].membership, 'join');
    assert.ok(joined.extensions.e2ee.device_lists.changed.includes(aliceUser.userId), 'a new room-mate: her devices are news');
    await machine.updateTrackedUsers([new w.UserId(aliceUser.userId)]);
    await flush(bobUser.accessToken);

    await waitUntil(() => alice.getRoom(roomId)?.getMember(bobUser.userId)?.membership === 'join', 'alice sees bob joined');
    const { event_id } = await alice.sendTextMessage(roomId, 'the spare key is under the mat');

    // The room key (olm-encrypted to bob's device) and the message arrive; possibly over two rounds.
    let message: any;
    let sawToDevice = false;
    let afterClaim = before;
    for (let i = 0; i < 5 && !(message && sawToDevice); i++) {
      const res = await round(5000, [roomId]);
      if (res.extensions.to_device.events.some((e: any) => e.type === 'm.room.encrypted' && e.sender === aliceUser.userId)) sawToDevice = true;
      afterClaim = res.extensions.e2ee.device_one_time_keys_count.signed_curve25519 ?? afterClaim;
      message ??= res.rooms[roomId]?.timeline?.find((e: any) => e.event_id === event_id);
    }
    assert.ok(sawToDevice, 'the room key came as an olm message in the to_device extension');
    assert.ok(message, 'the encrypted message came in the room timeline');
    assert.equal(message.type, 'm.room.encrypted');
    const clear = await machine.decryptRoomEvent(JSON.stringify({ ...message, room_id: roomId }), new w.RoomId(roomId), new w.DecryptionSettings(w.TrustRequirement.Untrusted));
    assert.equal(JSON.parse(clear.event).content.body, 'the spare key is under the mat');
    assert.ok(afterClaim <= before, 'alice claimed one of bob\'s one-time keys (the machine may have topped them up)');
  });

  it('to-device messages are delivered once the client names a later since', async () => {
    const res = await round();
    assert.deepEqual(res.extensions.to_device.events, [], 'nothing delivered twice');
  });
});
