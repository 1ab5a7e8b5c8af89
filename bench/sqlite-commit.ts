// The SQL of one send (as the pipeline's synchronous path runs it) on raw
// better-sqlite3 against Hearth's schema: time per statement, commit
// distribution (fsync, checkpoints) and WAL frames written per send. For
// judging schema and pragma changes without HTTP or JavaScript in the way.
//
//   node dist/bench/sqlite-commit.js [FULL|NORMAL] [sends] [wal_autocheckpoint]
import BetterSqlite3 from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectDatabase } from '../src/db/connect.js';
import { runMigrations } from '../src/db/migrate.js';
import { ALL_MIGRATIONS } from '../src/homeserver.js';

const dir = mkdtempSync(join(tmpdir(), 'hearth-sqlite-commit-'));
const sync = (process.argv[2] ?? 'NORMAL') as 'FULL' | 'NORMAL';
const { db, close } = await connectDatabase({ url: join(dir, 'h.db'), sqliteSynchronous: sync });
await runMigrations(db, 'sqlite', ALL_MIGRATIONS);
await close();
const f = new BetterSqlite3(join(dir, 'h.db'));
f.pragma('journal_mode = WAL');
f.pragma(`synchronous = ${sync}`);
f.pragma('cache_size = -16000');
if (process.argv[4]) f.pragma(`wal_autocheckpoint = ${process.argv[4]}`);
const commits: number[] = [];
const room = '!room:example.org';
f.prepare(`insert into forward_extremities (room_id, event_id) values (?, ?)`).run(room, '$e0');
const sel = f.prepare('select event_id from events where room_id = ? and sender = ? and sender_device = ? and txn_id = ?');
const ins = f.prepare('insert into events (event_id, room_id, stream_pos, depth, type, state_key, sender, origin_server_ts, json, state_group, replaces_state, membership, redacts, redacted_by, outlier, rejected_reason, soft_failed, sender_device, txn_id) values (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)');
const fe = f.prepare('update forward_extremities set event_id = ? where room_id = ? and event_id = ?');
const sp = f.prepare(`update stream_positions set pos = pos + ? where stream = ? returning pos`);
const pa = f.prepare('insert into event_push_actions (user_id, room_id, event_id, stream_pos, notify, highlight, actions, ts) values (?,?,?,?,?,?,?,?) on conflict (user_id, room_id, stream_pos) do nothing');
const ru = f.prepare('insert into push_read_upto (user_id, room_id, stream_pos) values (?,?,?) on conflict (user_id, room_id) do update set stream_pos = excluded.stream_pos where push_read_upto.stream_pos < excluded.stream_pos');
const begin = f.prepare('begin');
const commit = f.prepare('commit');
const json = JSON.stringify({ content: { body: 'x'.repeat(30), msgtype: 'm.text' }, hashes: { sha256: 'y'.repeat(43) }, signatures: { 'example.org': { 'ed25519:a': 'z'.repeat(86) } }, auth_events: ['$'.repeat(44), '$'.repeat(44), '$'.repeat(44)], prev_events: ['$'.repeat(44)] });
const t: Record<string, number> = { sel: 0, begin: 0, fe: 0, sp: 0, ins: 0, pa: 0, ru: 0, commit: 0 };
let prev = '$e0';
const N = Number(process.argv[3] ?? 5000);
const t0 = performance.now();
for (let i = 0; i < N; i++) {
  const id = '$' + Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2);
  let s = performance.now();
  sel.all(room, '@alice:example.org', 'DEV', `t-${i}`); t.sel += performance.now() - s; s = performance.now();
  begin.run(); t.begin += performance.now() - s; s = performance.now();
  fe.run(id, room, prev); t.fe += performance.now() - s; s = performance.now();
  const pos = (sp.all(1, 'events')[0] as { pos: number }).pos; t.sp += performance.now() - s; s = performance.now();
  ins.run(id, room, pos, i + 10, 'm.room.message', null, '@alice:example.org', Date.now(), json, 5, null, null, null, null, 0, null, 0, 'DEV', `t-${i}`); t.ins += performance.now() - s; s = performance.now();
  pa.run('@bob:example.org', room, id, pos, 1, 0, '["notify"]', Date.now()); t.pa += performance.now() - s; s = performance.now();
  ru.run('@alice:example.org', room, pos); t.ru += performance.now() - s; s = performance.now();
  commit.run(); t.commit += performance.now() - s; commits.push(performance.now() - s);
  prev = id;
}
const total = performance.now() - t0;
console.log(`${sync}: ${(total / N * 1000).toFixed(0)} us/send;`, Object.entries(t).map(([k, v]) => `${k} ${(v / N * 1000).toFixed(1)}`).join(', '));
commits.sort((a, b) => a - b);
console.log(`commit max ${(commits[N - 1]! * 1000).toFixed(0)} n>2ms ${commits.filter((c) => c > 2).length} p50 ${(commits[N >> 1]! * 1000).toFixed(0)} p90 ${(commits[Math.floor(N * 0.9)]! * 1000).toFixed(0)} p99 ${(commits[Math.floor(N * 0.99)]! * 1000).toFixed(0)} us; top 2% hold ${((commits.slice(Math.floor(N * 0.98)).reduce((a, b) => a + b, 0) / commits.reduce((a, b) => a + b, 0)) * 100).toFixed(0)}% of commit time`);
f.pragma('wal_checkpoint(TRUNCATE)');
f.pragma('wal_autocheckpoint = 0');
for (let i = 0; i < 50; i++) {
  const id = `$wal${i}`;
  begin.run(); fe.run(id, room, prev); const pos = (sp.all(1, 'events')[0] as { pos: number }).pos;
  ins.run(id, room, pos, i + 10, 'm.room.message', null, '@alice:example.org', Date.now(), json, 5, null, null, null, null, 0, null, 0, 'DEV', `w-${i}`);
  pa.run('@bob:example.org', room, id, pos, 1, 0, '["notify"]', Date.now()); ru.run('@alice:example.org', room, pos); commit.run(); prev = id;
}
const [ck] = f.pragma('wal_checkpoint(PASSIVE)') as { log: number }[];
console.log(`WAL frames per send: ${(ck!.log / 50).toFixed(1)}`);
f.close();
rmSync(dir, { recursive: true, force: true });
