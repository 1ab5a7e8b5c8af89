import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { shardOf } from '../../src/cluster/shard-policy.js';
import { eventually, freePort } from '../federation/federation-helpers.js';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { C, createRoom, e, expectStatus, join, messages, sendText } from '../rooms/room-helpers.js';
import { NEEDS_PG, startNodes, stopNodes } from './cluster-helpers.js';

/** Short leases, so that moves happen within the test (renewals and heartbeats every second). */
const TTL_MS = 3000;

/**
 * A stand-in for the network between a.test's nodes and b.test: forwards every request to b.test
 * and counts the messages each PDU carried, by body, so a PDU sent twice is seen twice.
 */
async function countingProxy(): Promise<{ url: string; target: { url: string }; seen: Map<string, number>; close(): Promise<void> }> {
  const target = { url: '' };
  const seen = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks);
      if (req.method === 'PUT' && req.url?.startsWith('/_matrix/federation/v1/send/')) {
        for (const pdu of JSON.parse(body.toString()).pdus ?? []) {
          if (pdu.type === 'm.room.message') seen.set(pdu.content.body, (seen.get(pdu.content.body) ?? 0) + 1);
        }
      }
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string' && !['host', 'connection', 'content-length'].includes(k)) headers[k] = v;
      try {
        const answer = await fetch(target.url + req.url, { method: req.method, headers, body: body.length > 0 ? body : undefined });
        res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json' });
        res.end(Buffer.from(await answer.arrayBuffer()));
      } catch {
        res.writeHead(502).end();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, target, seen, close: () => new Promise<void>((r) => server.close(() => r())) };
}

/**
 * The federation sender shared out by destination (CLUSTER.md 5): 64 shards, an even share per
 * live node under leases, moved when a node stops and given back when it returns; whichever
 * node an event is sent through, the shard's holder delivers it to the remote server once.
 */
describe('federation sending sharded over the nodes', { skip: NEEDS_PG }, () => {
  let nodes: TestServer[];
  let b: TestServer;
  let proxy: Awaited<ReturnType<typeof countingProxy>>;
  let users: TestUser[];
  let bob: TestUser;
  let roomId: string;

  before(async () => {
    proxy = await countingProxy();
    nodes = await startNodes(3, { serverName: 'a.test', config: { cluster: { lease_ttl_ms: TTL_MS }, federation: { resolve: { 'b.test': proxy.url } } } });
    const pb = await freePort();
    b = await startTestServer({ serverName: 'b.test', config: { listen: `127.0.0.1:${pb}`, federation: { resolve: { 'a.test': nodes[0]!.url } } } });
    proxy.target.url = b.url;
    users = await Promise.all(nodes.map((n, i) => n.registerUser(`shard_${i}`)));
    bob = await b.registerUser('bob');
  });
  after(async () => {
    await b?.stop();
    await stopNodes(nodes);
    await proxy?.close();
  });

  /** Node id to the shards whose lease it holds now, from the database. */
  async function shares(): Promise<Map<string, number[]>> {
    const { rows } = await sql<{ name: string; holder: string }>`
      select name, holder from cluster_leases
      where name like 'federation.shard:%' and expires_ts > (extract(epoch from clock_timestamp()) * 1000)::bigint`.execute(nodes[0]!.hs.ctx.db);
    const out = new Map<string, number[]>();
    for (const r of rows) out.set(r.holder, [...(out.get(r.holder) ?? []), Number(r.name.split(':')[1])].sort((x, y) => x - y));
    return out;
  }

  async function nodeId(node: TestServer): Promise<string> {
    return (await node.request('GET', '/health')).body.node;
  }

  /** Waits until the live nodes hold all 64 shards between them, evenly; returns the time it took. */
  async function balanced(live: TestServer[], what: string): Promise<{ ms: number; byNode: number[][] }> {
    const t0 = performance.now();
    const ids = await Promise.all(live.map(nodeId));
    const byNode = await eventually(async () => {
      const s = await shares();
      const held = ids.map((id) => s.get(id) ?? []);
      const counts = held.map((h) => h.length);
      const even = counts.every((c) => c === Math.floor(64 / live.length) || c === Math.ceil(64 / live.length));
      return s.size === live.length && even && counts.reduce((x, y) => x + y) === 64 ? held : undefined;
    }, what, TTL_MS * 4);
    return { ms: performance.now() - t0, byNode };
  }

  /** Sends one message per node per round and checks b.test received each exactly once. */
  async function sendFromEveryNode(live: number[], tag: string): Promise<void> {
    const sent: string[] = [];
    for (let round = 0; round < 3; round++) {
      for (const i of live) {
        const body = `${tag} from node ${i} #${round}`;
        await sendText(nodes[i]!, users[i]!, roomId, body);
        sent.push(body);
      }
    }
    await eventually(async () => {
      const res = await messages(b, bob, roomId, { dir: 'b', limit: 100 });
      const got = new Set(res.body.chunk.map((ev: any) => ev.content?.body));
      return sent.every((m) => got.has(m));
    }, `${tag}: every message on b.test`, 20_000);
    // Anything sent twice would have arrived by now.
    await new Promise((r) => setTimeout(r, 300));
    for (const m of sent) assert.equal(proxy.seen.get(m), 1, `${m} reached b.test ${proxy.seen.get(m) ?? 0} times`);
  }

  test('three nodes hold 21 or 22 shards each; a message through any node reaches b.test once', async () => {
    const { byNode } = await balanced(nodes, 'an even share on each of three nodes');
    assert.deepEqual(byNode.flat().sort((x, y) => x - y), Array.from({ length: 64 }, (_, i) => i));
    roomId = await createRoom(nodes[0]!, users[0]!, { preset: 'public_chat' });
    expectStatus(await b.request('POST', `${C}/join/${e(roomId)}?via=a.test`, { token: bob.accessToken, body: {} }), 200);
    for (const i of [1, 2]) expectStatus(await join(nodes[i]!, users[i]!, roomId), 200);
    await sendFromEveryNode([0, 1, 2], 'three');
  });

  test('a node that stops hands its shards to the others; back under the same address, it takes the same ones again', async () => {
    const ids = await Promise.all(nodes.map(nodeId));
    const before = await shares();
    // The node holding b.test's shard is the one to stop (node 0 owns the test database: not that one).
    const bShard = shardOf('b.test');
    const holder = ids.findIndex((id) => before.get(id)?.includes(bShard));
    const k = holder > 0 ? holder : 1;
    const had = before.get(ids[k]!)!;
    await nodes[k]!.hs.stop();
    const rest = [0, 1, 2].filter((i) => i !== k);
    const moved = await balanced(rest.map((i) => nodes[i]!), 'the shards moved to the two others');
    console.log(`shards of a stopped node moved in ${moved.ms.toFixed(0)} ms (lease TTL ${TTL_MS} ms)`);
    assert.ok(moved.ms < TTL_MS + 1000, 'within the lease time to live');
    for (const shard of had) assert.ok(moved.byNode.some((h) => h.includes(shard)), `shard ${shard} taken over`);
    await sendFromEveryNode(rest, 'two');

    await nodes[k]!.restart();
    const back = await balanced(nodes, 'an even share again');
    console.log(`a returning node took its shards back in ${back.ms.toFixed(0)} ms`);
    assert.deepEqual(back.byNode[k], had, 'the same shards as before');
    await sendFromEveryNode([0, 1, 2], 'again');
  });
});
