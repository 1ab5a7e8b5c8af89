import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { TestServer, TestUser } from '../helpers/server.js';
import { SlidingClient } from '../sliding-sync/client.js';
import { createRoom, e, expectStatus, join, send } from '../rooms/room-helpers.js';
import { NEEDS_PG, startNodes, stopNodes, untilWaiting } from './cluster-helpers.js';

const EXT = 'io.element.msc4308.thread_subscriptions';
const U = '/_matrix/client/unstable/io.element.msc4306';

/**
 * A thread subscription changed through node A wakes the user's sliding sync waiting on node B
 * (MSC4308's extension on): the change is announced on the bus like every stream's.
 */
describe('thread subscription changes across two nodes', { skip: NEEDS_PG }, () => {
  let a: TestServer;
  let b: TestServer;
  let alice: TestUser;

  before(async () => {
    [a, b] = await startNodes(2);
    alice = await a.registerUser('tsw_alice');
  });
  after(async () => {
    await stopNodes([a, b]);
  });

  test('a subscription made through A answers a sliding sync waiting on B', async () => {
    const roomId = await createRoom(a, alice, { preset: 'public_chat' });
    const req = { extensions: { [EXT]: { enabled: true } } };
    const c = new SlidingClient(b, alice, 'cross');
    await c.sync(req);
    for (let i = 0; i < 3; i++) {
      const root = await send(a, alice, roomId, { msgtype: 'm.text', body: `thread ${i}` });
      // Without lists, the message alone is no news to this connection: only the subscription answers it.
      const waiting = b.hs.ctx.services.sync.notifier.waiting;
      const poll = c.sync(req, 20_000);
      await untilWaiting(b, waiting + 1);
      const t0 = performance.now();
      expectStatus(await a.request('PUT', `${U}/rooms/${e(roomId)}/thread/${e(root)}/subscription`, { token: alice.accessToken, body: {} }), 200);
      const body = await poll;
      const ms = performance.now() - t0;
      console.log(`thread subscription A->B sliding-sync wake-up: ${ms.toFixed(1)} ms`);
      assert.ok(ms < 5000, `answered ${ms.toFixed(0)} ms after the change, not at the 20 s timeout`);
      assert.equal(body.extensions[EXT].subscribed[roomId][root].automatic, false);
    }
  });
});
