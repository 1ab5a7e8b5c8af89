// Typing and presence of another server's users reach every node of a cluster (CLUSTER.md 9):
// b.test sends its EDUs to one node of a.test, and a client syncing on the other node sees them,
// because the inbound EDUs go through the shared typing table and presence rows like local ones.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { NEEDS_PG, startNodes, stopNodes, syncUntil } from '../cluster/cluster-helpers.js';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { C, createRoom, e, expectStatus } from '../rooms/room-helpers.js';
import { freePort } from './federation-helpers.js';

describe('typing and presence from another server, on a cluster', { skip: NEEDS_PG, timeout: 120_000 }, () => {
  let nodes: TestServer[];
  let b: TestServer;
  let alice: TestUser;
  let bob: TestUser;
  let roomId: string;

  before(async () => {
    const pb = await freePort();
    nodes = await startNodes(2, { serverName: 'a.test', config: { cluster: { lease_ttl_ms: 3000 }, federation: { resolve: { 'b.test': `http://127.0.0.1:${pb}` } } } });
    // b.test knows a.test by the first node only: every EDU from b.test lands there.
    b = await startTestServer({ serverName: 'b.test', config: { listen: `127.0.0.1:${pb}`, federation: { resolve: { 'a.test': nodes[0]!.url } } } });
    alice = await nodes[0]!.registerUser('alice');
    bob = await b.registerUser('bob');
    roomId = await createRoom(nodes[0]!, alice, { preset: 'public_chat' });
    expectStatus(await b.request('POST', `${C}/join/${e(roomId)}?via=a.test`, { token: bob.accessToken, body: {} }), 200);
  });
  after(async () => {
    await b?.stop();
    if (nodes) await stopNodes(nodes);
  });

  /** A sync on `node` from now on, following it until `pred` holds for the room's ephemeral events or the presence events. */
  async function syncOn(node: TestServer, pred: (body: any) => boolean) {
    const first = await node.request('GET', `${C}/sync?timeout=0`, { token: alice.accessToken });
    expectStatus(first, 200);
    const since = encodeURIComponent(first.body.next_batch);
    return syncUntil(node, alice, node.request('GET', `${C}/sync?timeout=20000&since=${since}`, { token: alice.accessToken }), pred);
  }
  const typists = (body: any): string[] =>
    (body.rooms?.join?.[roomId]?.ephemeral?.events ?? []).find((ev: any) => ev.type === 'm.typing')?.content.user_ids ?? [];
  const presenceOf = (body: any, userId: string): any => (body.presence?.events ?? []).find((ev: any) => ev.sender === userId)?.content;

  it('bob typing on b.test shows in syncs on both nodes, and his stopping too', async () => {
    const waits = nodes.map((n) => syncOn(n, (body) => typists(body).includes(bob.userId)));
    // Both long-polls are open before bob types, so each is woken by the change itself.
    await new Promise((r) => setTimeout(r, 300));
    expectStatus(await b.request('PUT', `${C}/rooms/${e(roomId)}/typing/${e(bob.userId)}`, { token: bob.accessToken, body: { typing: true, timeout: 20_000 } }), 200);
    for (const res of await Promise.all(waits)) assert.deepEqual(typists(res.body), [bob.userId]);

    const stops = nodes.map((n) => syncOn(n, (body) => body.rooms?.join?.[roomId]?.ephemeral !== undefined && !typists(body).includes(bob.userId)));
    await new Promise((r) => setTimeout(r, 300));
    expectStatus(await b.request('PUT', `${C}/rooms/${e(roomId)}/typing/${e(bob.userId)}`, { token: bob.accessToken, body: { typing: false } }), 200);
    for (const res of await Promise.all(stops)) assert.deepEqual(typists(res.body), []);
  });

  it('bob’s presence set on b.test shows in syncs and /presence on both nodes', async () => {
    const waits = nodes.map((n) => syncOn(n, (body) => presenceOf(body, bob.userId)?.status_msg === 'on a train'));
    await new Promise((r) => setTimeout(r, 300));
    expectStatus(await b.request('PUT', `${C}/presence/${e(bob.userId)}/status`, { token: bob.accessToken, body: { presence: 'unavailable', status_msg: 'on a train' } }), 200);
    for (const res of await Promise.all(waits)) assert.equal(presenceOf(res.body, bob.userId).presence, 'unavailable');
    for (const n of nodes) {
      const res = await n.request('GET', `${C}/presence/${e(bob.userId)}/status`, { token: alice.accessToken });
      expectStatus(res, 200);
      assert.equal(res.body.presence, 'unavailable');
      assert.equal(res.body.status_msg, 'on a train');
    }
  });
});
