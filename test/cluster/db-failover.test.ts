/**
 * The PostgreSQL primary killed under load (CLUSTER.md 10, tier 2). Three PostgreSQL instances
 * run by Patroni with a synchronous standby (patroni-cluster.ts, with the settings of
 * docs/cluster/patroni.yml) and two Hearth nodes: one finds the primary itself through a
 * multi-host URL, the other goes through haproxy asking Patroni who is primary (when haproxy
 * is installed; otherwise both use the multi-host URL). Clients send a steady load over both
 * nodes, retrying on the other node with the same txnId when a request fails. The primary's
 * postmaster is killed with SIGKILL; Patroni promotes the synchronous standby and the nodes
 * must find it by themselves. Then: no acknowledged event is lost, none is stored twice, each
 * client's /sync saw every event exactly once and nothing else, and both nodes agree on each
 * room's order and take writes again. The longest gap between a client's successful writes is
 * the unavailability.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import postgres from 'postgres';
import { spawnNodes, stopChildNodes, type ChildNode } from './child-nodes.js';
import { median, NEEDS_PG, recordFigures } from './cluster-helpers.js';
import { haproxyAvailable, patroniUnavailable, startPatroniCluster, type PatroniCluster } from './patroni-cluster.js';

const C = '/_matrix/client/v3';
const CLIENTS = 4;
const SPACING_MS = 50;
const KILL_AFTER_MS = 3000;
/** Each client goes on until it has this many writes acknowledged after the kill. */
const WRITES_AFTER_KILL = 15;
/** The load stops after this long even if the failover never ends (the test then fails). */
const LOAD_CAP_MS = 45_000;
/**
 * The reads that check the outcome check what was stored, not how soon (the write gaps measure
 * that): they allow more time than a load request, for a machine loaded by the failover.
 */
const CHECK_TIMEOUT_MS = 15_000;
const SKIP = NEEDS_PG || patroniUnavailable();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Answer {
  status: number;
  body: any;
}

async function call(node: ChildNode, method: string, path: string, token?: string, body?: unknown, timeoutMs = 5000): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  try {
    const res = await fetch(node.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  } catch (e) {
    // fetch's own error says neither which request nor which node.
    throw new Error(`${method} ${path.split('?')[0]} on ${node.url}: ${(e as Error).message}`);
  }
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
  /** How often /sync delivered each message event, and when first. */
  synced: Map<string, number>;
  syncedAt: Map<string, number>;
}

describe('the PostgreSQL primary killed under load', { skip: SKIP }, () => {
  let pg: PatroniCluster | undefined;
  const nodes: ChildNode[] = [];
  const viaHaproxy = haproxyAvailable();

  before(
    async () => {
      pg = await startPatroniCluster({ members: 3, haproxy: viaHaproxy });
      const admin = postgres(pg.multiHostUrl('postgres'), { max: 1, target_session_attrs: 'primary', onnotice: () => {} } as postgres.Options<{}>);
      try {
        await admin.unsafe('create database hearth');
      } finally {
        await admin.end({ timeout: 1 });
      }
      const urls = [pg.multiHostUrl('hearth'), pg.haproxyUrl('hearth') ?? pg.multiHostUrl('hearth')];
      await spawnNodes(2, urls, { server_name: 'failover.test', rate_limits: { enabled: false } }, nodes);
    },
    { timeout: 120_000 },
  );
  after(
    async () => {
      await stopChildNodes(nodes);
      await pg?.stop();
    },
    { timeout: 60_000 },
  );

  /** Tries the nodes in turn from `start` until one answers with something other than a server error. */
  async function retrying(start: number, attempt: (node: ChildNode) => Promise<Answer>, onFail: () => void, deadlineMs = 40_000): Promise<Answer> {
    const end = Date.now() + deadlineMs;
    for (let i = start; ; i++) {
      const node = nodes[i % nodes.length]!;
      try {
        const res = await attempt(node);
        if (res.status < 500) return res;
      } catch {
        /* connection reset or timed out: try the other node */
      }
      onFail();
      if (Date.now() > end) throw new Error('no node answered');
      await sleep(50);
    }
  }

  async function register(name: string): Promise<{ userId: string; token: string }> {
    const body = { username: name, password: `pw-${name}`, auth: { type: 'm.login.dummy' } };
    let res = await call(nodes[0]!, 'POST', `${C}/register`, undefined, body);
    if (res.status === 401) res = await call(nodes[0]!, 'POST', `${C}/register`, undefined, { ...body, auth: { type: 'm.login.dummy', session: res.body.session } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return { userId: res.body.user_id, token: res.body.access_token };
  }

  test('Patroni promotes the synchronous standby, the nodes find it, and no acknowledged event is lost or doubled', { timeout: 120_000 }, async () => {
    const clients: Client[] = [];
    for (let c = 0; c < CLIENTS; c++) {
      const u = await register(`load${c}`);
      clients.push({ index: c, ...u, acked: new Map(), ackedAt: new Map(), ackTimes: [], failedAttempts: 0, synced: new Map(), syncedAt: new Map() });
    }
    const rooms: string[] = [];
    for (let r = 0; r < 2; r++) {
      const res = await call(nodes[r]!, 'POST', `${C}/createRoom`, clients[0]!.token, { preset: 'public_chat' });
      assert.equal(res.status, 200);
      rooms.push(res.body.room_id);
      for (const cl of clients.slice(1)) assert.equal((await call(nodes[cl.index % 2]!, 'POST', `${C}/join/${encodeURIComponent(res.body.room_id)}`, cl.token, {})).status, 200);
    }
    const filter = encodeURIComponent(JSON.stringify({ room: { timeline: { limit: 1000 } }, presence: { types: [] } }));
    const since = new Map<number, string>();
    for (const cl of clients) since.set(cl.index, (await call(nodes[0]!, 'GET', `${C}/sync?timeout=0&filter=${filter}`, cl.token)).body.next_batch);

    let loadDone = false;
    const syncers = clients.map(async (cl) => {
      let token = since.get(cl.index)!;
      const done = () => loadDone && clients.every((o) => [...o.acked.values()].every((id) => cl.synced.has(id)));
      for (let i = cl.index; !done(); i++) {
        const res = await retrying(
          i,
          (node) => call(node, 'GET', `${C}/sync?timeout=1000&since=${encodeURIComponent(token)}&filter=${filter}`, cl.token, undefined, 8000),
          () => {},
        );
        assert.equal(res.status, 200, JSON.stringify(res.body));
        for (const room of Object.values<any>(res.body.rooms?.join ?? {})) {
          for (const ev of room.timeline?.events ?? []) {
            if (ev.type !== 'm.room.message') continue;
            cl.synced.set(ev.event_id, (cl.synced.get(ev.event_id) ?? 0) + 1);
            if (!cl.syncedAt.has(ev.event_id)) cl.syncedAt.set(ev.event_id, performance.now());
          }
        }
        token = res.body.next_batch;
      }
    });

    const before = await pg!.state();
    const oldLeader = before.find((m) => m.role === 'leader')!;
    const syncStandby = before.find((m) => m.role === 'sync_standby')!;
    const t0 = performance.now();
    let killedAt = Infinity;
    const failover = (async () => {
      await sleep(KILL_AFTER_MS);
      pg!.killPostgres(oldLeader.name);
      killedAt = performance.now();
      // Promoted: another member leads and its PostgreSQL runs as primary.
      for (;;) {
        const s = await pg!.state().catch(() => []);
        const leader = s.find((m) => m.role === 'leader' && m.state === 'running');
        if (leader && leader.name !== oldLeader.name) return { promotedMs: performance.now() - killedAt, leader: leader.name };
        if (performance.now() - killedAt > LOAD_CAP_MS) throw new Error(`no new leader: ${JSON.stringify(s)}`);
        await sleep(100);
      }
    })();
    const senders = clients.map(async (cl) => {
      const afterKill = () => cl.ackTimes.filter((t) => t > killedAt).length;
      for (let i = 0; afterKill() < WRITES_AFTER_KILL && performance.now() - t0 < LOAD_CAP_MS; i++) {
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
    const { promotedMs, leader: newLeader } = await failover;
    const loadMs = performance.now() - t0;
    await Promise.race([Promise.all(syncers), sleep(20_000).then(() => Promise.reject(new Error('the /sync clients did not see every event')))]);

    // What the database holds, read back through each node.
    const acked = new Map<string, string>();
    const ackedAt = new Map<string, number>();
    for (const cl of clients) {
      for (const [body, id] of cl.acked) acked.set(id, body);
      for (const [id, at] of cl.ackedAt) ackedAt.set(id, at);
    }
    const orders: string[][][] = [];
    let lost = 0;
    let duplicates = 0;
    for (const node of nodes) {
      const perRoom: string[][] = [];
      const stored = new Set<string>();
      for (const room of rooms) {
        const res = await call(node, 'GET', `${C}/rooms/${encodeURIComponent(room)}/messages?dir=b&limit=1000`, clients[0]!.token, undefined, CHECK_TIMEOUT_MS);
        assert.equal(res.status, 200);
        const msgs = res.body.chunk.filter((ev: any) => ev.type === 'm.room.message').reverse();
        const bodies = msgs.map((ev: any) => ev.content.body as string);
        duplicates = Math.max(duplicates, bodies.length - new Set(bodies).size);
        for (const ev of msgs) {
          stored.add(ev.event_id);
          assert.equal(acked.get(ev.event_id), ev.content.body, `${ev.content.body} (${ev.event_id}) is the acknowledged event`);
        }
        perRoom.push(msgs.map((ev: any) => ev.event_id));
      }
      lost = Math.max(lost, [...acked.keys()].filter((id) => !stored.has(id)).length);
      orders.push(perRoom);
    }
    const syncedTwice = clients.reduce((n, cl) => n + [...cl.synced.values()].filter((k) => k > 1).length, 0);
    const syncLags = clients.flatMap((cl) => [...ackedAt].map(([id, at]) => Math.max(0, (cl.syncedAt.get(id) ?? Infinity) - at)));
    const gaps = clients.map((cl) => Math.max(...cl.ackTimes.slice(1).map((t, i) => t - cl.ackTimes[i]!)));
    const failed = clients.reduce((n, cl) => n + cl.failedAttempts, 0);
    console.log(
      `db failover: ${acked.size} writes acknowledged in ${(loadMs / 1000).toFixed(1)} s; primary ${oldLeader.name} killed at ${((killedAt - t0) / 1000).toFixed(1)} s, ` +
        `${newLeader} (the synchronous standby was ${syncStandby.name}) promoted ${promotedMs.toFixed(0)} ms later; ${failed} attempts failed and were retried; ` +
        `longest gap between a client's writes ${Math.max(...gaps).toFixed(0)} ms (per client: ${gaps.map((g) => g.toFixed(0)).join(', ')}); ` +
        `/sync lag after the acknowledgement p50 ${median(syncLags).toFixed(0)} ms, max ${Math.max(...syncLags).toFixed(0)} ms; lost ${lost}, stored twice ${duplicates}, synced twice ${syncedTwice}; ` +
        `nodes reach PostgreSQL by ${viaHaproxy ? 'multi-host URL and haproxy' : 'multi-host URL'}`,
    );
    recordFigures('db failover', {
      failed_requests: failed,
      lost,
      duplicates: duplicates + syncedTwice,
      longest_gap_ms: Math.round(Math.max(...gaps)),
      promotion_ms: Math.round(promotedMs),
      sync_lag_max_ms: Math.round(Math.max(...syncLags)),
    });

    assert.equal(newLeader, syncStandby.name, 'Patroni promoted the synchronous standby');
    assert.equal(lost, 0, 'no acknowledged write lost');
    assert.equal(duplicates, 0, 'no write stored twice');
    assert.equal(acked.size, clients.reduce((n, cl) => n + cl.acked.size, 0), 'an event id per acknowledged write');
    for (const perRoom of orders) assert.equal(perRoom.flat().length, acked.size, 'nothing stored that was not acknowledged');
    assert.deepEqual(orders[1], orders[0], 'the same order on both nodes');
    for (const cl of clients) {
      for (const id of acked.keys()) assert.equal(cl.synced.get(id), 1, `${cl.userId}'s /sync delivered ${acked.get(id)} ${cl.synced.get(id) ?? 0} times`);
      assert.equal(cl.synced.size, acked.size, `${cl.userId}'s /sync delivered nothing else`);
    }
    assert.ok(Math.max(...gaps) < 20_000, 'writes resumed within 20 s');

    // Both nodes found the new primary by themselves: ready, and each takes a write of its own.
    for (const [n, node] of nodes.entries()) {
      assert.equal((await fetch(`${node.url}/ready`, { signal: AbortSignal.timeout(CHECK_TIMEOUT_MS) })).status, 200, `node ${n} is ready`);
      const res = await call(node, 'PUT', `${C}/rooms/${encodeURIComponent(rooms[0]!)}/send/m.room.message/after-${n}`, clients[0]!.token, { msgtype: 'm.text', body: `after-${n}` }, CHECK_TIMEOUT_MS);
      assert.equal(res.status, 200, `node ${n} takes writes: ${JSON.stringify(res.body)}`);
    }
  });
});
