// A quick send-throughput probe for profiling: starts Hearth (optionally under
// --cpu-prof), does sequential sends from one client in one room, prints rate,
// latency and the server's CPU time per send for each round, then stops the
// server (SIGTERM writes the profile).
//
//   node dist/bench/sends.js [--rounds 3] [--sends 2000] [--db sqlite|postgres]
//     --prof DIR         CPU profile of the server (PROBE_NODE_ARGS=--cpu-prof-interval=100 for finer samples)
//     --debug-log FILE   the server's debug log ('request' lines carry server-side ms)
//     --sync NORMAL      SQLite without the commit's fsync (diagnostic only; FULL is the default)
//     --whoami           the floor first: authenticated requests that do nothing
//     --dup              a repeated transaction id: everything but building and writing the event
//     --wal-frames       WAL pages written per send
//     --wake             sync wake-up: when the send is answered and when the other user's long-poll returns
//     --threads          the server's CPU per send on its main thread and on the others (GC helpers, libuv pool), last round
//     --rooms N          the rounds as N clients at once, each sending into a room of its own (--sends in all)
//     --gap MS           a pause of MS ms after each send, as people write: the stream's consumers (federation
//                        sender, search, push delivery, user directory) then wake for every few messages, not
//                        once per burst; the CPU per send counts their work (the rate counts the pauses)
//   PROBE_NODE_ARGS="--trace-gc ..." adds flags to the server's node.
import { createWriteStream, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import YAML from 'yaml';
import { BenchClient, median, percentile } from './client.js';
import { startServerProcess } from './server-process.js';
import { RawConnection } from './raw-client.js';

const args = process.argv.slice(2);
const opt = (name: string, def?: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const ROUNDS = Number(opt('rounds', '3'));
const SENDS = Number(opt('sends', '2000'));
const GAP = Number(opt('gap', '0'));
const PROF = opt('prof');
const DB = opt('db', 'sqlite')!;
const DEBUG_LOG = opt('debug-log');
/** Diagnostic only: `--sync NORMAL` shows the cost without the commit's fsync. */
const SYNC = opt('sync');
const PG_ADMIN = process.env.HEARTH_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

const dir = mkdtempSync(join(tmpdir(), 'hearth-sends-'));
let dbUrl = 'hearth.db';
let dbName = '';
if (DB === 'postgres') {
  dbName = `hearth_sends_${Date.now()}`;
  const admin = postgres(PG_ADMIN, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${dbName}`);
  await admin.end();
  const u = new URL(PG_ADMIN);
  u.pathname = `/${dbName}`;
  dbUrl = u.toString();
}
if (SYNC) {
  writeFileSync(join(dir, 'hearth.yaml'), `registration_shared_secret: sends-probe-secret\ndatabase:\n  sqlite_synchronous: ${SYNC}\n`);
}
const nodeArgs = (process.env.PROBE_NODE_ARGS ?? '').split(' ').filter(Boolean);
if (PROF) nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${PROF}`);
const server = await startServerProcess({
  dir,
  databaseUrl: dbUrl,
  nodeArgs,
  env: { HEARTH_LOG_LEVEL: DEBUG_LOG ? 'debug' : 'warn' },
  stdout: DEBUG_LOG ? 'pipe' : 'inherit',
});
const { proc, url } = server;
if (DEBUG_LOG) proc.stdout!.pipe(createWriteStream(DEBUG_LOG));
const client = new BenchClient(url, 1);
const secret = (YAML.parse(readFileSync(join(dir, 'hearth.yaml'), 'utf8')) as { registration_shared_secret: string }).registration_shared_secret;
const alice = await client.registerUser('alice', secret);
const bob = await client.registerUser('bob', secret);
const room = await client.ok<{ room_id: string }>('POST', '/_matrix/client/v3/createRoom', { preset: 'public_chat' }, alice.token);
await client.ok('POST', `/_matrix/client/v3/join/${encodeURIComponent(room.room_id)}`, {}, bob.token);
// Sequential rounds run on one raw keep-alive connection, as in run.ts.
const raw = await RawConnection.open(url);
const path = (tag: string, i: number) => `/_matrix/client/v3/rooms/${encodeURIComponent(room.room_id)}/send/m.room.message/${tag}-${i}`;

/** The server's user+system CPU time in ms (from /proc: not counting time blocked in fsync). */
function serverCpuMs(kind: 'all' | 'sys' = 'all'): number {
  const f = readFileSync(`/proc/${proc.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const sys = Number(f[12]);
  return ((kind === 'sys' ? sys : Number(f[11]) + sys) * 1000) / 100;
}

/** CPU ms of the main thread and of the others summed (GC helpers, libuv pool; from /proc/PID/task). */
function threadCpuMs(): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${proc.pid}/task`)) {
    try {
      const name = tid === String(proc.pid) ? 'main' : 'others';
      const f = readFileSync(`/proc/${proc.pid}/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      out.set(name, (out.get(name) ?? 0) + ((Number(f[11]) + Number(f[12])) * 1000) / 100);
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return out;
}

async function round(tag: string, n: number): Promise<{ rate: number; p50: number; p99: number; cpu: number; sys: number }> {
  const lat: number[] = [];
  const cpu0 = serverCpuMs();
  const sys0 = serverCpuMs('sys');
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const s = performance.now();
    const r = await raw.call('PUT', path(tag, i), { msgtype: 'm.text', body: `message ${i}` }, alice.token);
    if (r.status !== 200) throw new Error(`send failed: ${r.status} ${JSON.stringify(r.body)}`);
    lat.push(performance.now() - s);
    if (GAP > 0) await new Promise((r) => setTimeout(r, GAP));
  }
  const total = performance.now() - t0;
  // The consumers' wake-up after the last send is part of its cost (their longest delay is 200 ms).
  if (GAP > 0) await new Promise((r) => setTimeout(r, 300));
  const cpu = (serverCpuMs() - cpu0) / n;
  const sys = (serverCpuMs('sys') - sys0) / n;
  lat.sort((a, b) => a - b);
  return { rate: (n / total) * 1000, p50: percentile(lat, 50), p99: percentile(lat, 99), cpu, sys };
}

if (args.includes('--whoami')) {
  // The floor: an authenticated request that does almost nothing (HTTP, routing, hooks, token check).
  for (let r = 0; r < 2; r++) {
    const n = 3000;
    const cpu0 = serverCpuMs();
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await client.ok('GET', '/_matrix/client/v3/account/whoami', undefined, alice.token);
    const ms = performance.now() - t0;
    console.log(`whoami: ${((n / ms) * 1000).toFixed(0)} req/s, server CPU ${((serverCpuMs() - cpu0) / n).toFixed(3)} ms/req`);
  }
}
if (args.includes('--dup')) {
  // Everything but building and writing the event: a repeated transaction id is answered from the database.
  await client.ok('PUT', path('dup', 0), { msgtype: 'm.text', body: 'dup' }, alice.token);
  for (let r = 0; r < 2; r++) {
    const n = 3000;
    const cpu0 = serverCpuMs();
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await client.ok('PUT', path('dup', 0), { msgtype: 'm.text', body: 'dup' }, alice.token);
    const ms = performance.now() - t0;
    console.log(`repeated txn: ${((n / ms) * 1000).toFixed(0)} req/s, server CPU ${((serverCpuMs() - cpu0) / n).toFixed(3)} ms/req`);
  }
}
await round('warm', 300);
if (args.includes('--wake')) {
  // Sync wake-up split in two: when the send is answered, and when bob's long-poll returns it.
  const polls = new BenchClient(url, 1);
  let since = (await polls.ok<{ next_batch: string }>('GET', '/_matrix/client/v3/sync?timeout=0', undefined, bob.token)).next_batch;
  const sent: number[] = [];
  const woke: number[] = [];
  for (let i = 0; i < 300; i++) {
    const poll = polls.ok<{ next_batch: string }>('GET', `/_matrix/client/v3/sync?timeout=30000&since=${encodeURIComponent(since)}`, undefined, bob.token);
    await new Promise((r) => setTimeout(r, 5));
    const s = performance.now();
    void client.ok('PUT', path('wake', i), { msgtype: 'm.text', body: `wake ${i}` }, alice.token).then(() => sent.push(performance.now() - s));
    since = (await poll).next_batch;
    woke.push(performance.now() - s);
    await new Promise((r) => setTimeout(r, 2));
  }
  sent.sort((a, b) => a - b);
  woke.sort((a, b) => a - b);
  console.log(`wake-up: send answered p50 ${percentile(sent, 50).toFixed(2)} ms; long-poll returned p50 ${percentile(woke, 50).toFixed(2)} ms, p99 ${percentile(woke, 99).toFixed(2)} ms`);
  await polls.close();
  // The same send after the same pause, with nobody waiting: the cost of the pause itself.
  const alone: number[] = [];
  for (let i = 0; i < 300; i++) {
    await new Promise((r) => setTimeout(r, 5));
    const s = performance.now();
    await client.ok('PUT', path('alone', i), { msgtype: 'm.text', body: `alone ${i}` }, alice.token);
    alone.push(performance.now() - s);
  }
  alone.sort((a, b) => a - b);
  console.log(`a send after a 5 ms pause, nobody polling: p50 ${percentile(alone, 50).toFixed(2)} ms`);
}
if (args.includes('--wal-frames')) {
  // Diagnostic: WAL frames (pages) written per send commit, read through a second connection.
  const { default: Sqlite } = await import('better-sqlite3');
  const side = new Sqlite(join(dir, 'hearth.db'));
  side.pragma('wal_checkpoint(TRUNCATE)');
  const n = 50;
  for (let i = 0; i < n; i++) await client.ok('PUT', path('wal', i), { msgtype: 'm.text', body: `wal ${i}` }, alice.token);
  // Which tables and indexes those pages belong to: page numbers from the WAL's frame headers
  // (a 32-byte file header, then a 24-byte header before each page), names from dbstat.
  const wal = readFileSync(join(dir, 'hearth.db-wal'));
  const pageSize = wal.readUInt32BE(8);
  const owner = new Map<number, string>();
  for (const row of side.prepare('select name, pageno from dbstat').all() as { name: string; pageno: number }[]) owner.set(row.pageno, row.name);
  const byTree = new Map<string, number>();
  for (let off = 32; off + 24 + pageSize <= wal.length; off += 24 + pageSize) {
    const name = owner.get(wal.readUInt32BE(off)) ?? '(free or header)';
    byTree.set(name, (byTree.get(name) ?? 0) + 1);
  }
  const [r] = side.pragma('wal_checkpoint(PASSIVE)') as { busy: number; log: number; checkpointed: number }[];
  console.log(`WAL frames per send: ${(r!.log / n).toFixed(1)}`);
  for (const [name, count] of [...byTree].sort((a, b) => b[1] - a[1])) console.log(`  ${name}: ${(count / n).toFixed(2)}`);
  side.close();
}
const ROOMS = Number(opt('rooms', '0'));
/** N senders at once, each on its own connection into its own room: SENDS sends between them, in the same CPU terms as round(). */
async function concurrentRounds(n: number): Promise<void> {
  const senders = await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const user = await client.registerUser(`sender${i}`, secret);
      const own = await client.ok<{ room_id: string }>('POST', '/_matrix/client/v3/createRoom', {}, user.token);
      return { user, roomId: own.room_id, conn: await RawConnection.open(url) };
    }),
  );
  const each = Math.floor(SENDS / n);
  const run = (tag: string, count: number) =>
    Promise.all(
      senders.map(async (x) => {
        for (let i = 0; i < count; i++) {
          const r = await x.conn.call('PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(x.roomId)}/send/m.room.message/${tag}-${i}`, { msgtype: 'm.text', body: `message ${i}` }, x.user.token);
          if (r.status !== 200) throw new Error(`send failed: ${r.status} ${JSON.stringify(r.body)}`);
        }
      }),
    );
  await run('cwarm', 50);
  const rates: number[] = [];
  const cpus: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const cpu0 = serverCpuMs();
    const t0 = performance.now();
    await run(`c${r}`, each);
    const rate = ((each * n) / (performance.now() - t0)) * 1000;
    const cpu = (serverCpuMs() - cpu0) / (each * n);
    rates.push(rate);
    cpus.push(cpu);
    console.log(`round ${r}, ${n} rooms at once: ${rate.toFixed(0)} sends/s  server CPU ${cpu.toFixed(3)} ms/send`);
  }
  console.log(`median ${median(rates).toFixed(0)} sends/s, server CPU ${median(cpus).toFixed(3)} ms/send (${n} rooms at once)`);
  for (const x of senders) x.conn.close();
}
/** ROUNDS rounds of SENDS sequential sends from one client (round()). */
async function sequentialRounds(): Promise<void> {
  const rates: number[] = [];
  const cpus: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const threads0 = args.includes('--threads') && r === ROUNDS - 1 ? threadCpuMs() : null;
    const res = await round(`r${r}`, SENDS);
    if (threads0) {
      const per = [...threadCpuMs()].map(([name, ms]) => `${name} ${((ms - (threads0.get(name) ?? 0)) / SENDS).toFixed(3)}`);
      console.log(`CPU ms/send by thread: ${per.join(', ')}`);
    }
    rates.push(res.rate);
    cpus.push(res.cpu);
    console.log(`round ${r}: ${res.rate.toFixed(0)} sends/s  p50 ${res.p50.toFixed(3)} ms  p99 ${res.p99.toFixed(3)} ms  server CPU ${res.cpu.toFixed(3)} ms/send (system ${res.sys.toFixed(3)})`);
  }
  console.log(`median ${median(rates).toFixed(0)} sends/s, server CPU ${median(cpus).toFixed(3)} ms/send`);
}
if (ROOMS > 0) await concurrentRounds(ROOMS);
else await sequentialRounds();
await client.close();
raw.close();
await server.stop();
rmSync(dir, { recursive: true, force: true });
if (dbName) {
  const admin = postgres(PG_ADMIN, { max: 1, onnotice: () => {} });
  await admin.unsafe(`drop database if exists ${dbName} with (force)`);
  await admin.end();
}
