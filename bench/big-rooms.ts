// Big rooms: what one message costs in a room of many local members, and how
// joins scale with the room's size. Called by run.ts (HEARTH_BENCH_ONLY=big-rooms
// runs this scenario alone).
//
// (a) Send latency p50 into a room of BIG_ROOM local members against a
//     two-member room (target: within 3x), and the bytes the server writes per
//     message: for SQLite the server process's write() bytes (/proc/<pid>/io
//     `wchar`: WAL frames and checkpoints, whatever the file system) and the
//     block-device bytes (`write_bytes`); for PostgreSQL the WAL the sends
//     generate (pg_current_wal_lsn). Target: under 1 MB per message.
// (b) Join storm: 100, then 300, then 500 users joining a fresh room each
//     (16 concurrent clients), total time and time per join.
import { readFileSync } from 'node:fs';
import postgres from 'postgres';
import type { BenchClient } from './client.js';
import { percentile } from './client.js';
import { RawConnection } from './raw-client.js';

export interface BigRoomsResult {
  name: string;
  value: number;
  unit: string;
  target?: string;
  detail?: string;
}

export interface BigRoomsEnv {
  url: string;
  secret: string;
  pid: number;
  client: BenchClient;
  db: 'sqlite' | 'postgres';
  /** The server's PostgreSQL database URL (postgres only). */
  pgUrl?: string;
  record(r: BigRoomsResult): void;
}

const BIG_ROOM = Number(process.env.HEARTH_BENCH_BIG_ROOM ?? 1000);
const STORMS = (process.env.HEARTH_BENCH_JOIN_STORMS ?? '100,300,500').split(',').map(Number);
const SENDS = Number(process.env.HEARTH_BENCH_BIG_SENDS ?? 200);

function procIo(pid: number): { wchar: number; writeBytes: number } {
  const io = readFileSync(`/proc/${pid}/io`, 'utf8');
  const field = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(io)?.[1] ?? 0);
  return { wchar: field('wchar'), writeBytes: field('write_bytes') };
}

async function pooled<T>(items: T[], width: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i]!, i);
      }
    }),
  );
}

async function sends(conn: RawConnection, token: string, roomId: string, n: number, tag: string): Promise<number[]> {
  const lat: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = performance.now();
    const r = await conn.call('PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/${tag}-${i}`, { msgtype: 'm.text', body: `message ${i}` }, token);
    if (r.status !== 200) throw new Error(`send failed: ${r.status} ${JSON.stringify(r.body)}`);
    lat.push(performance.now() - s);
  }
  return lat.sort((a, b) => a - b);
}

export async function bigRooms(env: BigRoomsEnv): Promise<void> {
  const { client, record } = env;
  const join = (roomId: string, token: string) => client.ok('POST', `/_matrix/client/v3/join/${encodeURIComponent(roomId)}`, {}, token);
  const createRoom = async (token: string) => (await client.ok<{ room_id: string }>('POST', '/_matrix/client/v3/createRoom', { preset: 'public_chat' }, token)).room_id;

  const owner = await client.registerUser('bigowner', env.secret);
  const need = Math.max(BIG_ROOM - 1, ...STORMS);
  const users: { userId: string; token: string }[] = new Array(need);
  let t0 = performance.now();
  await pooled(Array.from({ length: need }, (_, i) => i), 16, async (i) => {
    users[i] = await client.registerUser(`big${i}`, env.secret);
  });
  console.error(`  (registered ${need} users in ${((performance.now() - t0) / 1000).toFixed(1)} s)`);

  // (b) Join storms, each into a fresh room.
  for (const n of STORMS) {
    const roomId = await createRoom(owner.token);
    t0 = performance.now();
    await pooled(users.slice(0, n), 16, async (u) => {
      await join(roomId, u.token);
    });
    const ms = performance.now() - t0;
    record({ name: `join storm, ${n} users`, value: ms / n, unit: 'ms/join', detail: `${(ms / 1000).toFixed(2)} s total` });
  }

  // (a) Sends: a two-member room, then a room of BIG_ROOM members.
  const small = await createRoom(owner.token);
  await join(small, users[0]!.token);
  const big = await createRoom(owner.token);
  t0 = performance.now();
  await pooled(users.slice(0, BIG_ROOM - 1), 16, async (u) => {
    await join(big, u.token);
  });
  console.error(`  (${BIG_ROOM} members joined in ${((performance.now() - t0) / 1000).toFixed(1)} s)`);

  const conn = await RawConnection.open(env.url);
  try {
    await sends(conn, owner.token, small, 50, 'warm-small');
    await sends(conn, owner.token, big, 20, 'warm-big');
    const pg = env.db === 'postgres' && env.pgUrl ? postgres(env.pgUrl, { max: 1, onnotice: () => {} }) : undefined;
    const lsn = async () => (pg ? BigInt((await pg.unsafe(`select pg_current_wal_lsn() - '0/0'::pg_lsn as b`))[0]!.b as string) : 0n);
    /** Bytes written while `fn` runs (see the top of this file), per send. */
    const written = async (fn: () => Promise<number[]>) => {
      const io0 = procIo(env.pid);
      const wal0 = await lsn();
      const lat = await fn();
      // Let a checkpoint that the sends started finish before reading the counters.
      await new Promise((r) => setTimeout(r, 500));
      const io1 = procIo(env.pid);
      const wal1 = await lsn();
      const per = (n: number | bigint) => Number(n) / SENDS / 1024;
      return { lat, wchar: per(io1.wchar - io0.wchar), disk: per(io1.writeBytes - io0.writeBytes), wal: per(wal1 - wal0) };
    };
    const smallRun = await written(() => sends(conn, owner.token, small, SENDS, 'small'));
    const bigRun = await written(() => sends(conn, owner.token, big, SENDS, 'big'));
    await pg?.end();
    const smallLat = smallRun.lat;
    const bigLat = bigRun.lat;
    const p50Small = percentile(smallLat, 50);
    const p50Big = percentile(bigLat, 50);
    record({ name: 'send p50, 2-member room', value: p50Small, unit: 'ms' });
    record({ name: `send p50, ${BIG_ROOM}-member room`, value: p50Big, unit: 'ms', detail: `p99 ${percentile(bigLat, 99).toFixed(2)} ms` });
    record({ name: `send p50 ratio, ${BIG_ROOM} vs 2 members`, value: p50Big / p50Small, unit: 'x', target: '<= 3' });
    for (const [members, run] of [[2, smallRun], [BIG_ROOM, bigRun]] as const) {
      const target = members === BIG_ROOM ? '< 1024' : undefined;
      if (env.db === 'sqlite') {
        record({ name: `bytes written per message, ${members}-member room`, value: run.wchar, unit: 'KB', target, detail: 'write() bytes of the server' });
        record({ name: `disk bytes per message, ${members}-member room`, value: run.disk, unit: 'KB', detail: 'block-device write_bytes' });
      } else {
        record({ name: `WAL bytes per message, ${members}-member room`, value: run.wal, unit: 'KB', target, detail: 'pg_current_wal_lsn, whole cluster' });
      }
    }
  } finally {
    conn.close();
  }
}
