// `npm run bench`: starts Hearth as its own process on a fresh data dir and
// measures the hot paths over real HTTP. Prints a table and writes JSON.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import YAML from 'yaml';
import { BenchClient, median, rssMb } from './client.js';
import { startServerProcess } from './server-process.js';
import { RawConnection } from './raw-client.js';
import { bigRooms } from './big-rooms.js';
import { hotPaths, sequentialSends, repeatedHotPaths } from './scenarios.js';
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

    const hot = await hotPaths(client, { url: hs.url, secret: hs.secret, pid: hs.proc.pid!, rounds: ROUNDS, sends: SEQ_SENDS, syncs: 5 });
    record({ name: 'sequential sends', value: hot.sends, unit: 'msgs/s', target: '>= 1000', detail: `${ROUNDS}x${SEQ_SENDS}` });
    record({ name: 'send latency p50', value: hot.sendP50, unit: 'ms' });
    record({ name: 'send latency p99', value: hot.sendP99, unit: 'ms' });
    record({ name: 'server CPU per send', value: hot.cpuPerSend, unit: 'ms' });
    record({ name: 'concurrent sends, 8 rooms', value: hot.concurrentRooms, unit: 'msgs/s' });
    record({ name: 'concurrent sends, 1 room', value: hot.concurrentOneRoom, unit: 'msgs/s' });
    record({ name: 'sync wake-up p50', value: hot.wakeP50, unit: 'ms', target: '<= 5' });
    record({ name: 'sync wake-up p99', value: hot.wakeP99, unit: 'ms' });
    record({ name: 'initial sync, 100 rooms', value: median(hot.initialSyncs), unit: 'ms', target: '<= 300', detail: 'median of 5' });
    record({ name: 'server CPU over those 5 syncs, JavaScript thread', value: hot.initialSyncCpu.main, unit: 'ms' });
    record({ name: 'server CPU over those 5 syncs, other threads', value: hot.initialSyncCpu.other, unit: 'ms', detail: "mostly V8's optimising compiler" });
    await sliding();
    record({ name: 'RSS after load', value: rssMb(hs.proc.pid!), unit: 'MB' });
    await new Promise((r) => setTimeout(r, 15_000));
    record({ name: 'RSS after load, then 15 s idle', value: rssMb(hs.proc.pid!), unit: 'MB' });
    const again = await repeatedHotPaths(client, { url: hs.url, pid: hs.proc.pid!, rounds: ROUNDS, sends: SEQ_SENDS, syncs: 10, skip: 5 }, hot.actors);
    record({ name: 'sequential sends, again at the end', value: again.sends, unit: 'msgs/s', detail: `${ROUNDS}x${SEQ_SENDS}` });
    record({ name: 'server CPU per send, again at the end', value: again.cpuPerSend, unit: 'ms' });
    record({ name: 'initial sync, 100 rooms, again at the end', value: again.initialSync, unit: 'ms', detail: 'median of 10, after 5 more' });

    const base = await baselineRate(SEQ_SENDS);
    record({ name: 'bare Fastify route', value: base, unit: 'msgs/s' });
    record({ name: 'send as fraction of bare Fastify', value: hot.sends / base, unit: 'x' });
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
