// `npm run bench:federation`: Hearth servers federating on loopback, with stand-ins for other
// servers (fake-server.ts) whose events are signed here.
//   1. join: a room of MEMBERS members and EVENTS events on a.test (in process, built through its
//      inbound path), joined by a user of b.test (its own process): time until the join returns,
//      until the user's first message reaches a.test, until b.test has the room's full state
//      (/members answers; with a partial-state join, after the resync), and b.test's peak RSS;
//   2. unreachable: sequential sends into a room whose members include users of 50 servers that
//      refuse connections, against the same room after those users left (so its servers are not
//      sent to): messages per second and CPU per send, alternating rounds;
//   3. inbound: 1,000 PDUs in 10 rooms sent to a.test as 20 transactions of 50.
// HEARTH_BENCH_ONLY=join|unreachable|inbound runs one of them; HEARTH_BENCH_PROF_DIR=DIR has b.test
// write a CPU profile there. Sizes: HEARTH_BENCH_FED_MEMBERS, _EVENTS, _DOWN, _SENDS;
// HEARTH_BENCH_FED_NO_SENDER=1 measures scenario 2 with a.test's federation sender stopped.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { loadConfig } from '../src/config/load.js';
import type { Pdu } from '../src/core/types.js';
import { createHomeserver, type Homeserver } from '../src/homeserver.js';
import { createLogger } from '../src/logger.js';
import { BenchClient, cpuMs, freePort, median, percentile, rssMb } from './client.js';
import { FakeServer, RoomChain } from './fake-server.js';
import { RawConnection } from './raw-client.js';
import { startServerProcess } from './server-process.js';

const ONLY = process.env.HEARTH_BENCH_ONLY;
const MEMBERS = Number(process.env.HEARTH_BENCH_FED_MEMBERS ?? 5000);
const EVENTS = Number(process.env.HEARTH_BENCH_FED_EVENTS ?? 10000);
const DOWN_SERVERS = Number(process.env.HEARTH_BENCH_FED_DOWN ?? 50);
const SENDS = Number(process.env.HEARTH_BENCH_FED_SENDS ?? 125);
/** Diagnostic: stop a.test's federation sender before the sends are measured (what the members cost without it). */
const NO_SENDER = process.env.HEARTH_BENCH_FED_NO_SENDER === '1';
/** Where b.test writes a CPU profile (of the join scenario), when set. */
const PROF_DIR = process.env.HEARTH_BENCH_PROF_DIR;
const SECRET = 'bench-secret';

interface InProcess {
  hs: Homeserver;
  url: string;
  client: BenchClient;
  stop(): Promise<void>;
}

/** A Hearth server in this process, on `port`, resolving other servers by `resolve`. */
async function startInProcess(serverName: string, port: number, resolve: Record<string, string>): Promise<InProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-bench-fed-'));
  const file = join(dir, 'hearth.yaml');
  writeFileSync(
    file,
    YAML.stringify({
      server_name: serverName, listen: `127.0.0.1:${port}`, data_dir: dir, registration_shared_secret: SECRET,
      rate_limits: { enabled: false }, log_level: 'silent', federation: { resolve },
    }),
  );
  const hs = await createHomeserver(loadConfig({ file, env: {} }), { logger: createLogger('silent') });
  const url = await hs.start();
  const client = new BenchClient(url, 4);
  return {
    hs, url, client,
    async stop() {
      await client.close();
      await hs.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A public room made by a new local user: the user, and the room's chain to continue. */
async function localRoom(server: InProcess, localpart: string): Promise<{ user: { userId: string; token: string }; chain: RoomChain }> {
  const user = await server.client.registerUser(localpart, SECRET);
  return { user, chain: await chainOf(server, user.token) };
}

async function chainOf(server: InProcess, token: string): Promise<RoomChain> {
  const { room_id } = await server.client.ok<{ room_id: string }>('POST', '/_matrix/client/v3/createRoom', { preset: 'public_chat' }, token);
  const core = server.hs.ctx.services.rooms.core;
  core.heads.invalidate(room_id);
  const head = (await core.heads.get(room_id))!;
  return new RoomChain(room_id, head, head.version);
}

/** Hands `pdus` to the server's inbound path in batches, as the sending servers' transactions would. */
async function receiveAll(server: InProcess, roomId: string, pdus: Pdu[], batch = 200): Promise<void> {
  const inbound = server.hs.ctx.services.rooms.core.inbound;
  for (let i = 0; i < pdus.length; i += batch) {
    const bad = (await inbound.receive(roomId, { pdus: pdus.slice(i, i + batch) })).filter((r) => r.status !== 'accepted');
    if (bad.length > 0) throw new Error(`room ${roomId}: ${JSON.stringify(bad[0])}`);
  }
}

const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

// ---- 1. a big room joined over federation ----

async function bigRoomJoin(): Promise<void> {
  console.log(`1. Joining a room of ${MEMBERS} members and ${EVENTS} events over federation`);
  const fake = await new FakeServer('fake.test').listen();
  const portA = await freePort();
  const dirB = mkdtempSync(join(tmpdir(), 'hearth-bench-fed-b-'));
  const b = await startServerProcess({
    dir: dirB,
    nodeArgs: PROF_DIR ? ['--cpu-prof', `--cpu-prof-dir=${PROF_DIR}`] : [],
    env: { HEARTH_SERVER_NAME: 'b.test', HEARTH_FEDERATION_RESOLVE: `a.test=http://127.0.0.1:${portA},fake.test=${fake.url}` },
  });
  const clientB = new BenchClient(b.url, 2);
  let a: InProcess | undefined;
  try {
    a = await startInProcess('a.test', portA, { 'b.test': b.url, 'fake.test': fake.url });
    // On a.test: the room, its members (users of fake.test, joined through a.test's inbound path)
    // and messages, one after another as a busy room's history is.
    const t0 = performance.now();
    const { chain } = await localRoom(a, 'alice');
    const pdus: Pdu[] = [];
    const base = chain.state.size;
    const joins = Math.max(1, MEMBERS - 1);
    const messages = Math.max(0, EVENTS - base - joins);
    for (let i = 0; i < joins || i < messages; i++) {
      if (i < joins) pdus.push(chain.join(fake, fake.user(`m${i}`)).pdu);
      if (i < messages) pdus.push(chain.next(fake, fake.user(`m${i % joins}`), 'm.room.message', { msgtype: 'm.text', body: `history ${i}` }).pdu);
    }
    await receiveAll(a, chain.roomId, pdus);
    console.log(`  setup: ${base + pdus.length} events on a.test in ${s(performance.now() - t0)}`);

    // a.test's part of a join: the room's state and its auth chain gathered and serialised, as
    // send_join answers them (here through /state, asked by fake.test, a server in the room).
    const caller = fake.clientTo('a.test', a.url);
    const t1 = performance.now();
    const st = await caller.get<{ pdus?: unknown[]; auth_chain?: unknown[] }>(`/_matrix/federation/v1/state/${encodeURIComponent(chain.roomId)}?event_id=${encodeURIComponent(chain.last)}`);
    const answered = performance.now() - t1;
    await caller.close();
    if (st.status !== 200) throw new Error(`/state: ${st.status} ${JSON.stringify(st.body).slice(0, 200)}`);
    console.log(`  a.test answers the room's state (${st.body.pdus?.length} events, auth chain ${st.body.auth_chain?.length}) in ${s(answered)}`);

    const secretB = (YAML.parse(readFileSync(join(dirB, 'hearth.yaml'), 'utf8')) as { registration_shared_secret: string }).registration_shared_secret;
    const bob = await clientB.registerUser('bob', secretB);
    const pid = b.proc.pid!;
    const before = rssMb(pid);
    const cpu0 = cpuMs(pid);
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, rssMb(pid))), 50);
    try {
      const start = performance.now();
      await clientB.ok('POST', `/_matrix/client/v3/join/${encodeURIComponent(chain.roomId)}?server_name=a.test`, {}, bob.token);
      const joined = performance.now() - start;
      const joinCpu = cpuMs(pid) - cpu0;
      const sent = await clientB.ok<{ event_id: string }>('PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(chain.roomId)}/send/m.room.message/first`, { msgtype: 'm.text', body: 'hello from b' }, bob.token);
      const events = a.hs.ctx.services.rooms.core.events;
      const deadline = Date.now() + 60_000;
      while (!(await events.get(sent.event_id))) {
        if (Date.now() > deadline) throw new Error('the message from b.test did not reach a.test in 60 s');
        await new Promise((r) => setTimeout(r, 10));
      }
      const reached = performance.now() - start;
      // /members waits for the room's full state (a partial-state join's resync).
      const members = await clientB.ok<{ chunk: unknown[] }>('GET', `/_matrix/client/v3/rooms/${encodeURIComponent(chain.roomId)}/members`, undefined, bob.token);
      const full = performance.now() - start;
      peak = Math.max(peak, rssMb(pid));
      console.log(`  join returned after ${s(joined)}; b.test's CPU meanwhile ${s(joinCpu)}`);
      console.log(`  the user's first message reached a.test ${s(reached)} after the join began (target < 3 s)`);
      console.log(`  b.test had the room's full state (/members: ${members.chunk.length} members) ${s(full)} after the join began (target < 30 s)`);
      console.log(`  b.test RSS: ${before.toFixed(0)} MB before, peak ${peak.toFixed(0)} MB, ${rssMb(pid).toFixed(0)} MB after`);
    } finally {
      clearInterval(sampler);
    }
  } finally {
    await clientB.close();
    await a?.stop();
    await b.stop();
    await fake.close();
    rmSync(dirB, { recursive: true, force: true });
  }
}

// ---- 2. sends into a room with members on unreachable servers ----

/** Sequential sends by one client on one connection: messages per second, and this process's CPU ms per send. */
async function sendRound(conn: RawConnection, token: string, roomId: string, n: number, tag: string): Promise<{ rate: number; cpu: number }> {
  const path = `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/`;
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  for (let i = 0; i < n; i++) {
    const r = await conn.call('PUT', `${path}${tag}-${i}`, { msgtype: 'm.text', body: `${tag} ${i}` }, token);
    if (r.status !== 200) throw new Error(`send: ${r.status} ${JSON.stringify(r.body)}`);
  }
  const wall = performance.now() - start;
  const cpu = process.cpuUsage(cpu0);
  return { rate: (n * 1000) / wall, cpu: (cpu.user + cpu.system) / 1000 / n };
}

async function unreachable(): Promise<void> {
  const ROUNDS = 16;
  console.log(`2. Sends into a room with members on ${DOWN_SERVERS} servers that refuse connections`);
  const closed = `http://127.0.0.1:${await freePort()}`;
  const down = Array.from({ length: DOWN_SERVERS }, (_, i) => new FakeServer(`down${i}.test`));
  const a = await startInProcess('a.test', await freePort(), Object.fromEntries(down.map((d) => [d.serverName, closed])));
  const conn = await RawConnection.open(a.url);
  try {
    const core = a.hs.ctx.services.rooms.core;
    for (const d of down) core.keyRing.add(d.serverName, d.key.keyId, d.key.publicKey);
    const { user, chain } = await localRoom(a, 'alice');
    const quiet = await chainOf(a, user.token);
    // The same members in both rooms; in the second they have left again, so their servers are not sent to.
    const joins: Pdu[] = [];
    const leaves: Pdu[] = [];
    for (const d of down) {
      for (let i = 0; i < 2; i++) {
        joins.push(chain.join(d, d.user(`u${i}`)).pdu);
        leaves.push(quiet.join(d, d.user(`u${i}`)).pdu);
      }
    }
    for (const d of down) for (let i = 0; i < 2; i++) leaves.push(quiet.next(d, d.user(`u${i}`), 'm.room.member', { membership: 'leave' }, d.user(`u${i}`)).pdu);
    await receiveAll(a, chain.roomId, joins);
    await receiveAll(a, quiet.roomId, leaves);

    // Outbound requests (attempts to reach the servers that are down), counted while measuring.
    const client = a.hs.ctx.services.federation.client;
    const request = client.request.bind(client);
    let attempts = 0;
    client.request = (destination, req) => {
      attempts++;
      return request(destination, req);
    };
    // The first sends find every server down (after them each is backed off) and warm the JIT.
    await sendRound(conn, user.token, chain.roomId, 200, 'warm');
    await sendRound(conn, user.token, quiet.roomId, 200, 'warm');
    const attemptsBefore = attempts;
    if (NO_SENDER) await a.hs.ctx.services.federation.sender.stop();
    const withDown: { rate: number; cpu: number }[] = [];
    const without: { rate: number; cpu: number }[] = [];
    const started = performance.now();
    // Alternating, the order swapped every round (ABBA), so that drift in the machine's load falls on both.
    for (let round = 0; round < ROUNDS; round++) {
      const pair = [
        async () => without.push(await sendRound(conn, user.token, quiet.roomId, SENDS, `q${round}`)),
        async () => withDown.push(await sendRound(conn, user.token, chain.roomId, SENDS, `d${round}`)),
      ];
      if (round % 2 === 1) pair.reverse();
      for (const f of pair) await f();
    }
    const elapsed = performance.now() - started;
    const tried = attempts - attemptsBefore;
    const statuses = a.hs.ctx.services.federation.sender.statuses().filter((st) => st.destination.startsWith('down'));
    const backingOff = statuses.filter((st) => st.state === 'backing_off').length;
    // Each round's pair compared (the machine's load drifts between rounds far more than within one pair).
    const ratio = (f: (x: { rate: number; cpu: number }) => number) => median(withDown.map((x, i) => f(x) / f(without[i]!)));
    const pct = (r: number) => `${r >= 1 ? '+' : ''}${((r - 1) * 100).toFixed(1)}%`;
    const m = (xs: { rate: number; cpu: number }[], f: (x: { rate: number; cpu: number }) => number) => median(xs.map(f));
    console.log(`  sequential sends, ${ROUNDS} rounds of ${SENDS} into each room, alternating (${s(elapsed)}${NO_SENDER ? ', federation sender stopped' : ''}):`);
    console.log(`    with ${joins.length} members on ${DOWN_SERVERS} unreachable servers: ${m(withDown, (x) => x.rate).toFixed(0)} msgs/s, ${m(withDown, (x) => x.cpu).toFixed(2)} ms CPU per send (this process: server and client)`);
    console.log(`    the same room after they left: ${m(without, (x) => x.rate).toFixed(0)} msgs/s, ${m(without, (x) => x.cpu).toFixed(2)} ms CPU per send`);
    console.log(`    median of the rounds' ratios: throughput ${pct(ratio((x) => x.rate))} (target within 5%), CPU per send ${pct(ratio((x) => x.cpu))}`);
    console.log(`    ${backingOff} of ${statuses.length} destinations backing off at the end, ${tried} attempts to reach them while measuring (${attemptsBefore} before)`);
  } finally {
    conn.close();
    await a.stop();
  }
}

// ---- 3. inbound transactions ----

async function inbound(): Promise<void> {
  const ROOMS = 10;
  const PER_ROOM = 5;
  const TXNS = 20;
  console.log(`3. Inbound /send: ${TXNS} transactions of ${ROOMS * PER_ROOM} PDUs (${ROOMS} rooms) from another server`);
  const remote = await new FakeServer('remote.test').listen();
  const a = await startInProcess('a.test', await freePort(), { 'remote.test': remote.url });
  const caller = remote.clientTo('a.test', a.url);
  try {
    const { user } = await localRoom(a, 'alice');
    const chains: RoomChain[] = [];
    for (let r = 0; r < ROOMS; r++) chains.push(await chainOf(a, user.token));
    // The remote users join first, in one transaction (which also has a.test fetch remote.test's key).
    const members = Array.from({ length: PER_ROOM }, (_, i) => remote.user(`r${i}`));
    await caller.send('joins', chains.flatMap((c) => members.map((m) => c.join(remote, m).pdu)));

    const txns: Pdu[][] = [];
    for (let t = 0; t < TXNS; t++) {
      txns.push(chains.flatMap((c) => members.map((m, i) => c.next(remote, m, 'm.room.message', { msgtype: 'm.text', body: `txn ${t} message ${i}` }).pdu)));
    }
    const times: number[] = [];
    const start = performance.now();
    for (let t = 0; t < TXNS; t++) {
      const s0 = performance.now();
      await caller.send(`t${t}`, txns[t]!);
      times.push(performance.now() - s0);
    }
    const total = performance.now() - start;
    const pdus = TXNS * ROOMS * PER_ROOM;
    times.sort((x, y) => x - y);
    console.log(`  ${pdus} PDUs in ${s(total)}: ${((pdus * 1000) / total).toFixed(0)} PDUs/s; per transaction p50 ${percentile(times, 50).toFixed(0)} ms, max ${times[times.length - 1]!.toFixed(0)} ms`);
  } finally {
    await caller.close();
    await a.stop();
    await remote.close();
  }
}

async function main(): Promise<void> {
  console.log('Federation benchmarks (SQLite; a.test in this process, b.test its own process)');
  if (!ONLY || ONLY === 'join') await bigRoomJoin();
  if (!ONLY || ONLY === 'unreachable') await unreachable();
  if (!ONLY || ONLY === 'inbound') await inbound();
}

await main();
