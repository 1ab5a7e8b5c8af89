import { sql } from 'kysely';
import type { Migration } from '../db/migrate.js';

export const migrations: Migration[] = [
  {
    version: 1,
    name: 'push rules, event push actions, read positions, pushers',
    async up(db) {
      await db.schema
        .createTable('push_rules')
        .addColumn('user_id', 'text', (c) => c.primaryKey())
        .addColumn('json', 'text', (c) => c.notNull())
        .addColumn('updated_ts', 'bigint', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('event_push_actions')
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('room_id', 'text', (c) => c.notNull())
        .addColumn('event_id', 'text', (c) => c.notNull())
        .addColumn('stream_pos', 'bigint', (c) => c.notNull())
        .addColumn('notify', 'integer', (c) => c.notNull())
        .addColumn('highlight', 'integer', (c) => c.notNull())
        .addColumn('actions', 'text', (c) => c.notNull())
        .addColumn('ts', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('event_push_actions_pk', ['user_id', 'event_id'])
        .execute();
      await db.schema
        .createIndex('event_push_actions_room')
        .on('event_push_actions')
        .columns(['user_id', 'room_id', 'stream_pos'])
        .execute();
      await db.schema.createIndex('event_push_actions_user').on('event_push_actions').columns(['user_id', 'stream_pos']).execute();

      await db.schema
        .createTable('push_read_upto')
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('room_id', 'text', (c) => c.notNull())
        .addColumn('stream_pos', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('push_read_upto_pk', ['user_id', 'room_id'])
        .execute();

      await db.schema
        .createTable('pushers')
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('app_id', 'text', (c) => c.notNull())
        .addColumn('pushkey', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('app_display_name', 'text', (c) => c.notNull())
        .addColumn('device_display_name', 'text', (c) => c.notNull())
        .addColumn('profile_tag', 'text')
        .addColumn('lang', 'text', (c) => c.notNull())
        .addColumn('data', 'text', (c) => c.notNull())
        .addColumn('ts', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('pushers_pk', ['app_id', 'pushkey', 'user_id'])
        .execute();
      await db.schema.createIndex('pushers_user').on('pushers').column('user_id').execute();
    },
  },
  {
    version: 2,
    name: 'event push actions keyed by room and position',
    // A message writes one row per notified member, so each index on the table is a page per member
    // at commit. (user, room, position) identifies a row as well as (user, event) does (an event has
    // one position) and is the order unread counting reads; on SQLite the key is the table itself.
    async up(db, dialect) {
      if (dialect === 'sqlite') {
        await db.schema
          .createTable('event_push_actions_new')
          .addColumn('user_id', 'text', (c) => c.notNull())
          .addColumn('room_id', 'text', (c) => c.notNull())
          .addColumn('stream_pos', 'bigint', (c) => c.notNull())
          .addColumn('event_id', 'text', (c) => c.notNull())
          .addColumn('notify', 'integer', (c) => c.notNull())
          .addColumn('highlight', 'integer', (c) => c.notNull())
          .addColumn('actions', 'text', (c) => c.notNull())
          .addColumn('ts', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('event_push_actions_pk', ['user_id', 'room_id', 'stream_pos'])
          .modifyEnd(sql`without rowid`)
          .execute();
        await sql`insert into event_push_actions_new (user_id, room_id, stream_pos, event_id, notify, highlight, actions, ts)
          select user_id, room_id, stream_pos, event_id, notify, highlight, actions, ts from event_push_actions`.execute(db);
        await db.schema.dropTable('event_push_actions').execute();
        await db.schema.alterTable('event_push_actions_new').renameTo('event_push_actions').execute();
        await db.schema.createIndex('event_push_actions_user').on('event_push_actions').columns(['user_id', 'stream_pos']).execute();
      } else {
        await db.schema.alterTable('event_push_actions').dropConstraint('event_push_actions_pk').execute();
        await db.schema.dropIndex('event_push_actions_room').execute();
        await db.schema
          .alterTable('event_push_actions')
          .addPrimaryKeyConstraint('event_push_actions_pk', ['user_id', 'room_id', 'stream_pos'])
          .execute();
      }
    },
  },
  {
    version: 3,
    name: 'push outcomes per event, exceptions and member spans instead of a row per member',
    // See push-outcomes-store.ts. The rows of push actions become outcomes that notify nobody but
    // their exceptions (one per old row), and each user gets a span covering their old rows, so
    // counts and GET /notifications answer as before; spans of members joined now are opened by the
    // first event stored after the upgrade (PushService's span healing).
    async up(db, dialect) {
      const end = dialect === 'sqlite' ? sql`without rowid` : sql``;
      await db.schema
        .createTable('push_outcomes')
        .addColumn('room_id', 'text', (c) => c.notNull())
        .addColumn('stream_pos', 'bigint', (c) => c.notNull())
        .addColumn('event_id', 'text', (c) => c.notNull())
        .addColumn('sender', 'text', (c) => c.notNull())
        .addColumn('base', 'integer', (c) => c.notNull())
        .addColumn('actions', 'text')
        .addColumn('ts', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('push_outcomes_pk', ['room_id', 'stream_pos'])
        .modifyEnd(end)
        .execute();
      await db.schema
        .createTable('push_outcome_exceptions')
        .addColumn('room_id', 'text', (c) => c.notNull())
        .addColumn('stream_pos', 'bigint', (c) => c.notNull())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('level', 'integer', (c) => c.notNull())
        .addColumn('actions', 'text')
        .addPrimaryKeyConstraint('push_outcome_exceptions_pk', ['room_id', 'stream_pos', 'user_id'])
        .modifyEnd(end)
        .execute();
      await db.schema
        .createTable('push_member_spans')
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('room_id', 'text', (c) => c.notNull())
        .addColumn('joined_pos', 'bigint', (c) => c.notNull())
        .addColumn('left_pos', 'bigint')
        .addPrimaryKeyConstraint('push_member_spans_pk', ['user_id', 'room_id', 'joined_pos'])
        .modifyEnd(end)
        .execute();
      await sql`create index push_member_spans_open on push_member_spans (room_id, user_id) where left_pos is null`.execute(db);

      await sql`insert into push_outcomes (room_id, stream_pos, event_id, sender, base, actions, ts)
        select room_id, stream_pos, min(event_id), '', 0, null, min(ts) from event_push_actions group by room_id, stream_pos`.execute(db);
      await sql`insert into push_outcome_exceptions (room_id, stream_pos, user_id, level, actions)
        select room_id, stream_pos, user_id, case when highlight = 1 then 2 else 1 end, actions from event_push_actions where notify = 1`.execute(db);
      await sql`insert into push_member_spans (user_id, room_id, joined_pos, left_pos)
        select user_id, room_id, 0, max(stream_pos) from event_push_actions group by user_id, room_id`.execute(db);
      await db.schema.dropTable('event_push_actions').execute();
    },
  },
  {
    version: 4,
    name: 'pushers remember their device; push delivery position',
    // The device lets a password change remove the pushers of the sessions it logs out; the
    // position is where the pusher (delivery.ts) has sent up to, so a restart resumes there.
    async up(db) {
      await db.schema.alterTable('pushers').addColumn('device_id', 'text').execute();
      await db.schema
        .createTable('push_delivery_position')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('stream_pos', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('push_outcomes_pos').on('push_outcomes').column('stream_pos').execute();
    },
  },
  {
    version: 5,
    name: 'per-thread unread counts (the thread of each outcome, thread read positions); invite pushes',
    // Threaded read receipts (spec: "Threaded read receipts") clear one thread's notifications;
    // the outcome's thread (null: the main timeline) says which receipt covers it.
    async up(db, dialect) {
      await db.schema.alterTable('push_outcomes').addColumn('thread_id', 'text').execute();
      // An invite notifies its local invitee, who is not joined (push_member_spans has no span for them).
      await db.schema.alterTable('push_outcome_exceptions').addColumn('invitee', 'integer', (c) => c.notNull().defaultTo(0)).execute();
      await db.schema
        .createTable('push_thread_read_upto')
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('room_id', 'text', (c) => c.notNull())
        .addColumn('thread_id', 'text', (c) => c.notNull())
        .addColumn('stream_pos', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('push_thread_read_upto_pk', ['user_id', 'room_id', 'thread_id'])
        .modifyEnd(dialect === 'sqlite' ? sql`without rowid` : sql``)
        .execute();
    },
  },
  {
    version: 6,
    name: 'push outcomes without an index by stream position alone',
    // The pusher reads outcomes in stream order through the events' own stream index (see
    // selectOutcomesAfter): a second index here was one more page written by every message.
    async up(db) {
      await db.schema.dropIndex('push_outcomes_pos').execute();
    },
  },
];
