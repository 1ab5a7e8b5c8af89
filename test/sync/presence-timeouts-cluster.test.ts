import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { NEEDS_PG, startNodes, stopNodes } from '../cluster/cluster-helpers.js';
import type { TestServer, TestUser } from '../helpers/server.js';
import { OFFLINE_MS, statusPath, TIMEOUT_CONFIG, watchPresence } from './presence-helpers.js';
import { createRoom, join, sleep, sync } from './util.js';

/** The presence position of a sync token (`s<events>_..._<presence>`, the last of its streams). */
const presencePos = (token: string) => Number(token.split('_').at(-1));

/**
 * Two nodes on one database (CLUSTER.md 5): the presence timeouts run under a lease, so one node
 * applies each of them, once, and the other node's readers see the result.
 */
describe('presence timeouts on two nodes', { skip: NEEDS_PG }, () => {
  let a: TestServer;
  let b: TestServer;
  let alice: TestUser;
  let bob: TestUser;

  before(async () => {
    [a, b] = await startNodes(2, { config: TIMEOUT_CONFIG });
    alice = await a.registerUser('cidle_alice');
    bob = await b.registerUser('cidle_bob');
    const roomId = await createRoom(a, alice, { preset: 'public_chat' });
    await join(b, bob, roomId);
    // Bob only watches: his own timeouts would take presence positions too.
    const off = await b.request('PUT', statusPath(bob.userId), { token: bob.accessToken, body: { presence: 'offline' } });
    assert.equal(off.status, 200);
  });
  after(async () => {
    await stopNodes([a, b]);
  });

  it('a user who stops syncing on A goes unavailable then offline once, as both nodes see', async () => {
    // Past the interval at which activity is written, so that the sync below is alice's last activity.
    await sleep(700);
    await sync(a, alice);
    // Both nodes have alice online, B in its cache too.
    for (const node of [a, b]) assert.equal((await node.request('GET', statusPath(alice.userId), { token: bob.accessToken })).body.presence, 'online');
    const since = (await sync(b, bob, { set_presence: 'offline' })).next_batch;
    const t0 = Date.now();

    const { seen, token } = await watchPresence(b, bob, alice.userId, since, t0, OFFLINE_MS + 8000);
    assert.deepEqual(
      seen.map((x) => x.presence),
      ['unavailable', 'offline'],
      `B's /sync saw each timeout once: ${JSON.stringify(seen)}`,
    );
    // Nothing else changed anyone's presence meanwhile: a timeout applied by both nodes would
    // have taken a presence position more than once.
    assert.equal(presencePos(token) - presencePos(since), 2, `presence positions ${since} -> ${token}`);
    const holders = [a, b].filter((n) => n.hs.ctx.leases.heldNames().includes('presence_timeouts'));
    assert.equal(holders.length, 1, 'one node holds the presence timeouts lease');

    for (const node of [a, b]) {
      const got = await node.request('GET', statusPath(alice.userId), { token: bob.accessToken });
      assert.equal(got.status, 200);
      assert.equal(got.body.presence, 'offline', `${node === a ? 'A' : 'B'}: ${JSON.stringify(got.body)}`);
      const body = await sync(node, bob, { set_presence: 'offline' });
      const ev = (body.presence?.events ?? []).find((e: any) => e.sender === alice.userId);
      assert.equal(ev?.content.presence, 'offline', `${node === a ? 'A' : 'B'}'s initial /sync`);
    }
  });

  it('a user who keeps syncing on B while the lease holder may be A stays online', async () => {
    const start = Date.now();
    let token: string | undefined;
    while (Date.now() - start < OFFLINE_MS + 2000) {
      token = (await sync(b, bob, { since: token, timeout: 300 })).next_batch;
      for (const node of [a, b]) {
        const got = await node.request('GET', statusPath(bob.userId), { token: alice.accessToken });
        assert.equal(got.body.presence, 'online', `${Date.now() - start} ms: ${JSON.stringify(got.body)}`);
      }
    }
  });
});
