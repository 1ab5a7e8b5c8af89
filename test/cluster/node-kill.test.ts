/**
 * A node killed under load (CLUSTER.md 10, tier 1): three Hearth processes on one PostgreSQL
 * database, clients sending a steady bounded load round-robin over the nodes and retrying on
 * another node when one fails (with the same txnId, so a retry after an answer that never came
 * cannot make a second event). One node is killed with SIGKILL mid-run. Then: no acknowledged
 * event is lost, none is duplicated, each client's /sync saw every event exactly once, the
 * surviving nodes agree on each room's order, and the dead node's federation shards moved to
 * the others. The longest gap between a client's successful writes is the unavailability.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { connectDatabase, type Database } from '../../src/db/connect.js';
import { freshDatabase } from '../helpers/server.js';
import { spawnNodes, stopChildNodes, type ChildNode } from './child-nodes.js';
import { median, NEEDS_PG, recordFigures } from './cluster-helpers.js';

const C = '/_matrix/client/v3';
const CLIENTS = 4;
const PER_CLIENT = 60;
const SPACING_MS = 40;
const KILL_AFTER_MS = 2000;
/** The load stops after this long even if not every write was made (a slow machine). */
const LOAD_CAP_MS = 20_000;
const TTL_MS = 3000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Answer {
  status: number;
  body: any;
}

async function call(node: ChildNode, method: string, path: string, token?: string, body?: unknown, timeoutMs = 5000): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(node.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

interface Client {
  index: number;
  userId: string;
  token: string;
  /** event id by message body, once acknowledged. */
  acked: Map<string, string>;
  /** When each acknowledged event's answer came. */
  ackedAt: Map<string, number>;
  ackTimes: number[];
  failedAttempts: number;
  /** How often /sync delivered each message event. */
  synced: Map<string, number>;
  syncedAt: Map<string, number>;
  limited: number;
}

describe('a node killed under load', { skip: NEEDS_PG }, () => {
  let fresh: { url: string; drop(): Promise<void> };
  const nodes: ChildNode[] = [];
  let db: Database;
  const alive = new Set([0, 1, 2]);

  before(async () => {
    fresh = await freshDatabase();
    await spawnNodes(3, fresh.url, { server_name: 'kill.test', rate_limits: { enabled: false }, cluster: { lease_ttl_ms: TTL_MS } }, nodes);
    db = await connectDatabase({ url: fresh.url, poolSize: 2 });
  });
  after(async () => {
    await stopChildNodes(nodes);
    await db?.close();
    await fresh?.drop();
  });

  /** Tries the nodes in turn from `start` until one answers with something other than a server error. */
  async function retrying(start: number, attempt: (node: ChildNode) => Promise<Answer>, onFail: () => void, deadlineMs = 20_000): Promise<Answer> {
    const end = Date.now() + deadlineMs;
    for (let i = start; ; i++) {
      const node = nodes[i % nodes.length]!;
      try {
        const res = await attempt(node);
        if (res.status < 500) return res;
      } catch {
        /* connection refused or reset, or timed out: try the next node */
      }
      onFail();
      if (Date.now() > end) throw new Error('no node answered');
      await sleep(20);
    }
  }

  /** Polls the lease table until the two survivors hold 32 shards each; the time since `killedAt`. */
  async function untilShardsMoved(killedAt: number): Promise<number> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const { rows } = await sql<{ holder: string; n: number }>`
        select holder, count(*)::int as n from cluster_leases
        where name like 'federation.shard:%' and expires_ts > (extract(epoch from clock_timestamp()) * 1000)::bigint
        group by holder`.execute(db.db);
      const held = new Map(rows.map((r) => [r.holder, r.n]));
      if (held.size === 2 && !held.has(nodes[1]!.nodeId) && [...held.values()].every((n) => n === 32)) return performance.now() - killedAt;
      if (Date.now() > deadline) throw new Error(`shards not moved: ${JSON.stringify([...held])}`);
      await sleep(100);
    }
  }

  async function register(name: string): Promise<{ userId: string; token: string }> {
    const body = { username: name, password: `pw-${name}`, auth: { type: 'm.login.dummy' } };
    let res = await call(nodes[0]!, 'POST', `${C}/register`, undefined, body);
    if (res.status === 401) res = await call(nodes[0]!, 'POST', `${C}/register`, undefined, { ...body, auth: { type: 'm.login.dummy', session: res.body.session } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return { userId: res.body.user_id, token: res.body.access_token };
  }

  test('no acknowledged event is lost or doubled, every /sync sees each once, and the survivors agree on the order', async () => {
    const clients: Client[] = [];
    for (let c = 0; c < CLIENTS; c++) {
      const u = await register(`load${c}`);
      clients.push({ index: c, ...u, acked: new Map(), ackedAt: new Map(), ackTimes: [], failedAttempts: 0, synced: new Map(), syncedAt: new Map(), limited: 0 });
    }
    const rooms: string[] = [];
    for (let r = 0; r < 2; r++) {
      const res = await call(nodes[r]!, 'POST', `${C}/createRoom`, clients[0]!.token, { preset: 'public_chat' });
      assert.equal(res.status, 200);
      rooms.push(res.body.room_id);
      for (const cl of clients.slice(1)) assert.equal((await call(nodes[cl.index % 3]!, 'POST', `${C}/join/${encodeURIComponent(res.body.room_id)}`, cl.token, {})).status, 200);
    }
    const filter = encodeURIComponent(JSON.stringify({ room: { timeline: { limit: 1000 } }, presence: { types: [] } }));
    const since = new Map<number, string>();
    for (const cl of clients) since.set(cl.index, (await call(nodes[0]!, 'GET', `${C}/sync?timeout=0&filter=${filter}`, cl.token)).body.next_batch);

    let loadDone = false;
    const total = () => clients.reduce((n, cl) => n + cl.acked.size, 0);
    const syncers = clients.map(async (cl) => {
      let token = since.get(cl.index)!;
      const deadline = () => loadDone && [...clients].every((o) => [...o.acked.values()].every((id) => cl.synced.has(id)));
      for (let i = cl.index; !deadline(); i++) {
        const res = await retrying(
          i,
          (node) => call(node, 'GET', `${C}/sync?timeout=1000&since=${encodeURIComponent(token)}&filter=${filter}`, cl.token, undefined, 8000),
          () => {},
          30_000,
        );
        assert.equal(res.status, 200, JSON.stringify(res.body));
        for (const room of Object.values<any>(res.body.rooms?.join ?? {})) {
          if (room.timeline?.limited) cl.limited++;
          for (const ev of room.timeline?.events ?? []) {
            if (ev.type !== 'm.room.message') continue;
            cl.synced.set(ev.event_id, (cl.synced.get(ev.event_id) ?? 0) + 1);
            if (!cl.syncedAt.has(ev.event_id)) cl.syncedAt.set(ev.event_id, performance.now());
          }
        }
        token = res.body.next_batch;
      }
    });

    const t0 = performance.now();
    const killer = (async () => {
      await sleep(KILL_AFTER_MS);
      nodes[1]!.proc.kill('SIGKILL');
      alive.delete(1);
      return performance.now();
    })();
    const shardsMoved = killer.then((at) => untilShardsMoved(at));
    const senders = clients.map(async (cl) => {
      for (let i = 0; i < PER_CLIENT && performance.now() - t0 < LOAD_CAP_MS; i++) {
        const body = `c${cl.index}-${i}`;
        const room = rooms[i % 2]!;
        const res = await retrying(
          cl.index + i,
          (node) => call(node, 'PUT', `${C}/rooms/${encodeURIComponent(room)}/send/m.room.message/${body}`, cl.token, { msgtype: 'm.text', body }),
          () => cl.failedAttempts++,
        );
        assert.equal(res.status, 200, JSON.stringify(res.body));
        const at = performance.now();
        cl.acked.set(body, res.body.event_id);
        cl.ackedAt.set(res.body.event_id, at);
        cl.ackTimes.push(at);
        await sleep(SPACING_MS);
      }
    });
    await Promise.all(senders);
    loadDone = true;
    const killedAt = await killer;
    const loadMs = performance.now() - t0;
    await Promise.race([Promise.all(syncers), sleep(20_000).then(() => Promise.reject(new Error('the /sync clients did not see every event')))]);

    // Unavailability: the longest gap between two successful writes of one client.
    const gaps = clients.map((cl) => Math.max(...cl.ackTimes.slice(1).map((t, i) => t - cl.ackTimes[i]!)));
    const failed = clients.reduce((n, cl) => n + cl.failedAttempts, 0);
    const syncLags = clients.flatMap((cl) => [...cl.ackedAt].flatMap(([id, at]) => clients.map((o) => Math.max(0, (o.syncedAt.get(id) ?? Infinity) - at))));
    console.log(
      `node kill: ${total()} writes acknowledged in ${(loadMs / 1000).toFixed(1)} s, kill at ${((killedAt - t0) / 1000).toFixed(1)} s; ` +
        `${failed} attempts failed and were retried; longest gap between a client's writes ${Math.max(...gaps).toFixed(0)} ms (per client: ${gaps.map((g) => g.toFixed(0)).join(', ')}); ` +
        `/sync lag after the acknowledgement p50 ${median(syncLags).toFixed(0)} ms, max ${Math.max(...syncLags).toFixed(0)} ms`,
    );
    assert.ok(Math.max(...gaps) < 10_000, 'writes resumed within 10 s');
    for (const cl of clients) assert.ok(cl.ackTimes.some((t) => t > killedAt + 500), `client ${cl.index} kept writing after the kill`);

    // Every acknowledged event, once, in the same order on both surviving nodes.
    const acked = new Map<string, string>();
    for (const cl of clients) for (const [body, id] of cl.acked) acked.set(id, body);
    assert.equal(acked.size, total(), 'an event id per acknowledged write');
    const stored = new Set<string>();
    let duplicates = 0;
    for (const room of rooms) {
      const orders: string[][] = [];
      for (const n of [...alive]) {
        const res = await call(nodes[n]!, 'GET', `${C}/rooms/${encodeURIComponent(room)}/messages?dir=b&limit=1000`, clients[0]!.token);
        assert.equal(res.status, 200);
        const msgs = res.body.chunk.filter((ev: any) => ev.type === 'm.room.message').reverse();
        const bodies = msgs.map((ev: any) => ev.content.body as string);
        duplicates = Math.max(duplicates, bodies.length - new Set(bodies).size);
        for (const ev of msgs) stored.add(ev.event_id);
        for (const ev of msgs) assert.equal(acked.get(ev.event_id), ev.content.body, `${ev.content.body} is the acknowledged event`);
        orders.push(msgs.map((ev: any) => ev.event_id));
      }
      assert.equal(duplicates, 0, 'no write stored twice');
      const inRoom = [...acked].filter(([, body]) => Number(body.split('-')[1]) % 2 === rooms.indexOf(room)).length;
      assert.equal(orders[0]!.length, inRoom, 'every acknowledged write is in the room');
      assert.deepEqual(orders[1], orders[0], 'the same order on every surviving node');
    }
    for (const cl of clients) {
      for (const id of acked.keys()) assert.equal(cl.synced.get(id), 1, `${cl.userId}'s /sync delivered ${acked.get(id)} ${cl.synced.get(id) ?? 0} times`);
      assert.equal(cl.synced.size, acked.size, 'and nothing else');
    }

    // The dead node's federation shards went to the two others, evenly, once its leases expired.
    const movedMs = await shardsMoved;
    recordFigures('node kill', {
      failed_requests: failed,
      lost: [...acked.keys()].filter((id) => !stored.has(id)).length,
      duplicates: duplicates + clients.reduce((n, cl) => n + [...cl.synced.values()].filter((k) => k > 1).length, 0),
      longest_gap_ms: Math.round(Math.max(...gaps)),
      lease_move_ms: Math.round(movedMs),
      sync_lag_max_ms: Math.round(Math.max(...syncLags)),
    });
    console.log(`node kill: its federation shards moved ${(movedMs / 1000).toFixed(1)} s after the kill (lease TTL ${TTL_MS / 1000} s)`);
    assert.ok(movedMs < TTL_MS * 4, 'within a few lease lifetimes');
  });
});
