/**
 * matrix-js-sdk's own sliding-sync support (its `SlidingSync` loop, which calls the simplified
 * path, `org.matrix.simplified_msc3575`, and feeds its rooms through `SlidingSyncSdk`) drives
 * Hearth: a window of the most recent rooms, a message that moves an older room into it, a
 * message into a room in view, the window widened, and a room subscription with its state.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { MatrixClient } from 'matrix-js-sdk';
import { createSdkClient, sdk, sdkLogin, stopClients, waitUntil, withTimeout } from '../helpers/matrix-client.js';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { createRoom, join, send, setState } from '../sync/util.js';

const ROOMS = 30;

describe("matrix-js-sdk's sliding sync against Hearth", { timeout: 120_000 }, () => {
  let s: TestServer;
  let alice: TestUser;
  let bob: TestUser;
  let client: MatrixClient;
  let ss: { stop(): void; setListRanges(key: string, ranges: number[][]): void; modifyRoomSubscriptions(rooms: Set<string>): void };
  /** Alice's rooms, oldest activity first. */
  const rooms: string[] = [];

  const bodies = (roomId: string) =>
    client
      .getRoom(roomId)
      ?.getLiveTimeline()
      .getEvents()
      .filter((e) => e.getType() === 'm.room.message')
      .map((e) => e.getContent().body as string) ?? [];

  before(async () => {
    s = await startTestServer();
    alice = await s.registerUser('ssjs_alice');
    bob = await s.registerUser('ssjs_bob');
    for (let i = 0; i < ROOMS; i++) {
      const r = await createRoom(s, alice, { preset: 'public_chat', name: `room ${i}` });
      await join(s, bob, r);
      await send(s, alice, r, `last in ${i}`);
      rooms.push(r);
    }
    const { ClientEvent } = await sdk();
    const { SlidingSync } = await import('matrix-js-sdk/lib/sliding-sync.js');
    const creds = await sdkLogin(s.url, alice);
    client = await createSdkClient(s.url, creds);
    const lists = new Map([['all', { ranges: [[0, 9]], timeline_limit: 1, required_state: [['m.room.name', ''], ['m.room.member', '$ME']] }]]);
    const sliding = new SlidingSync(s.url, lists, { timeline_limit: 10, required_state: [['*', '*']] }, client, 5000);
    ss = sliding;
    const prepared = new Promise<void>((resolve) => {
      client.on(ClientEvent.Sync, (state: string) => {
        if (state === 'PREPARED' || state === 'SYNCING') resolve();
      });
    });
    await client.startClient({ slidingSync: sliding });
    await withTimeout(prepared, 15_000, 'the first sliding sync of the SDK');
  });
  after(async () => {
    ss?.stop();
    await stopClients(client);
    await s?.stop();
  });

  it('the window holds the ten most recent rooms, named, each with its last message', async () => {
    const expected = rooms.slice(-10);
    await waitUntil(() => expected.every((r) => client.getRoom(r)), 'the ten rooms are known to the SDK');
    assert.equal(client.getRooms().length, 10, 'and no others');
    const top = client.getRoom(rooms[ROOMS - 1]!)!;
    assert.equal(top.name, `room ${ROOMS - 1}`);
    assert.deepEqual(bodies(top.roomId), [`last in ${ROOMS - 1}`]);
  });

  it('a message moves an older room into the window; a message into a room in view arrives', async () => {
    const old = rooms[3]!;
    assert.equal(client.getRoom(old), null);
    await send(s, bob, old, 'back from the past');
    await waitUntil(() => bodies(old).includes('back from the past'), 'the SDK has the older room and its new message');
    const inView = rooms[ROOMS - 1]!;
    await send(s, bob, inView, 'hello again');
    await waitUntil(() => bodies(inView).includes('hello again'), 'the new message in the room in view');
  });

  it('widening the range brings in the rest', async () => {
    ss.setListRanges('all', [[0, ROOMS - 1]]);
    await waitUntil(() => rooms.every((r) => client.getRoom(r)), `all ${ROOMS} rooms`, 20_000);
  });

  it('a room subscription brings the state the subscription asks for', async () => {
    const r = rooms[10]!;
    await setState(s, alice, r, 'm.room.topic', '', { topic: 'subscribed topic' });
    ss.modifyRoomSubscriptions(new Set([r]));
    await waitUntil(() => client.getRoom(r)?.currentState.getStateEvents('m.room.topic', '')?.getContent().topic === 'subscribed topic', 'the topic arrives');
    assert.ok(client.getRoom(r)!.currentState.getStateEvents('m.room.create', ''), 'all state, as asked');
  });
});
