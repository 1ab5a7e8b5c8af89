/**
 * A node cut off from the database by the network (CLUSTER.md 10, partition). One Hearth node
 * runs in a Linux network namespace the test creates, reaching PostgreSQL over one veth pair
 * (the "database link") and its clients over another (the "client link"); a second node runs
 * on the host, on the same database. The database link is cut with `ip link set ... down`: the
 * packets are dropped, no reset is sent, so the node sees a dead link, not a refused connection.
 * Then: the cut-off node reports not ready within a bounded time and acknowledges no write that
 * is not committed (every send answered 200 during the cut is in the database afterwards), while
 * the host node keeps serving and takes over the federation shards. When the link returns the
 * node becomes ready again by itself, takes writes, and gets its share of the shards back.
 *
 * PostgreSQL listens on 127.0.0.1 only, which a namespace cannot reach; a small TCP proxy in
 * this process on the host end of the database link forwards to it. The proxy is only a bridge:
 * the cut is the link going down.
 */
import assert from 'node:assert/strict';
import { execFile as execFileCb, spawn } from 'node:child_process';
import { mkdirSync, openSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { sql } from 'kysely';
import YAML from 'yaml';
import { connectDatabase, type Database } from '../../src/db/connect.js';
import { freshDatabase } from '../helpers/server.js';
import { spawnNodes, stopChildNodes, type ChildNode } from './child-nodes.js';
import { NEEDS_PG, recordFigures } from './cluster-helpers.js';

const execFile = promisify(execFileCb);
const IP = '/usr/sbin/ip';
const MAIN = new URL('../../src/cli/main.js', import.meta.url).pathname;
const C = '/_matrix/client/v3';
const TTL_MS = 3000;
const SHARDS = 64;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Why the test cannot run here, or false. */
async function needsNetns(): Promise<string | false> {
  if (NEEDS_PG) return NEEDS_PG;
  if (process.platform !== 'linux') return 'needs Linux network namespaces';
  if (process.getuid?.() !== 0) return 'needs root to create a network namespace and veth pairs';
  const probe = `hearth-probe-${process.pid}`;
  try {
    await execFile(IP, ['netns', 'add', probe]);
    await execFile(IP, ['netns', 'del', probe]);
    return false;
  } catch (e) {
    return `\`ip netns\` is unavailable: ${(e as Error).message.split('\n')[0]}`;
  }
}
const SKIP = await needsNetns();

const ip = (...args: string[]) => execFile(IP, args);
const inNs = (ns: string, ...args: string[]) => execFile(IP, ['netns', 'exec', ns, IP, ...args]);

interface Answer {
  status: number;
  body: any;
}

async function call(url: string, method: string, path: string, token?: string, body?: unknown, timeoutMs = 5000): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** A TCP forwarder from `host:0` to PostgreSQL on 127.0.0.1:5432; resolves with its port. */
async function startProxy(host: string, target: URL): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port || 5432), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, host, resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

describe('a node partitioned from PostgreSQL', { skip: SKIP }, () => {
  // Names unique to this run (interface names are at most 15 characters).
  const tag = String(process.pid % 100000);
  const ns = `hearth-part-${tag}`;
  const dbHost = `hpd${tag}h`; // host end of the database link
  const dbPeer = `hpd${tag}n`;
  const cliHost = `hpc${tag}h`; // host end of the client link
  const cliPeer = `hpc${tag}n`;
  // A /30 of 10.200/16 (database link) and the same of 10.201/16 (client link) per run, so two
  // runs at once do not share addresses: host end .1 + offset, namespace end .2 + offset.
  const block = process.pid % 16384;
  const addr = (net: 200 | 201, end: 1 | 2) => `10.${net}.${block >> 6}.${(block & 63) * 4 + end}`;
  const pgVia = addr(200, 1);
  const clientAt = addr(201, 2);
  let fresh: { url: string; drop(): Promise<void> };
  let proxy: { port: number; close(): Promise<void> } | undefined;
  const nodes: ChildNode[] = [];
  let db: Database;
  let host: ChildNode;
  let cut: ChildNode;

  before(async () => {
    await ip('netns', 'add', ns);
    await inNs(ns, 'link', 'set', 'lo', 'up');
    for (const [h, n, net] of [
      [dbHost, dbPeer, 200],
      [cliHost, cliPeer, 201],
    ] as const) {
      await ip('link', 'add', h, 'type', 'veth', 'peer', 'name', n);
      await ip('link', 'set', n, 'netns', ns);
      await ip('addr', 'add', `${addr(net, 1)}/30`, 'dev', h);
      await ip('link', 'set', h, 'up');
      await inNs(ns, 'addr', 'add', `${addr(net, 2)}/30`, 'dev', n);
      await inNs(ns, 'link', 'set', n, 'up');
    }
    fresh = await freshDatabase();
    const pgUrl = new URL(fresh.url);
    proxy = await startProxy(pgVia, pgUrl);
    const config = { server_name: 'partition.test', rate_limits: { enabled: false }, cluster: { lease_ttl_ms: TTL_MS } };
    await spawnNodes(1, fresh.url, config, nodes);
    host = nodes[0]!;
    const viaLink = new URL(fresh.url);
    viaLink.hostname = pgVia;
    viaLink.port = String(proxy.port);
    cut = await spawnInNamespace(ns, join(host.dataDir, '..'), viaLink.toString(), config);
    nodes.push(cut);
    await untilReady(cut, 60_000);
    db = await connectDatabase({ url: fresh.url, poolSize: 2 });
  });

  after(async () => {
    // Kept for a look when something failed.
    if (process.env.HEARTH_TEST_KEEP_LOGS && cut) await execFile('cp', [join(cut.dataDir, 'node.log'), `/tmp/partition-${tag}.log`]).catch(() => {});
    // The link up again first, so the node's last queries and shutdown are not stuck on it.
    await ip('link', 'set', dbHost, 'up').catch(() => {});
    await stopChildNodes(nodes).catch(() => {});
    await proxy?.close().catch(() => {});
    await db?.close().catch(() => {});
    await fresh?.drop().catch(() => {});
    // Deleting the namespace deletes the peers in it, and with them the host ends of the pairs.
    await ip('netns', 'del', ns).catch(() => {});
    for (const h of [dbHost, cliHost]) await ip('link', 'del', h).catch(() => {});
  });

  /** `hearth start` inside the namespace, its database through the link, its clients on the client link. */
  async function spawnInNamespace(nsName: string, base: string, dbUrl: string, config: Record<string, unknown>): Promise<ChildNode> {
    const dataDir = join(base, 'node-ns');
    const file = join(base, 'node-ns.yaml');
    const port = 18000 + (process.pid % 1000);
    writeFileSync(
      file,
      YAML.stringify({
        listen: `${clientAt}:${port}`,
        data_dir: dataDir,
        database: { url: dbUrl, pool_size: 5 },
        signing_key_path: join(base, 'signing.key'),
        registration: 'open',
        registration_shared_secret: 'node-test-secret',
        form_secret: 'node-test-form-secret',
        log_level: process.env.HEARTH_TEST_LOG ?? 'warn',
        ...config,
        // The test reads the node's own view of its leases from the host end of the client link.
        metrics: { allow_from: [`${addr(201, 1)}/32`] },
      }),
    );
    mkdirSync(dataDir, { recursive: true });
    const log = openSync(join(dataDir, 'node.log'), 'w');
    const script = `import { main } from ${JSON.stringify(MAIN)}; process.exitCode = await main(['start', '--config', ${JSON.stringify(file)}]);`;
    const proc = spawn(IP, ['netns', 'exec', nsName, process.execPath, '--input-type=module', '-e', script], { stdio: ['ignore', log, log] });
    return { url: `http://${clientAt}:${port}`, port, proc, dataDir, nodeId: '' };
  }

  async function ready(node: ChildNode): Promise<Answer | null> {
    try {
      return await call(node.url, 'GET', '/ready', undefined, undefined, 4000);
    } catch {
      return null;
    }
  }

  async function untilReady(node: ChildNode, ms: number): Promise<number> {
    const t0 = performance.now();
    for (;;) {
      if (node.proc.exitCode !== null) throw new Error(`node exited (${node.proc.exitCode}); see ${node.dataDir}/node.log`);
      const r = await ready(node);
      if (r?.status === 200) {
        node.nodeId = r.body.node;
        return performance.now() - t0;
      }
      if (performance.now() - t0 > ms) throw new Error(`${node.url} not ready within ${ms} ms: ${JSON.stringify(r?.body)}`);
      await sleep(100);
    }
  }

  /** The federation shard leases the node itself trusts (hearth_lease_held), or null without an answer. */
  async function shardsTrusted(node: ChildNode): Promise<number | null> {
    try {
      const res = await fetch(`${node.url}/metrics`, { signal: AbortSignal.timeout(2000) });
      if (res.status !== 200) return null;
      return (await res.text()).split('\n').filter((l) => l.startsWith('hearth_lease_held{lease="federation.shard:')).length;
    } catch {
      return null;
    }
  }

  /** Live federation shard leases per holder, as the database has them. */
  async function shardsHeld(): Promise<Map<string, number>> {
    const { rows } = await sql<{ holder: string; n: number }>`
      select holder, count(*)::int as n from cluster_leases
      where name like 'federation.shard:%' and expires_ts > (extract(epoch from clock_timestamp()) * 1000)::bigint
      group by holder`.execute(db.db);
    return new Map(rows.map((r) => [r.holder, r.n]));
  }

  async function until(pred: () => Promise<boolean>, ms: number, what: () => string | Promise<string>): Promise<number> {
    const t0 = performance.now();
    while (!(await pred())) {
      if (performance.now() - t0 > ms) throw new Error(`${await what()}: not within ${ms} ms`);
      await sleep(100);
    }
    return performance.now() - t0;
  }

  test('stops acknowledging writes and reports not ready while cut off; recovers by itself when the link returns', async () => {
    // A user and a room, made on the host node; the token works on both (one database).
    const reg = { username: 'cutoff', password: 'pw-cutoff', auth: { type: 'm.login.dummy' } };
    let res = await call(host.url, 'POST', `${C}/register`, undefined, reg);
    if (res.status === 401) res = await call(host.url, 'POST', `${C}/register`, undefined, { ...reg, auth: { type: 'm.login.dummy', session: res.body.session } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const token = res.body.access_token as string;
    res = await call(host.url, 'POST', `${C}/createRoom`, token, { preset: 'private_chat' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const room = encodeURIComponent(res.body.room_id);
    let txn = 0;
    const send = (node: ChildNode, body: string, timeoutMs = 5000) =>
      call(node.url, 'PUT', `${C}/rooms/${room}/send/m.room.message/t${++txn}`, token, { msgtype: 'm.text', body }, timeoutMs);

    // Before the cut: both nodes take writes, and share the shards.
    assert.equal((await send(cut, 'before on the namespaced node')).status, 200);
    assert.equal((await send(host, 'before on the host node')).status, 200);
    await until(async () => (await shardsHeld()).get(cut.nodeId) === SHARDS / 2, 20_000, () => 'the namespaced node holds half the shards');

    // The cut. Sends go on through the namespaced node the whole time, each with its own body.
    await ip('link', 'set', dbHost, 'down');
    const cutAt = performance.now();
    // endedAt: when the answer came (or the client gave up), performance.now().
    const duringCut: { body: string; status: number | 'no answer'; endedAt: number }[] = [];
    let sending = true;
    const load = (async () => {
      for (let i = 0; sending; i++) {
        const body = `during the cut ${i}`;
        // A short client timeout, so a cut of a few seconds sees several attempts end in it.
        const answer = await send(cut, body, 1000).catch(() => null);
        duringCut.push({ body, status: answer?.status ?? 'no answer', endedAt: performance.now() });
        if (answer) await sleep(200);
      }
    })();

    let last: Answer | null = null;
    const notReady = await until(
      async () => {
        last = await ready(cut);
        return last?.status === 503;
      },
      15_000,
      () => `the namespaced node not ready (last /ready: ${JSON.stringify(last?.body)})`,
    );
    assert.equal((last as Answer | null)?.body.checks.database, false);
    assert.equal((await call(cut.url, 'GET', '/health')).status, 200, 'the process is alive all the same');

    // The cut-off node stops trusting its shard leases on its own clock (self-fencing), before
    // they lapse in the database for the others.
    let trusted: number | null = null;
    const fenced = await until(async () => (trusted = await shardsTrusted(cut)) === 0, 4 * TTL_MS, () => `the namespaced node still trusts ${trusted} shards`);

    // The host node keeps serving, and takes the shards once the cut-off node's leases lapse.
    assert.equal((await ready(host))?.status, 200);
    assert.equal((await send(host, 'during the cut on the host node')).status, 200);
    const takeover = await until(async () => (await shardsHeld()).get(host.nodeId) === SHARDS, 4 * TTL_MS + 10_000, () => 'the host node holds every shard');
    // A few more seconds of cut, with the sends going on (longer with HEARTH_TEST_CUT_MS, to see a long cut).
    await sleep(Number(process.env.HEARTH_TEST_CUT_MS ?? 3000));

    // The link returns.
    await ip('link', 'set', dbHost, 'up');
    const restoredAt = performance.now();
    sending = false;
    await load;
    const backUp = await untilReady(cut, 30_000);
    assert.equal((await send(cut, 'after on the namespaced node')).status, 200);
    let lastHeld = new Map<string, number>();
    // A query sent during the cut waits for TCP's next retransmission, which backs off (doubling
    // from 200 ms): after a long cut on a loaded machine that can be a minute past the link's return.
    const shardsBack = await until(async () => (lastHeld = await shardsHeld()).get(cut.nodeId) === SHARDS / 2, 90_000, async () => `the namespaced node holds half the shards again (${JSON.stringify([...lastHeld])})`);
    const shardsBackSinceRestore = performance.now() - restoredAt;
    await until(async () => (await shardsTrusted(cut)) === SHARDS / 2, 5000, () => 'the namespaced node works its shards again');

    // No acknowledged write lost: every send answered 200 during the cut is in the room.
    const { rows } = await sql<{ body: string }>`
      select json::jsonb->'content'->>'body' as body from events where room_id = ${decodeURIComponent(room)} and type = 'm.room.message'`.execute(db.db);
    const stored = new Set(rows.map((r) => r.body));
    const acked = duringCut.filter((s) => s.status === 200);
    const lost = acked.filter((s) => !stored.has(s.body));
    assert.deepEqual(lost, [], 'every write acknowledged during the cut is committed');
    // Nothing was acknowledged while the link was down: with no way to commit, the node must not answer 200.
    const whileDown = duringCut.filter((s) => s.endedAt < restoredAt);
    assert.ok(whileDown.length >= 3, `sends were tried while the link was down (${whileDown.length})`);
    assert.deepEqual(
      whileDown.filter((s) => s.status === 200),
      [],
      'no write acknowledged while the link was down',
    );
    for (const b of ['before on the namespaced node', 'during the cut on the host node', 'after on the namespaced node']) assert.ok(stored.has(b), b);

    // A send that got no answer may still have been committed once the link returned (its query
    // was in flight): not acknowledged, so not a lost write either way; counted for the record.
    const unanswered = duringCut.filter((s) => s.status !== 200);
    const committedLater = unanswered.filter((s) => stored.has(s.body)).length;
    const statuses = whileDown.reduce<Record<string, number>>((m, s) => ((m[s.status] = (m[s.status] ?? 0) + 1), m), {});
    recordFigures('partition', {
      failed_requests: unanswered.length,
      lost: lost.length,
      not_ready_ms: Math.round(notReady),
      lease_move_ms: Math.round(notReady + takeover),
      ready_again_ms: Math.round(backUp),
    });
    console.log(
      `partition: not ready ${Math.round(notReady)} ms after the cut; self-fenced ${Math.round(notReady + fenced)} ms after; host node held every shard ${Math.round(notReady + takeover)} ms after the cut; ` +
        `ready again ${Math.round(backUp)} ms after the link returned; shards back ${Math.round(shardsBackSinceRestore)} ms after (${Math.round(shardsBack)} ms past ready); ` +
        `link down ${Math.round(restoredAt - cutAt)} ms; sends answered while it was down: ${JSON.stringify(statuses)}; ` +
        `${acked.length} acknowledged (after the link returned) and all stored; ${committedLater} of ${unanswered.length} unanswered committed after the link returned`,
    );
  });
});
