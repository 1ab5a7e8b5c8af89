// `node dist/bench/heavy-sync.js` (also run by `npm run bench`): the initial sync of a user in many
// rooms (HEARTH_BENCH_HEAVY_ROOMS, 1,000 by default; 20 messages and 10 members each), as Element
// asks for it (lazy-loaded members, timeline limit 10), on a server restarted after the rooms were
// made. Measured on a fresh process each time:
// - five initial syncs one after the other: the first, the median of the others, the bytes of an
//   answer, and the server's peak resident memory over the first three;
// - four initial syncs at once: the time until the last answer, and the peak resident memory.
// Peak RSS is sampled from /proc every few milliseconds (and the kernel's high-water mark, reset
// before each part, where the kernel lets it be reset), so it is the process's, not the heap's.
// HEARTH_BENCH_PROF_DIR=DIR writes CPU profiles of the server processes; PROBE_NODE_ARGS adds flags to their node.
// HEARTH_BENCH_HEAVY_DIR names a data dir to make once and reuse (SQLite): the rooms are only made
// when it holds no database yet.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BenchClient, median, rssMb } from './client.js';
import { startServerProcess, type ServerProcess } from './server-process.js';

const ROOMS = Number(process.env.HEARTH_BENCH_HEAVY_ROOMS ?? 1000);
const MEMBERS = 10;
const MESSAGES = 20;
const SECRET = 'bench-secret';
const FILTER = JSON.stringify({ room: { state: { lazy_load_members: true }, timeline: { limit: 10 } } });

/** HEARTH_BENCH_PROF_DIR=DIR writes a CPU profile of each server process there. */
async function startServer(dir: string): Promise<ServerProcess> {
  const prof = process.env.HEARTH_BENCH_PROF_DIR;
  const extra = (process.env.PROBE_NODE_ARGS ?? '').split(' ').filter(Boolean);
  return startServerProcess({ dir, nodeArgs: [...(prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : []), ...extra] });
}

async function pooled<T>(items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

/** Makes the user and their rooms; returns the user's access token. */
async function populate(url: string): Promise<string> {
  const client = new BenchClient(url, 8);
  try {
    const heavy = await client.registerUser('heavy', SECRET);
    const others = await Promise.all(Array.from({ length: MEMBERS - 1 }, (_, i) => client.registerUser(`member${i}`, SECRET)));
    const t0 = performance.now();
    await pooled(
      Array.from({ length: ROOMS }, (_, i) => i),
      8,
      async (i) => {
        const owner = others[i % others.length]!;
        const room = await client.ok<{ room_id: string }>('POST', '/_matrix/client/v3/createRoom', { name: `room ${i}`, preset: 'public_chat' }, owner.token);
        const path = encodeURIComponent(room.room_id);
        for (const u of [...others.filter((o) => o !== owner), heavy]) await client.ok('POST', `/_matrix/client/v3/join/${path}`, {}, u.token);
        for (let m = 0; m < MESSAGES; m++) {
          const from = others[m % others.length]!;
          await client.ok('PUT', `/_matrix/client/v3/rooms/${path}/send/m.room.message/h${i}-${m}`, { msgtype: 'm.text', body: `message ${m} in room ${i}` }, from.token);
        }
      },
    );
    console.log(`  made ${ROOMS} rooms in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    return heavy.token;
  } finally {
    await client.close();
  }
}

/** Samples the process's resident memory until stopped; returns the highest value seen. */
function watchRss(pid: number): { stop(): number } {
  // Writing 5 to clear_refs resets VmHWM (Linux >= 4.0); where it cannot be, sampling alone counts.
  let hwm = true;
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
  } catch {
    hwm = false;
  }
  let peak = rssMb(pid);
  const timer = setInterval(() => {
    peak = Math.max(peak, rssMb(pid));
  }, 5);
  return {
    stop() {
      clearInterval(timer);
      peak = Math.max(peak, rssMb(pid));
      if (hwm) {
        const kb = Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
        peak = Math.max(peak, kb / 1024);
      }
      return peak;
    },
  };
}

async function initialSync(client: BenchClient, token: string): Promise<{ ms: number; bytes: number }> {
  const s = performance.now();
  const r = await client.call<{ rooms: { join: Record<string, unknown> } }>('GET', `/_matrix/client/v3/sync?filter=${encodeURIComponent(FILTER)}`, undefined, token);
  const ms = performance.now() - s;
  if (r.status !== 200) throw new Error(`sync failed: ${r.status}`);
  const rooms = Object.keys(r.body.rooms.join).length;
  if (rooms !== ROOMS) throw new Error(`initial sync has ${rooms} joined rooms, not ${ROOMS}`);
  return { ms, bytes: Buffer.byteLength(JSON.stringify(r.body)) };
}

export async function heavySync(record: (r: { name: string; value: number; unit: string; target?: string; detail?: string }) => void): Promise<void> {
  const keep = process.env.HEARTH_BENCH_HEAVY_DIR;
  const dir = keep ?? mkdtempSync(join(tmpdir(), 'hearth-bench-heavy-'));
  mkdirSync(dir, { recursive: true });
  const tokenFile = join(dir, 'bench-heavy-token');
  try {
    if (!existsSync(tokenFile)) {
      writeFileSync(join(dir, 'hearth.yaml'), `registration_shared_secret: ${SECRET}\n`);
      const first = await startServer(dir);
      try {
        writeFileSync(tokenFile, await populate(first.url));
      } finally {
        await first.stop();
      }
    }
    const token = readFileSync(tokenFile, 'utf8');
    const label = `${ROOMS} rooms`;

    // Five in a row on a fresh process.
    let hs = await startServer(dir);
    let client = new BenchClient(hs.url, 4);
    const times: number[] = [];
    let bytes = 0;
    let peakThree = 0;
    try {
      const watch = watchRss(hs.proc.pid!);
      record({ name: `RSS before the first sync, ${label}`, value: rssMb(hs.proc.pid!), unit: 'MB' });
      for (let i = 0; i < 5; i++) {
        const r = await initialSync(client, token);
        times.push(r.ms);
        bytes = r.bytes;
        if (i === 2) peakThree = watch.stop();
      }
    } finally {
      await client.close();
      await hs.stop();
    }
    record({ name: `first initial sync after restart, ${label}`, value: times[0]!, unit: 'ms', target: '< 600' });
    record({ name: `later initial syncs, ${label}`, value: median(times.slice(1)), unit: 'ms', target: '< 300', detail: 'median of 4' });
    record({ name: `initial sync answer, ${label}`, value: bytes / 1e6, unit: 'MB' });
    record({ name: `peak RSS over three initial syncs, ${label}`, value: peakThree, unit: 'MB', target: '< 150' });

    // Four at once on a fresh process.
    hs = await startServer(dir);
    client = new BenchClient(hs.url, 4);
    try {
      const watch = watchRss(hs.proc.pid!);
      const s = performance.now();
      await Promise.all(Array.from({ length: 4 }, () => initialSync(client, token)));
      const ms = performance.now() - s;
      const peak = watch.stop();
      record({ name: `four initial syncs at once, ${label}`, value: ms, unit: 'ms', detail: 'until the last answer' });
      record({ name: `peak RSS, four initial syncs at once, ${label}`, value: peak, unit: 'MB', target: '< 200' });
    } finally {
      await client.close();
      await hs.stop();
    }
  } finally {
    if (!keep) rmSync(dir, { recursive: true, force: true });
  }
}

// Run alone: `node dist/bench/heavy-sync.js`.
if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(`Heavy initial sync (SQLite, ${ROOMS} rooms of ${MEMBERS} members and ${MESSAGES} messages)`);
  await heavySync((r) => console.log(`  ${r.name}: ${r.value.toFixed(2)} ${r.unit}${r.detail ? ` (${r.detail})` : ''}${r.target ? ` [target ${r.target}]` : ''}`));
}
