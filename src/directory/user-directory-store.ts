import { sql } from 'kysely';
import { prepared } from '../db/prepared.js';
import type { DbOrTx } from '../db/schema.js';
import type { DirectoryChanges } from './remote-users-changes.js';

/**
 * The user directory's own tables (tables.ts): remote users by room, local users by room, the
 * two state values that open a room to every searcher, and the stream position they are at.
 */

/** Rows per multi-row INSERT and ids per IN list (7 columns at most: well under both drivers' parameter limits). */
const CHUNK = 200;

// Built once: the directory's consumer reads it after every burst of events.
const selectPosition = prepared((db, _p: Record<string, never>) => db.selectFrom('user_directory_position').select('stream_pos').where('id', '=', 1));

export async function selectDirectoryPosition(db: DbOrTx): Promise<number> {
  const [row] = (await selectPosition.execute(db, {})).rows;
  if (!row) throw new Error('user_directory_position has no row');
  return Number(row.stream_pos);
}

/**
 * Moves the position from `from` to `to` and writes `changes` with it. False, writing nothing,
 * when the position is no longer `from` (another consumer moved it first).
 */
export async function applyDirectoryChanges(trx: DbOrTx, from: number, to: number, changes: DirectoryChanges): Promise<boolean> {
  const moved = await trx.updateTable('user_directory_position').set({ stream_pos: to }).where('id', '=', 1).where('stream_pos', '=', from).executeTakeFirst();
  if (Number(moved.numUpdatedRows) !== 1) return false;
  for (const m of changes.remoteGone) {
    await trx.deleteFrom('user_directory_remote').where('room_id', '=', m.room_id).where('user_id', '=', m.user_id).execute();
  }
  for (let i = 0; i < changes.remoteJoined.length; i += CHUNK) {
    await trx
      .insertInto('user_directory_remote')
      .values(changes.remoteJoined.slice(i, i + CHUNK))
      .onConflict((oc) =>
        oc.columns(['room_id', 'user_id']).doUpdateSet((eb) => ({
          event_id: eb.ref('excluded.event_id'),
          display_name: eb.ref('excluded.display_name'),
          avatar_url: eb.ref('excluded.avatar_url'),
          search_text: eb.ref('excluded.search_text'),
          stream_pos: eb.ref('excluded.stream_pos'),
        })),
      )
      .execute();
  }
  for (const r of changes.redacted) {
    await trx
      .updateTable('user_directory_remote')
      .set({ display_name: r.display_name, avatar_url: r.avatar_url, search_text: r.search_text })
      .where('event_id', '=', r.event_id)
      .execute();
  }
  for (const m of changes.localGone) {
    await trx.deleteFrom('user_directory_local').where('user_id', '=', m.user_id).where('room_id', '=', m.room_id).execute();
  }
  for (let i = 0; i < changes.localJoined.length; i += CHUNK) {
    await trx
      .insertInto('user_directory_local')
      .values(changes.localJoined.slice(i, i + CHUNK))
      .onConflict((oc) => oc.columns(['user_id', 'room_id']).doNothing())
      .execute();
  }
  for (const r of changes.joinRules) {
    await trx
      .insertInto('user_directory_rooms')
      .values({ room_id: r.room_id, join_rule: r.value, history_visibility: null })
      .onConflict((oc) => oc.column('room_id').doUpdateSet({ join_rule: r.value }))
      .execute();
  }
  for (const r of changes.historyVisibility) {
    await trx
      .insertInto('user_directory_rooms')
      .values({ room_id: r.room_id, join_rule: null, history_visibility: r.value })
      .onConflict((oc) => oc.column('room_id').doUpdateSet({ history_visibility: r.value }))
      .execute();
  }
  return true;
}

/** Of `eventIds`, the member events rows hold now, with the user each belongs to. */
export async function selectRowsOfEvents(db: DbOrTx, eventIds: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (let i = 0; i < eventIds.length; i += CHUNK) {
    const rows = await db.selectFrom('user_directory_remote').select(['event_id', 'user_id']).where('event_id', 'in', eventIds.slice(i, i + CHUNK)).execute();
    for (const r of rows) out.set(r.event_id, r.user_id);
  }
  return out;
}

export interface RemoteUserRow {
  user_id: string;
  display_name: string | null;
  avatar_url: string | null;
  stream_pos: number;
}

/**
 * Remote users the searcher may find whose search text holds a word starting with each of
 * `words` (searchWords() form: letters and digits only, so no LIKE wildcard): one row per room
 * they are visible through, each user's newest first, in user id order, at most `limit` rows.
 * Visible through a room: one the searcher is joined to, or one with a public join rule or
 * world-readable history that a user of this server is joined to.
 */
export async function selectVisibleRemoteUsers(db: DbOrTx, searcher: string, words: string[], limit: number): Promise<RemoteUserRow[]> {
  let q = db
    .selectFrom('user_directory_remote as r')
    .select(['r.user_id', 'r.display_name', 'r.avatar_url', 'r.stream_pos'])
    .where((eb) =>
      eb.or([
        eb('r.room_id', 'in', eb.selectFrom('user_directory_local as s').select('s.room_id').where('s.user_id', '=', searcher)),
        eb(
          'r.room_id',
          'in',
          eb
            .selectFrom('user_directory_rooms as o')
            .select('o.room_id')
            .where((o) => o.or([o('o.join_rule', '=', 'public'), o('o.history_visibility', '=', 'world_readable')]))
            .where((o) => o.exists(o.selectFrom('user_directory_local as l').select('l.user_id').whereRef('l.room_id', '=', 'o.room_id'))),
        ),
      ]),
    );
  for (const w of words) q = q.where(sql<boolean>`${sql.ref('r.search_text')} like ${`% ${w}%`}`);
  const rows = await q.orderBy('r.user_id').orderBy('r.stream_pos', 'desc').limit(limit).execute();
  return rows.map((r) => ({ ...r, stream_pos: Number(r.stream_pos) }));
}
