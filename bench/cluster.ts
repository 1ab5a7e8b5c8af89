// `npm run bench:cluster` (`node dist/bench/cluster.js` after a build): throughput and sync
// latency of a cluster of 1, 2 and 3 Hearth nodes (HEARTH_BENCH_NODES=1,2,3) on one PostgreSQL
// database, each node its own process as `hearth start` runs it. For each size, on a fresh
// database:
// - sends: CLIENTS users, each in a room of its own, send sequentially for a fixed count; the
//   clients are spread over the nodes (client i talks to node i mod N), as a balancer would;
// - sync latency: bob long-polls on one node while alice sends through another (the same node
//   when there is one): the time from the send until bob's long-poll returns the message,
//   across nodes through the bus (NOTIFY after commit).
// On one machine the nodes share its cores with PostgreSQL and the client, so more nodes add
// availability, not throughput; the figures show what the cluster costs.
// HEARTH_BENCH_PROF_DIR=DIR writes a CPU profile of every node there; PROBE_NODE_ARGS adds flags to their node.
//
// Then, where Patroni and etcd are installed (HEARTH_BENCH_STANDBY=off skips it), the same on a
// Patroni cluster of two PostgreSQL instances with the synchronous standby of
// docs/cluster/patroni.yml, after a probe of what the standby costs a stream position: a writer
// takes the next position last in its transaction and holds that row's lock until its commit,
// which waits for the standby's acknowledgement (CLUSTER.md 5). The probe times that hold,
// from the position's UPDATE to the end of COMMIT, on the plain database and on the cluster.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import YAML from 'yaml';
import { BenchClient, cpuMs, percentile } from './client.js';
import { startServerProcess, type ServerProcess } from './server-process.js';
import { patroniUnavailable, startPatroniCluster } from '../test/cluster/patroni-cluster.js';

const PG_ADMIN = process.env.HEARTH_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const SIZES = (process.env.HEARTH_BENCH_NODES ?? '1,2,3').split(',').map(Number);
const CLIENTS = 6;
const SENDS_PER_CLIENT = Number(process.env.HEARTH_BENCH_CLUSTER_SENDS ?? 300);
const WAKE_ROUNDS = 100;
const LOCK_ROUNDS = 300;

type SyncBody = { next_batch: string; rooms?: { join?: Record<string, { timeline: { events: { content: { body?: string } }[] } }> } };

interface Cluster {
  nodes: ServerProcess[];
  secret: string;
  stop(): Promise<void>;
}

/** An admin connection: to the primary, when the URL names several hosts. */
const adminSql = (url: string) => postgres(url, { max: 1, onnotice: () => {}, target_session_attrs: 'primary' } as postgres.Options<{}>);

/** `url` (the postgres database of a server or cluster) with another database name. */
function withDatabase(url: string, name: string): string {
  const at = url.lastIndexOf('/');
  return `${url.slice(0, at)}/${name}`;
}

/** N node processes on a new database of `adminUrl`'s server, sharing one data directory (its config and signing key). */
async function startCluster(n: number, adminUrl: string): Promise<Cluster> {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-bench-cluster-'));
  const dbName = `hearth_bench_cluster_${Date.now()}`;
  const admin = adminSql(adminUrl);
  await admin.unsafe(`create database ${dbName}`);
  await admin.end();
  const dbUrl = withDatabase(adminUrl, dbName);
  const nodes: ServerProcess[] = [];
  const stop = async () => {
    await Promise.all(nodes.map((s) => s.stop()));
    rmSync(dir, { recursive: true, force: true });
    const a = adminSql(adminUrl);
    await a.unsafe(`drop database if exists ${dbName} with (force)`);
    await a.end();
  };
  try {
    // The first node writes the configuration and the signing key; the others start from them.
    const prof = process.env.HEARTH_BENCH_PROF_DIR;
    const nodeArgs = [...(prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : []), ...(process.env.PROBE_NODE_ARGS ?? '').split(' ').filter(Boolean)];
    nodes.push(await startServerProcess({ dir, databaseUrl: dbUrl, nodeArgs }));
    for (let i = 1; i < n; i++) nodes.push(await startServerProcess({ dir, databaseUrl: dbUrl, nodeArgs }));
  } catch (e) {
    await stop();
    throw e;
  }
  const secret = (YAML.parse(readFileSync(join(dir, 'hearth.yaml'), 'utf8')) as { registration_shared_secret: string }).registration_shared_secret;
  return { nodes, secret, stop };
}

type Recorder = (r: { name: string; value: number; unit: string; detail?: string }) => void;

async function measure(n: number, adminUrl: string, record: Recorder): Promise<void> {
  const cluster = await startCluster(n, adminUrl);
  const clients = cluster.nodes.map((s) => new BenchClient(s.url, 8));
  const at = (i: number) => clients[i % clients.length]!;
  try {
    const users = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => at(i).registerUser(`sender${i}`, cluster.secret)));
    const rooms = await Promise.all(users.map((u, i) => at(i).ok<{ room_id: string }>('POST', '/_matrix/client/v3/createRoom', {}, u.token)));

    const cpu0 = cluster.nodes.reduce((s, p) => s + cpuMs(p.proc.pid!), 0);
    const t0 = performance.now();
    await Promise.all(
      users.map(async (u, i) => {
        const path = `/_matrix/client/v3/rooms/${encodeURIComponent(rooms[i]!.room_id)}/send/m.room.message/`;
        for (let k = 0; k < SENDS_PER_CLIENT; k++) await at(i).ok('PUT', `${path}t${k}`, { msgtype: 'm.text', body: `message ${k}` }, u.token);
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    const total = CLIENTS * SENDS_PER_CLIENT;
    const cpu = cluster.nodes.reduce((s, p) => s + cpuMs(p.proc.pid!), 0) - cpu0;
    record({ name: `${n} node(s): sends`, value: total / seconds, unit: 'msgs/s', detail: `${CLIENTS} clients, ${SENDS_PER_CLIENT} sends each, spread over the nodes` });
    record({ name: `${n} node(s): Hearth CPU per send (all nodes)`, value: cpu / total, unit: 'ms' });

    // Sync latency: alice sends through the first node, bob long-polls on the last.
    const sender = clients[0]!;
    const poller = clients[clients.length - 1]!;
    const alice = users[0]!;
    const bob = await poller.registerUser('bob', cluster.secret);
    const room = rooms[0]!.room_id;
    await sender.ok('POST', `/_matrix/client/v3/rooms/${encodeURIComponent(room)}/invite`, { user_id: bob.userId }, alice.token);
    await poller.ok('POST', `/_matrix/client/v3/join/${encodeURIComponent(room)}`, {}, bob.token);
    const sync = (query: string) => poller.ok<SyncBody>('GET', `/_matrix/client/v3/sync?${query}`, undefined, bob.token);
    let since = (await sync('timeout=0')).next_batch;
    const wake: number[] = [];
    for (let i = 0; i < WAKE_ROUNDS; i++) {
      const poll = sync(`timeout=30000&since=${encodeURIComponent(since)}`);
      await new Promise((r) => setTimeout(r, 10));
      const s = performance.now();
      const sent = sender.ok('PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(room)}/send/m.room.message/wake${i}`, { msgtype: 'm.text', body: `wake ${i}` }, alice.token);
      let res = await poll;
      // A long-poll may return for other news first; follow it until the message arrives.
      while (!res.rooms?.join?.[room]?.timeline.events.some((e) => e.content.body === `wake ${i}`)) {
        res = await sync(`timeout=30000&since=${encodeURIComponent(res.next_batch)}`);
      }
      wake.push(performance.now() - s);
      await sent;
      since = res.next_batch;
    }
    wake.sort((a, b) => a - b);
    const across = n > 1 ? 'send on node 1, long-poll on node ' + n : 'one node';
    record({ name: `${n} node(s): sync latency p50`, value: percentile(wake, 50), unit: 'ms', detail: across });
    record({ name: `${n} node(s): sync latency p99`, value: percentile(wake, 99), unit: 'ms', detail: across });
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await cluster.stop();
  }
}

/**
 * How long a stream position's row lock is held: a transaction that, as a Hearth writer does
 * last, advances a position row, then commits; timed from the UPDATE to the end of the COMMIT.
 */
async function positionLockHold(adminUrl: string, record: Recorder, label: string): Promise<void> {
  const db = adminSql(adminUrl);
  try {
    await db`create table if not exists hearth_bench_position (stream text primary key, pos bigint not null)`;
    await db`insert into hearth_bench_position values ('events', 0) on conflict do nothing`;
    const held: number[] = [];
    for (let i = 0; i < LOCK_ROUNDS; i++) {
      let from = 0;
      await db.begin(async (tx) => {
        from = performance.now();
        await tx`update hearth_bench_position set pos = pos + 1 where stream = 'events' returning pos`;
      });
      held.push(performance.now() - from);
    }
    held.sort((a, b) => a - b);
    record({ name: `${label}: position lock held p50`, value: percentile(held, 50), unit: 'ms', detail: 'UPDATE of the position row to the end of COMMIT' });
    record({ name: `${label}: position lock held p99`, value: percentile(held, 99), unit: 'ms' });
  } finally {
    await db`drop table if exists hearth_bench_position`.catch(() => {});
    await db.end();
  }
}

const print: Recorder = (r) => console.log(`  ${r.name}: ${r.value.toFixed(2)} ${r.unit}${r.detail ? ` (${r.detail})` : ''}`);

console.log(`Cluster of ${SIZES.join(', ')} node(s) on PostgreSQL`);
await positionLockHold(PG_ADMIN, print, 'one PostgreSQL, no standby');
for (const n of SIZES) await measure(n, PG_ADMIN, print);

const unavailable = process.env.HEARTH_BENCH_STANDBY === 'off' ? 'HEARTH_BENCH_STANDBY=off' : patroniUnavailable();
if (unavailable) {
  console.log(`The synchronous-standby part is skipped: ${unavailable}`);
} else {
  console.log('Patroni cluster of two PostgreSQL instances, synchronous standby (docs/cluster/patroni.yml)');
  const pg = await startPatroniCluster({ members: 2, haproxy: false });
  try {
    const url = pg.multiHostUrl('postgres');
    await positionLockHold(url, print, 'synchronous standby');
    for (const n of SIZES.filter((x) => x <= 2)) await measure(n, url, print);
  } finally {
    await pg.stop();
  }
}
