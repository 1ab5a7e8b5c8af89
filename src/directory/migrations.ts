import { sql, type Kysely } from 'kysely';
import type { Migration } from '../db/migrate.js';
import { searchText } from '../accounts/search-text.js';

/** Membership rows copied per statement when the user directory is first filled. */
const FILL_PAGE = 500;

export const migrations: Migration[] = [
  {
    version: 1,
    name: 'room aliases and the published room directory',
    async up(db) {
      await db.schema
        .createTable('room_aliases')
        .addColumn('room_alias', 'text', (c) => c.primaryKey())
        .addColumn('room_id', 'text', (c) => c.notNull())
        .addColumn('creator', 'text', (c) => c.notNull())
        .addColumn('created_ts', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('room_aliases_room_idx').on('room_aliases').column('room_id').execute();
      await db.schema
        .createTable('published_rooms')
        .addColumn('room_id', 'text', (c) => c.primaryKey())
        .addColumn('published_ts', 'bigint', (c) => c.notNull())
        .execute();
    },
  },
  {
    version: 2,
    name: 'the user directory of remote users, kept from the current-state stream',
    async up(db) {
      await db.schema
        .createTable('user_directory_remote')
        .addColumn('room_id', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('event_id', 'text', (c) => c.notNull())
        .addColumn('display_name', 'text')
        .addColumn('avatar_url', 'text')
        .addColumn('search_text', 'text', (c) => c.notNull())
        .addColumn('stream_pos', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('user_directory_remote_pk', ['room_id', 'user_id'])
        .execute();
      await db.schema.createIndex('user_directory_remote_user_idx').on('user_directory_remote').column('user_id').execute();
      await db.schema.createIndex('user_directory_remote_event_idx').on('user_directory_remote').column('event_id').execute();
      await db.schema
        .createTable('user_directory_local')
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('room_id', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('user_directory_local_pk', ['user_id', 'room_id'])
        .execute();
      await db.schema.createIndex('user_directory_local_room_idx').on('user_directory_local').column('room_id').execute();
      await db.schema
        .createTable('user_directory_rooms')
        .addColumn('room_id', 'text', (c) => c.primaryKey())
        .addColumn('join_rule', 'text')
        .addColumn('history_visibility', 'text')
        .execute();
      await db.schema
        .createTable('user_directory_position')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('stream_pos', 'bigint', (c) => c.notNull())
        .execute();
      await fillFromCurrentState(db);
    },
  },
];

/**
 * The rooms this server already has, as their current state holds them, and the stream position
 * that state is at: the consumer (remote-users-consumer.ts) goes on from there. The migration
 * knows no server name, so the users of this server are those it has accounts for.
 */
export async function fillFromCurrentState(db: Kysely<any>): Promise<void> {
  // Migrations run before the node serves anything, so no change lands between these reads.
  const head = await db.selectFrom('current_state_deltas').select(sql<string | number | null>`max(stream_pos)`.as('pos')).executeTakeFirst();
  await db.insertInto('user_directory_position').values({ id: 1, stream_pos: Number(head?.pos ?? 0) }).execute();

  await sql`
    insert into user_directory_local (user_id, room_id)
    select m.user_id, m.room_id from room_memberships m
    where m.membership = 'join' and m.user_id in (select u.user_id from users u)
  `.execute(db);

  let after = { room_id: '', user_id: '' };
  for (;;) {
    const page = (await db
      .selectFrom('room_memberships as m')
      .select(['m.room_id', 'm.user_id', 'm.event_id', 'm.display_name', 'm.avatar_url', 'm.stream_pos'])
      .where('m.membership', '=', 'join')
      .where('m.user_id', 'not in', db.selectFrom('users as u').select('u.user_id'))
      .where((eb) => eb.or([eb('m.room_id', '>', after.room_id), eb.and([eb('m.room_id', '=', after.room_id), eb('m.user_id', '>', after.user_id)])]))
      .orderBy('m.room_id')
      .orderBy('m.user_id')
      .limit(FILL_PAGE)
      .execute()) as { room_id: string; user_id: string; event_id: string; display_name: string | null; avatar_url: string | null; stream_pos: number }[];
    if (page.length === 0) break;
    await db
      .insertInto('user_directory_remote')
      .values(page.map((r) => ({ ...r, stream_pos: Number(r.stream_pos), search_text: searchText(r.user_id, r.display_name) })))
      .execute();
    const last = page[page.length - 1]!;
    after = { room_id: last.room_id, user_id: last.user_id };
  }

  // The newest change at each room's join-rules and history-visibility keys; a key state
  // resolution removed has an empty event id and leaves the value null.
  const settings = (await db
    .selectFrom('current_state_deltas as d')
    .leftJoin('events as e', 'e.event_id', 'd.event_id')
    .select(['d.room_id', 'd.type', 'e.json'])
    .where('d.type', 'in', ['m.room.join_rules', 'm.room.history_visibility'])
    .where('d.state_key', '=', '')
    .where((eb) =>
      eb(
        'd.stream_pos',
        '=',
        eb
          .selectFrom('current_state_deltas as n')
          .select(sql<number>`max(n.stream_pos)`.as('p'))
          .whereRef('n.room_id', '=', 'd.room_id')
          .whereRef('n.type', '=', 'd.type')
          .where('n.state_key', '=', ''),
      ),
    )
    .execute()) as { room_id: string; type: string; json: string | null }[];
  const rooms = new Map<string, { room_id: string; join_rule: string | null; history_visibility: string | null }>();
  for (const s of settings) {
    const room = rooms.get(s.room_id) ?? { room_id: s.room_id, join_rule: null, history_visibility: null };
    const content = s.json === null ? undefined : (JSON.parse(s.json) as { content?: Record<string, unknown> }).content;
    if (s.type === 'm.room.join_rules') room.join_rule = stringOrNull(content?.join_rule);
    else room.history_visibility = stringOrNull(content?.history_visibility);
    rooms.set(s.room_id, room);
  }
  const values = [...rooms.values()];
  for (let i = 0; i < values.length; i += FILL_PAGE) await db.insertInto('user_directory_rooms').values(values.slice(i, i + FILL_PAGE)).execute();
}

function stringOrNull(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}
