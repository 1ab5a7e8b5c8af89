// The user directory's remote-user search on a server in many rooms: the query of
// src/directory/user-directory-store.ts against its own tables, and, for comparison, the scan of
// `room_memberships` it replaced (lower-cased substring pages of 100, up to 2,000 rows; the
// old code then loaded a room summary per unknown room, which is not counted here, so the old
// figures are a lower bound). Rows are written straight into the tables.
//
//   node dist/bench/user-directory.js [sqlite|postgres] [rooms] [remote members per room]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql, type Kysely } from 'kysely';
import postgres from 'postgres';
import { searchText } from '../src/accounts/search-text.js';
import { connectDatabase } from '../src/db/connect.js';
import { runMigrations } from '../src/db/migrate.js';
import type { Db } from '../src/db/schema.js';
import { fillFromCurrentState } from '../src/directory/migrations.js';
import { selectVisibleRemoteUsers } from '../src/directory/user-directory-store.js';
import { ALL_MIGRATIONS } from '../src/homeserver.js';
import { rng } from '../test/helpers/seeded-random.js';

const DB = (process.argv[2] ?? 'sqlite') as 'sqlite' | 'postgres';
const ROOMS = Number(process.argv[3] ?? 2000);
const PER_ROOM = Number(process.argv[4] ?? 25);
const REMOTE_USERS = ROOMS * 10;
const LOCAL_USERS = 200;
/** The searcher is in this many of the rooms. */
const SEARCHER_ROOMS = 300;
const RUNS = 15;
const PG_ADMIN = process.env.HEARTH_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

const FIRST = ['Ana', 'José', 'Márta', 'Zoë', 'Øystein', 'Bob', 'Chloé', 'Dmitri', 'Eva', 'François', 'Grace', 'Hélène', 'Ivan', 'Jürgen', 'Kai', 'Lúcia'];
const LAST = ['Márquez', 'Smith', 'Nguyễn', 'Öberg', 'Dubois', 'Kowalski', 'García', 'Müller', 'Rossi', 'Tanaka', 'Silva', 'Novák', 'Jensen', 'Łukasz', 'Brown', 'Peña'];

const random = rng(7);
const dir = mkdtempSync(join(tmpdir(), 'hearth-user-directory-'));
let url = join(dir, 'h.db');
let dbName = '';
if (DB === 'postgres') {
  dbName = `hearth_userdir_${Date.now()}`;
  const admin = postgres(PG_ADMIN, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${dbName}`);
  await admin.end();
  const u = new URL(PG_ADMIN);
  u.pathname = `/${dbName}`;
  url = u.toString();
}
const { db, close } = await connectDatabase({ url });
await runMigrations(db, DB, ALL_MIGRATIONS);

const remoteUser = (i: number) => `@${FIRST[i % FIRST.length]!.normalize('NFKD').replace(/\p{M}/gu, '').toLowerCase()}${i}:far${i % 50}.example`;
const remoteName = (i: number) => `${FIRST[i % FIRST.length]} ${LAST[Math.floor(i / FIRST.length) % LAST.length]}`;
const localUser = (i: number) => `@local${i}:here.example`;
const searcher = localUser(0);

const t0 = performance.now();
await insertRows(db, ROOMS, PER_ROOM);
console.log(`${DB}: ${ROOMS} rooms, ${ROOMS * PER_ROOM} remote memberships of ${REMOTE_USERS} remote users, searcher in ${SEARCHER_ROOMS} rooms; filled in ${Math.round(performance.now() - t0)} ms`);
if (DB === 'postgres') await sql`analyze`.execute(db);

const terms = ['marq', 'jose', 'jose marquez', 'smi', 'nguyen', 'a', 'zzz'];
for (const term of terms) {
  const words = term.split(' ');
  const now = await timed(() => selectVisibleRemoteUsers(db, searcher, words, 800));
  const old = await timed(() => oldScan(db, words));
  console.log(`  "${term}": new ${now.ms.toFixed(1)} ms (${now.rows} rows) | old scan ${old.ms.toFixed(1)} ms (${old.rows} rows scanned)`);
}

// The migration's fill of an existing database from the same memberships.
await db.insertInto('users').values(Array.from({ length: LOCAL_USERS }, (_, i) => ({ user_id: localUser(i), password_hash: null, is_admin: 0, deactivated: 0, created_ts: 0, locked: 0, suspended: 0, is_guest: 0 }))).execute();
const tf = performance.now();
await db.transaction().execute(async (trx) => {
  for (const t of ['user_directory_remote', 'user_directory_local', 'user_directory_rooms', 'user_directory_position'] as const) await trx.deleteFrom(t).execute();
  await fillFromCurrentState(trx as unknown as Kysely<any>);
});
const filled = await db.selectFrom('user_directory_remote').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
console.log(`  migration fill: ${Number(filled.n)} remote rows in ${Math.round(performance.now() - tf)} ms`);
await close();
if (dbName) {
  const admin = postgres(PG_ADMIN, { max: 1, onnotice: () => {} });
  await admin.unsafe(`drop database ${dbName}`);
  await admin.end();
}
rmSync(dir, { recursive: true, force: true });

/** Median time of RUNS runs, after one warm-up. */
async function timed(fn: () => Promise<unknown[]>): Promise<{ ms: number; rows: number }> {
  let rows = (await fn()).length;
  const ms: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    rows = (await fn()).length;
    ms.push(performance.now() - t);
  }
  ms.sort((a, b) => a - b);
  return { ms: ms[Math.floor(ms.length / 2)]!, rows };
}

/** The query the old remote-users.ts paged through: up to 20 pages of 100. */
async function oldScan(db: Db, words: string[]): Promise<unknown[]> {
  const out: unknown[] = [];
  for (let offset = 0; offset < 2000; offset += 100) {
    let q = db
      .selectFrom('room_memberships as m')
      .selectAll('m')
      .where('m.membership', '=', 'join')
      .where('m.user_id', 'not like', '%:here.example')
      .where(({ exists, selectFrom }) =>
        exists(selectFrom('room_memberships as l').select('l.room_id').whereRef('l.room_id', '=', 'm.room_id').where('l.membership', '=', 'join').where('l.user_id', 'like', '%:here.example')),
      );
    for (const w of words) {
      q = q.where(sql<boolean>`(lower(${sql.ref('m.user_id')}) like ${`%${w}%`} or lower(coalesce(${sql.ref('m.display_name')}, '')) like ${`%${w}%`})`);
    }
    const page = await q.orderBy('m.user_id').orderBy('m.room_id').limit(100).offset(offset).execute();
    out.push(...page);
    if (page.length < 100) break;
  }
  return out;
}

async function insertRows(db: Db, rooms: number, perRoom: number): Promise<void> {
  let pos = 1;
  for (let r = 0; r < rooms; r++) {
    const roomId = `!room${r}:here.example`;
    const locals = [localUser(1 + (r % (LOCAL_USERS - 1)))];
    if (r < SEARCHER_ROOMS) locals.push(searcher);
    const remotes = new Set<number>();
    while (remotes.size < perRoom) remotes.add(Math.floor(random() * REMOTE_USERS));
    const members = [...remotes].map((i) => ({ userId: remoteUser(i), name: remoteName(i), pos: pos++ }));
    await db.transaction().execute(async (trx) => {
      await trx
        .insertInto('user_directory_rooms')
        .values({ room_id: roomId, join_rule: r % 4 === 0 ? 'public' : 'invite', history_visibility: 'shared' })
        .execute();
      await trx.insertInto('user_directory_local').values(locals.map((u) => ({ room_id: roomId, user_id: u }))).execute();
      await trx
        .insertInto('user_directory_remote')
        .values(members.map((m) => ({ room_id: roomId, user_id: m.userId, event_id: `$m${m.pos}`, display_name: m.name, avatar_url: null, search_text: searchText(m.userId, m.name), stream_pos: m.pos })))
        .execute();
      const membership = (userId: string, name: string | null, p: number) => ({
        room_id: roomId, user_id: userId, membership: 'join', event_id: `$m${p}`, stream_pos: p, sender: userId, display_name: name, avatar_url: null, forgotten: 0,
      });
      await trx
        .insertInto('room_memberships')
        .values([...locals.map((u) => membership(u, null, pos++)), ...members.map((m) => membership(m.userId, m.name, m.pos))])
        .execute();
    });
  }
}
