// `node dist/bench/graph.js` (also run by `npm run bench`): the room graph's costs, in process.
// - a fork with 1,000 state events on each side (the same keys, so all of them conflict), made by
//   another server and handed to the inbound path: the time to resolve the room's state when the
//   second side arrives, and the resolution alone over the stored events;
// - a room with a long auth history (1,000 members who each changed their name 10 times) and a small fork: resolution on the auth chain
//   index against walking every auth chain;
// - fan-out: a message into a room where 50 members long-poll /sync, time until each has it.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { loadConfig } from '../src/config/load.js';
import { authEventSelection } from '../src/core/auth-rules.js';
import { finaliseEvent, type EventDraft } from '../src/core/event-format.js';
import { getRoomVersion } from '../src/core/room-versions.js';
import { generateSigningKey } from '../src/core/signing.js';
import { stateKey, type JsonObject, type Pdu } from '../src/core/types.js';
import { createHomeserver, type Homeserver } from '../src/homeserver.js';
import { createLogger } from '../src/logger.js';
import { BatchStates } from '../src/rooms/pipeline/batch-states.js';
import { AuthChainIndex } from '../src/rooms/state/auth-chain-index.js';
import { EventStore } from '../src/rooms/events/event-store.js';
import { resolveStates, resolveWithIndex } from '../src/rooms/pipeline/resolve-states.js';
import { BenchClient, median, percentile } from './client.js';
import { RawConnection } from './raw-client.js';

const SIDE = Number(process.env.HEARTH_BENCH_FORK_SIDE ?? 1000);
const POLLERS = Number(process.env.HEARTH_BENCH_POLLERS ?? 50);
const MEMBERS = Number(process.env.HEARTH_BENCH_HISTORY_MEMBERS ?? 1000);
const NAME_CHANGES = Number(process.env.HEARTH_BENCH_HISTORY_NAME_CHANGES ?? 10);

async function start(): Promise<{ hs: Homeserver; url: string; dir: string; secret: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-bench-graph-'));
  const file = join(dir, 'hearth.yaml');
  const secret = 'bench-secret';
  writeFileSync(
    file,
    YAML.stringify({ server_name: 'bench.test', listen: '127.0.0.1:0', data_dir: dir, registration_shared_secret: secret, rate_limits: { enabled: false }, log_level: 'silent' }),
  );
  const loaded = loadConfig({ file, env: {} });
  const hs = await createHomeserver(loaded, { logger: createLogger('silent') });
  const url = await hs.start();
  return { hs, url, dir, secret };
}

type BuiltEvent = { id: string; depth: number; pdu: Pdu };

/** A room made by another server ("fork.test"), built event by event and handed to the inbound path. */
const remoteKey = generateSigningKey();

function remoteRoom(hs: Homeserver, tag: string) {
  const key = remoteKey;
  const server = 'fork.test';
  const core = hs.ctx.services.rooms.core;
  core.keyRing.add(server, key.keyId, key.publicKey);
  const version = getRoomVersion('10')!;
  const roomId = `!${tag}${Date.now()}:${server}`;
  let ts = Date.now();
  const make = (sender: string, type: string, sk: string | undefined, content: JsonObject, prev: { id: string; depth: number }[], auth: Map<string, string>): BuiltEvent => {
    const draft: EventDraft = {
      room_id: roomId, sender, type, content, origin_server_ts: ts++, depth: Math.max(0, ...prev.map((p) => p.depth)) + 1,
      prev_events: prev.map((p) => p.id), auth_events: [],
    };
    if (sk !== undefined) draft.state_key = sk;
    draft.auth_events = authEventSelection(draft as Pdu, version)
      .map(([t, k]) => auth.get(stateKey(t, k)))
      .filter((x): x is string => x !== undefined);
    const done = finaliseEvent(draft, version, server, key);
    return { id: done.eventId, depth: draft.depth, pdu: done.pdu as Pdu };
  };
  const auth = new Map<string, string>();
  const chain: BuiltEvent[] = [];
  /** The next event of the room's one branch. */
  const push = (sender: string, type: string, sk: string | undefined, content: JsonObject): BuiltEvent => {
    const ev = make(sender, type, sk, content, chain.length ? [chain[chain.length - 1]!] : [], auth);
    if (sk !== undefined) auth.set(stateKey(type, sk), ev.id);
    chain.push(ev);
    return ev;
  };
  const receive = (pdus: Pdu[]) => core.inbound.receive(roomId, { pdus }, { roomVersion: '10' });
  return { core, version, roomId, make, auth, chain, push, receive };
}

async function fork(hs: Homeserver): Promise<void> {
  const { core, roomId, make, auth, chain, push, receive } = remoteRoom(hs, 'fork');
  const [a, b] = ['@a:fork.test', '@b:fork.test'];
  push(a, 'm.room.create', '', { creator: a, room_version: '10' });
  push(a, 'm.room.member', a, { membership: 'join' });
  push(a, 'm.room.power_levels', '', { users: { [a]: 100, [b]: 100 } });
  push(a, 'm.room.join_rules', '', { join_rule: 'public' });
  push(b, 'm.room.member', b, { membership: 'join' });
  const base = chain[chain.length - 1]!;
  const side = (sender: string) => {
    const out: { id: string; depth: number; pdu: Pdu }[] = [];
    let prev = base;
    for (let i = 0; i < SIDE; i++) {
      prev = make(sender, 'org.example.setting', `k${i}`, { by: sender, i }, [prev], auth);
      out.push(prev);
    }
    return out;
  };
  const sideA = side(a);
  const sideB = side(b);
  await receive(chain.map((c) => c.pdu));
  let t = performance.now();
  await receive(sideA.map((e) => e.pdu));
  const linear = performance.now() - t;
  // The second side, all but its last event, then the last one alone: the room is forked throughout.
  t = performance.now();
  await receive(sideB.slice(0, -1).map((e) => e.pdu));
  const forkedBatch = performance.now() - t;
  t = performance.now();
  await receive([sideB[sideB.length - 1]!.pdu]);
  const last = performance.now() - t;

  core.heads.invalidate(roomId);
  const head = (await core.heads.get(roomId))!;
  const planner = new BatchStates(hs.ctx.db, core.events, core.groups, head.version, new AuthChainIndex().overlay());
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    const s = performance.now();
    await planner.stateBefore([sideA[sideA.length - 1]!.id, sideB[sideB.length - 1]!.id]);
    times.push(performance.now() - s);
  }
  console.log(`  fork, ${SIDE} state events on one side, linear batch: ${linear.toFixed(0)} ms (${((linear / SIDE) * 1000).toFixed(0)} µs/event)`);
  console.log(`  fork, the other side's ${SIDE - 1} events as one batch while forked: ${forkedBatch.toFixed(0)} ms`);
  console.log(`  fork, the last event of the other side (one resolution): ${last.toFixed(1)} ms`);
  console.log(`  resolution of the two ${SIDE}-event sides over stored events: ${median(times).toFixed(1)} ms (median of 3)`);
}

/**
 * A room with a long auth history (MEMBERS joins, a power levels change every 20 of them), then a
 * fork of two topic changes: resolving it walks every auth chain back to the create event, or
 * compares a few integers per chain on the auth chain index.
 */
async function longHistory(hs: Homeserver): Promise<void> {
  const { core, version, make, auth, chain, push, receive } = remoteRoom(hs, 'long');
  const a = '@a:fork.test';
  push(a, 'm.room.create', '', { creator: a, room_version: '10' });
  push(a, 'm.room.member', a, { membership: 'join' });
  const levels: Record<string, number> = { [a]: 100 };
  push(a, 'm.room.power_levels', '', { users: { ...levels } });
  push(a, 'm.room.join_rules', '', { join_rule: 'public' });
  for (let i = 0; i < MEMBERS; i++) {
    const u = `@m${i}:fork.test`;
    push(u, 'm.room.member', u, { membership: 'join' });
    // Profile changes: each is a new member event on the member's auth chain.
    for (let n = 1; n <= NAME_CHANGES; n++) push(u, 'm.room.member', u, { membership: 'join', displayname: `m${i} (${n})` });
    if (i % 20 === 19) {
      levels[u] = 10;
      push(a, 'm.room.power_levels', '', { users: { ...levels } });
    }
  }
  for (let i = 0; i < chain.length; i += 200) {
    const bad = (await receive(chain.slice(i, i + 200).map((e) => e.pdu))).filter((r) => r.status !== 'accepted');
    if (bad.length > 0) throw new Error(`long history: ${JSON.stringify(bad[0])}`);
  }
  const tip = chain[chain.length - 1]!;
  const x = make(a, 'm.room.topic', '', { topic: 'x' }, [tip], auth);
  const y = make(a, 'm.room.topic', '', { topic: 'y' }, [tip], auth);
  await receive([x.pdu]);
  const t = performance.now();
  const [r] = await receive([y.pdu]);
  const merge = performance.now() - t;
  if (r?.status !== 'accepted') throw new Error(`long history: the fork's second side was ${JSON.stringify(r)}`);

  // Warm: the server's caches; cold: an event cache and an index cache of its own, as after a restart.
  const warmLoad = (ids: string[]) => core.events.getMany(ids);
  const sets = await Promise.all([x.id, y.id].map(async (id) => core.groups.load((await core.events.get(id))!.stateGroup!)));
  const warmIndex = new AuthChainIndex();
  const timed = async (f: () => Promise<unknown>): Promise<number> => {
    const s = performance.now();
    await f();
    return performance.now() - s;
  };
  const viaIndex = (index: AuthChainIndex, load: typeof warmLoad) =>
    resolveWithIndex(version, sets, load, { db: hs.ctx.db, chains: index.overlay(), batch: () => undefined }, false);
  const coldLoad = () => {
    const store = new EventStore(hs.ctx);
    return (ids: string[]) => store.getMany(ids);
  };
  await viaIndex(warmIndex, warmLoad);
  const runs = { indexWarm: [] as number[], indexCold: [] as number[], walkWarm: [] as number[], walkCold: [] as number[] };
  for (let i = 0; i < 5; i++) {
    runs.indexWarm.push(await timed(() => viaIndex(warmIndex, warmLoad)));
    runs.indexCold.push(await timed(() => viaIndex(new AuthChainIndex(), coldLoad())));
    runs.walkWarm.push(await timed(() => resolveStates(version, sets, warmLoad)));
    runs.walkCold.push(await timed(() => resolveStates(version, sets, coldLoad())));
  }
  console.log(`  long auth history (${MEMBERS} joins, ${MEMBERS * NAME_CHANGES} display name changes, ${Math.floor(MEMBERS / 20)} power levels changes), a fork of two topics: the second topic received in ${merge.toFixed(1)} ms`);
  const m = (xs: number[]) => median(xs).toFixed(1);
  console.log(`    resolution on the auth chain index: ${m(runs.indexWarm)} ms, with cold caches ${m(runs.indexCold)} ms; walking every auth chain: ${m(runs.walkWarm)} ms, cold ${m(runs.walkCold)} ms (medians of 5)`);
}

async function fanout(url: string, secret: string): Promise<void> {
  const client = new BenchClient(url, 8);
  const sender = await client.registerUser('fan_sender', secret);
  const room = await client.ok<{ room_id: string }>('POST', '/_matrix/client/v3/createRoom', { preset: 'public_chat' }, sender.token);
  const members: { userId: string; token: string; conn: RawConnection; since: string }[] = [];
  for (let i = 0; i < POLLERS; i++) {
    const u = await client.registerUser(`fan${i}`, secret);
    await client.ok('POST', `/_matrix/client/v3/join/${encodeURIComponent(room.room_id)}`, {}, u.token);
    members.push({ ...u, conn: await RawConnection.open(url), since: '' });
  }
  type SyncBody = { next_batch: string; rooms?: { join?: Record<string, { timeline?: { events?: { content?: { body?: string } }[] } }> } };
  for (const m of members) {
    const r = await m.conn.call<SyncBody>('GET', '/_matrix/client/v3/sync?timeout=0', undefined, m.token);
    m.since = r.body.next_batch;
  }
  const out = await RawConnection.open(url);
  const lat: number[] = [];
  const lastOfRound: number[] = [];
  /** Long-polls until the round's message arrives (a poll may end early for a presence change): when it did. */
  const receive = async (m: (typeof members)[number], body: string): Promise<number> => {
    for (;;) {
      const r = await m.conn.call<SyncBody>('GET', `/_matrix/client/v3/sync?timeout=30000&since=${encodeURIComponent(m.since)}`, undefined, m.token);
      m.since = r.body.next_batch;
      const events = r.body.rooms?.join?.[room.room_id]?.timeline?.events ?? [];
      if (events.some((e) => e.content?.body === body)) return performance.now();
    }
  };
  for (let round = 0; round < 20; round++) {
    const body = `fan ${round}`;
    const polls = members.map((m) => receive(m, body));
    await new Promise((r) => setTimeout(r, 100));
    const t0 = performance.now();
    await out.call('PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(room.room_id)}/send/m.room.message/fan${round}`, { msgtype: 'm.text', body }, sender.token);
    const done = (await Promise.all(polls)).map((t) => t - t0);
    lat.push(...done);
    lastOfRound.push(Math.max(...done));
  }
  lat.sort((x, y) => x - y);
  console.log(`  fan-out to ${POLLERS} long-polling members: p50 ${percentile(lat, 50).toFixed(1)} ms, p99 ${percentile(lat, 99).toFixed(1)} ms, last of each round (median) ${median(lastOfRound).toFixed(1)} ms (target p50 <= 20)`);
  for (const m of members) m.conn.close();
  out.close();
  await client.close();
}

async function main(): Promise<void> {
  console.log('Room graph benchmarks (SQLite, in process)');
  const { hs, url, dir, secret } = await start();
  try {
    await fanout(url, secret);
    await fork(hs);
    await longHistory(hs);
  } finally {
    await hs.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
