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
];
