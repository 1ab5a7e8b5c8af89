// `npm run bench`: starts Hearth as its own process on a fresh data dir and
// measures the hot paths over real HTTP. Prints a table and writes JSON.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import YAML from 'yaml';
import { BenchClient, cpuMs, median, percentile, rssMb } from './client.js';
import { startServerProcess } from './server-process.js';
import { RawConnection } from './raw-client.js';
import { bigRooms } from './big-rooms.js';
import { initialSyncsOf100Rooms, sequentialSends } from './scenarios.js';
import { slidingSyncBench } from './sliding-sync.js';


const ROOT = new URL('../..', import.meta.url).pathname;
const DB = (process.env.HEARTH_BENCH_DB ?? 'sqlite') as 'sqlite' | 'postgres';
const PG_ADMIN = process.env.HEARTH_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const SEQ_SENDS = Number(process.env.HEARTH_BENCH_SENDS ?? 2000);
const ROUNDS = 3;
/** HEARTH_BENCH_SQLITE_SYNC=NORMAL measures SQLite without the fsync at each commit (the default is FULL). */
const SQLITE_SYNC = process.env.HEARTH_BENCH_SQLITE_SYNC;

interface Result {
  name: string;
  value: number;
  unit: string;
  target?: string;
  detail?: string;
}
const results: Result[] = [];
const record = (r: Result) => {
  results.push(r);
  console.error(`  ${r.name}: ${r.value.toFixed(r.unit === 'msgs/s' ? 0 : 2)} ${r.unit}${r.detail ? ` (${r.detail})` : ''}`);
};



async function startHearth(): Promise<{ proc: ChildProcess; url: string; secret: string; dbUrl: string; stop: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-bench-'));
  if (SQLITE_SYNC) writeFileSync(join(dir, 'hearth.yaml'), YAML.stringify({ registration_shared_secret: 'bench-secret', database: { sqlite_synchronous: SQLITE_SYNC } }));
  let dbUrl = 'hearth.db';
  let dbName = '';
  if (DB === 'postgres') {
    dbName = `hearth_bench_${Date.now()}`;
    const admin = postgres(PG_ADMIN, { max: 1, onnotice: () => {} });
    await admin.unsafe(`create database ${dbName}`);
    await admin.end();
    const u = new URL(PG_ADMIN);
    u.pathname = `/${dbName}`;
    dbUrl = u.toString();
  }
  const started = performance.now();
  const server = await startServerProcess({ dir, databaseUrl: dbUrl });
  const { proc, url } = server;
  record({ name: 'startup to first answer', value: performance.now() - started, unit: 'ms' });
  const secret = (YAML.parse(readFileSync(join(dir, 'hearth.yaml'), 'utf8')) as { registration_shared_secret: string })
    .registration_shared_secret;
  return {
    proc,
    url,
    secret,
    dbUrl,
    async stop() {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
      if (dbName) {
        const admin = postgres(PG_ADMIN, { max: 1, onnotice: () => {} });
        await admin.unsafe(`drop database if exists ${dbName} with (force)`);
        await admin.end();
      }
    },
  };
}

async function baselineRate(n: number): Promise<number> {
  const proc = spawn(process.execPath, [join(ROOT, 'dist/bench/baseline.js')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve) => proc.stdout!.once('data', (d: Buffer) => resolve(Number(String(d).trim()))));
  const client = await RawConnection.open(`http://127.0.0.1:${port}`);
  await sequentialSends(client, 'x', '!warm:x', 200, 'warm');
  const rates: number[] = [];
  for (let r = 0; r < ROUNDS; r++) rates.push((await sequentialSends(client, 'x', '!room:x', n, `b${r}`)).rate);
  client.close();
  proc.kill('SIGTERM');
  await new Promise((r) => proc.once('exit', r));
  return median(rates);
}

async function main(): Promise<void> {
  console.error(`Hearth benchmark on ${DB}, node ${process.version}`);
  const hs = await startHearth();
  const client = new BenchClient(hs.url, 16);
  const sliding = () => slidingSyncBench({ url: hs.url, secret: hs.secret, client, record });
  const big = () => bigRooms({ url: hs.url, secret: hs.secret, pid: hs.proc.pid!, client, db: DB, pgUrl: hs.dbUrl, record });
  try {
    if (process.env.HEARTH_BENCH_ONLY === 'big-rooms') {
      await big();
      return;
    }
    if (process.env.HEARTH_BENCH_ONLY === 'sliding-sync') {
      await sliding();
      return;
    }
    await new Promise((r) => setTimeout(r, 1000));
    record({ name: 'RSS 1 s after start', value: rssMb(hs.proc.pid!), unit: 'MB' });
    // Idle is what a home server mostly is: V8 gives back the start-up garbage once nothing has
    // happened for a few seconds, so the figure is taken after 15 quiet seconds.
    await new Promise((r) => setTimeout(r, 14_000));
    record({ name: 'idle RSS', value: rssMb(hs.proc.pid!), unit: 'MB', target: '<= 80', detail: 'after 15 s idle' });

    const alice = await client.registerUser("alice", hs.secret);
    const bob = await client.registerUser('bob', hs.secret);
    const room = await client.ok<{ room_id: string }>('POST', '/_matrix/client/v3/createRoom', { preset: 'public_chat' }, alice.token);
    await client.ok('POST', `/_matrix/client/v3/join/${encodeURIComponent(room.room_id)}`, {}, bob.token);

    // Sequential sends from one client, on one keep-alive connection.
    const one = await RawConnection.open(hs.url);
    await sequentialSends(one, alice.token, room.room_id, 200, 'warm');
    const seq: { rate: number; p50: number; p99: number; cpu: number }[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const cpu0 = cpuMs(hs.proc.pid!);
      const res = await sequentialSends(one, alice.token, room.room_id, SEQ_SENDS, `seq${r}`);
      seq.push({ ...res, cpu: (cpuMs(hs.proc.pid!) - cpu0) / SEQ_SENDS });
    }
    one.close();
    const seqRate = median(seq.map((s) => s.rate));
    record({ name: 'sequential sends', value: seqRate, unit: 'msgs/s', target: '>= 1000', detail: `${ROUNDS}x${SEQ_SENDS}` });
    record({ name: 'send latency p50', value: median(seq.map((s) => s.p50)), unit: 'ms' });
    record({ name: 'send latency p99', value: median(seq.map((s) => s.p99)), unit: 'ms' });
    record({ name: 'server CPU per send', value: median(seq.map((s) => s.cpu)), unit: 'ms' });

    // Concurrent sends: 8 clients, each in its own room, and 8 clients into one room.
    const senders = await Promise.all(Array.from({ length: 8 }, (_, i) => client.registerUser(`sender${i}`, hs.secret)));
    const rooms = await Promise.all(senders.map((s) => client.ok<{ room_id: string }>('POST', '/_matrix/client/v3/createRoom', {}, s.token)));
    for (const s of senders) await client.ok('POST', `/_matrix/client/v3/join/${encodeURIComponent(room.room_id)}`, {}, s.token);
    const per = Math.floor(SEQ_SENDS / 8);
    let t0 = performance.now();
    await Promise.all(senders.map((s, i) => sequentialSends(client, s.token, rooms[i].room_id, per, `c${i}`)));
    record({ name: 'concurrent sends, 8 rooms', value: ((per * 8) / (performance.now() - t0)) * 1000, unit: 'msgs/s' });
    t0 = performance.now();
    await Promise.all(senders.map((s, i) => sequentialSends(client, s.token, room.room_id, per, `one${i}`)));
    record({ name: 'concurrent sends, 1 room', value: ((per * 8) / (performance.now() - t0)) * 1000, unit: 'msgs/s' });

    // Sync wake-up: bob long-polls; alice sends; time from the send until bob's sync returns it.
    // Each on its own raw keep-alive connection, as the sequential sends.
    type SyncBody = { next_batch: string; rooms?: { join?: Record<string, { timeline: { events: { content: { body?: string } }[] } }> } };
    const poller = await RawConnection.open(hs.url);
    const sender = await RawConnection.open(hs.url);
    const syncOk = async (query: string): Promise<SyncBody> => {
      const r = await poller.call<SyncBody>('GET', `/_matrix/client/v3/sync?${query}`, undefined, bob.token);
      if (r.status !== 200) throw new Error(`sync failed: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body;
    };
    let since = (await syncOk('timeout=0')).next_batch;
    const wake: number[] = [];
    for (let i = 0; i < 200; i++) {
      const poll = syncOk(`timeout=30000&since=${encodeURIComponent(since)}`);
      await new Promise((r) => setTimeout(r, 5));
      const s = performance.now();
      const sent = sender.call('PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(room.room_id)}/send/m.room.message/wake${i}`, { msgtype: 'm.text', body: `wake ${i}` }, alice.token);
      const res = await poll;
      wake.push(performance.now() - s);
      if ((await sent).status !== 200) throw new Error('wake-up send failed');
      since = res.next_batch;
      const got = res.rooms?.join?.[room.room_id]?.timeline.events.some((e) => e.content.body === `wake ${i}`);
      if (!got) {
        // The poll returned for another reason; catch up so the next round starts clean.
        since = (await syncOk(`timeout=0&since=${encodeURIComponent(since)}`)).next_batch;
      }
    }
    poller.close();
    sender.close();
    wake.sort((a, b) => a - b);
    record({ name: 'sync wake-up p50', value: percentile(wake, 50), unit: 'ms', target: '<= 5' });
    record({ name: 'sync wake-up p99', value: percentile(wake, 99), unit: 'ms' });

    // Initial sync of a user in 100 rooms, each with 20 messages.
    const carol = await client.registerUser('carol', hs.secret);
    const initial = await initialSyncsOf100Rooms(client, alice.token, carol.token, 5);
    record({ name: 'initial sync, 100 rooms', value: median(initial), unit: 'ms', target: '<= 300', detail: 'median of 5' });
    await sliding();
    record({ name: 'RSS after load', value: rssMb(hs.proc.pid!), unit: 'MB' });
    await new Promise((r) => setTimeout(r, 15_000));
    record({ name: 'RSS after load, then 15 s idle', value: rssMb(hs.proc.pid!), unit: 'MB' });

    const base = await baselineRate(SEQ_SENDS);
    record({ name: 'bare Fastify route', value: base, unit: 'msgs/s' });
    record({ name: 'send as fraction of bare Fastify', value: seqRate / base, unit: 'x' });
    await big();
  } finally {
    await client.close();
    await hs.stop();
  }

  const table = ['| measure | value | target |', '| --- | --- | --- |']
    .concat(results.map((r) => `| ${r.name}${r.detail ? ` (${r.detail})` : ''} | ${r.unit === 'msgs/s' ? r.value.toFixed(0) : r.value.toFixed(2)} ${r.unit} | ${r.target ?? ''} |`))
    .join('\n');
  console.log(`\nHearth benchmark, ${DB}, ${new Date().toISOString().slice(0, 10)}, node ${process.version}\n\n${table}`);
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  const out = join(ROOT, `bench/results/${DB}-latest.json`);
  writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), db: DB, node: process.version, results }, null, 2));
  console.log(`\nwrote ${out}`);
}

await main();
