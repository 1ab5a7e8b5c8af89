// Nodes sharing a database share out the destinations by shard (CLUSTER.md 5): a to-device
// message sent through the node that does not hold b.test's shard is stored, and the node that
// holds it, woken through the bus, sends it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { shardOf } from '../../src/cluster/shard-policy.js';
import { NEEDS_PG, startNodes, stopNodes } from '../cluster/cluster-helpers.js';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { C, expectStatus, txn } from '../rooms/room-helpers.js';
import { eventually, freePort } from './federation-helpers.js';

describe('to-device messages from a cluster', { skip: NEEDS_PG, timeout: 120_000 }, () => {
  let nodes: TestServer[];
  let b: TestServer;
  let bob: TestUser;

  before(async () => {
    const pb = await freePort();
    nodes = await startNodes(2, { serverName: 'a.test', config: { cluster: { lease_ttl_ms: 3000 }, federation: { resolve: { 'b.test': `http://127.0.0.1:${pb}` } } } });
    b = await startTestServer({ serverName: 'b.test', config: { listen: `127.0.0.1:${pb}`, federation: { resolve: { 'a.test': nodes[0]!.url } } } });
    bob = await b.registerUser('bob');
  });
  after(async () => {
    await b?.stop();
    if (nodes) await stopNodes(nodes);
  });

  /** The node holding `shard`'s lease, once both nodes hold half of the shards each. */
  async function holderOf(shard: number): Promise<TestServer> {
    const ids = await Promise.all(nodes.map(async (n) => (await n.request('GET', '/health')).body.node as string));
    const holder = await eventually(async () => {
      const { rows } = await sql<{ name: string; holder: string }>`
        select name, holder from cluster_leases
        where name like 'federation.shard:%' and expires_ts > (extract(epoch from clock_timestamp()) * 1000)::bigint`.execute(nodes[0]!.hs.ctx.db);
      const counts = ids.map((id) => rows.filter((r) => r.holder === id).length);
      if (counts[0] !== 32 || counts[1] !== 32) return undefined;
      return rows.find((r) => r.name === `federation.shard:${shard}`)?.holder;
    }, 'the shards shared out evenly', 20_000);
    return nodes[ids.indexOf(holder)]!;
  }

  it('a message sent through the node without b.test\'s shard reaches b.test', async () => {
    const owner = await holderOf(shardOf('b.test'));
    const other = nodes.find((n) => n !== owner)!;
    const alice = await other.registerUser('alice');
    const res = await other.request('PUT', `${C}/sendToDevice/m.test/${txn()}`, { token: alice.accessToken, body: { messages: { [bob.userId]: { [bob.deviceId]: { via: 'other node' } } } } });
    expectStatus(res, 200);
    const got = await eventually(async () => {
      const s = await b.request('GET', `${C}/sync?timeout=0`, { token: bob.accessToken });
      expectStatus(s, 200);
      const events = s.body.to_device?.events ?? [];
      return events.length > 0 ? events : undefined;
    }, 'the message on b.test', 20_000);
    assert.deepEqual(got.map((m: any) => m.content), [{ via: 'other node' }]);
    assert.equal(got[0].sender, alice.userId);
    await eventually(async () => {
      const rows = await owner.hs.ctx.db.selectFrom('federation_outbound_edus').select('pos').execute();
      return rows.length === 0;
    }, 'the stored row deleted');
  });
});
