import { sql } from 'kysely';
import type { Migration } from '../db/migrate.js';

export const migrations: Migration[] = [
  {
    version: 1,
    name: 'rooms, events, state groups, current state, memberships, forward extremities',
    async up(db) {
      await db.schema
        .createTable('rooms')
        .addColumn('room_id', 'text', (c) => c.primaryKey())
        .addColumn('room_version', 'text', (c) => c.notNull())
        .addColumn('creator', 'text', (c) => c.notNull())
        .addColumn('created_ts', 'bigint', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('events')
        .addColumn('event_id', 'text', (c) => c.primaryKey())
        .addColumn('room_id', 'text', (c) => c.notNull())
        .addColumn('stream_pos', 'bigint')
        .addColumn('depth', 'bigint', (c) => c.notNull())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('state_key', 'text')
        .addColumn('sender', 'text', (c) => c.notNull())
        .addColumn('origin_server_ts', 'bigint', (c) => c.notNull())
        .addColumn('json', 'text', (c) => c.notNull())
        .addColumn('state_group', 'bigint')
        .addColumn('replaces_state', 'text')
        .addColumn('membership', 'text')
        .addColumn('redacts', 'text')
        .addColumn('redacted_by', 'text')
        .addColumn('outlier', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('rejected_reason', 'text')
        .addColumn('soft_failed', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('sender_device', 'text')
        .addColumn('txn_id', 'text')
        .execute();
      // Null positions (outliers) are distinct in a unique index on both backends.
      await db.schema.createIndex('events_stream_pos_uq').unique().on('events').column('stream_pos').execute();
      await db.schema.createIndex('events_room_pos_idx').on('events').columns(['room_id', 'stream_pos']).execute();
      // Membership and history-visibility histories: (type, state_key) first, then room.
      await db.schema.createIndex('events_state_idx').on('events').columns(['type', 'state_key', 'room_id', 'stream_pos']).execute();
      await db.schema.createIndex('events_redacts_idx').on('events').column('redacts').execute();
      // Send idempotency: one event per (room, user, device, transaction id).
      await db.schema
        .createIndex('events_txn_uq')
        .unique()
        .on('events')
        .columns(['room_id', 'sender', 'sender_device', 'txn_id'])
        .execute();

      await db.schema
        .createTable('state_groups')
        .addColumn('id', 'bigint', (c) => c.primaryKey())
        .addColumn('room_id', 'text', (c) => c.notNull())
        .addColumn('prev_group', 'bigint')
        .addColumn('delta_depth', 'integer', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('state_group_deltas')
        .addColumn('state_group', 'bigint', (c) => c.notNull())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('state_key', 'text', (c) => c.notNull())
        .addColumn('event_id', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('state_group_deltas_pk', ['state_group', 'type', 'state_key'])
        .execute();

      await db.schema
        .createTable('current_state')
        .addColumn('room_id', 'text', (c) => c.notNull())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('state_key', 'text', (c) => c.notNull())
        .addColumn('event_id', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('current_state_pk', ['room_id', 'type', 'state_key'])
        .execute();

      await db.schema
        .createTable('room_memberships')
        .addColumn('room_id', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('membership', 'text', (c) => c.notNull())
        .addColumn('event_id', 'text', (c) => c.notNull())
        .addColumn('stream_pos', 'bigint', (c) => c.notNull())
        .addColumn('sender', 'text', (c) => c.notNull())
        .addColumn('display_name', 'text')
        .addColumn('avatar_url', 'text')
        .addColumn('forgotten', 'integer', (c) => c.notNull().defaultTo(0))
        .addPrimaryKeyConstraint('room_memberships_pk', ['room_id', 'user_id'])
        .execute();
      await db.schema.createIndex('room_memberships_user_idx').on('room_memberships').columns(['user_id', 'membership']).execute();
      await db.schema.createIndex('room_memberships_room_idx').on('room_memberships').columns(['room_id', 'membership']).execute();

      await db.schema
        .createTable('forward_extremities')
        .addColumn('room_id', 'text', (c) => c.notNull())
        .addColumn('event_id', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('forward_extremities_pk', ['room_id', 'event_id'])
        .execute();
    },
  },
  {
    version: 2,
    name: 'fewer index pages written per message',
    // Every index a message row enters is one more page written at commit: the state and redaction
    // indexes only serve rows that have the column, and the extremity list is looked up by its key.
    async up(db, dialect) {
      await db.schema.dropIndex('events_state_idx').execute();
      await db.schema
        .createIndex('events_state_idx')
        .on('events')
        .columns(['type', 'state_key', 'room_id', 'stream_pos'])
        .where(sql.ref('state_key'), 'is not', null)
        .execute();
      await db.schema.dropIndex('events_redacts_idx').execute();
      await db.schema.createIndex('events_redacts_idx').on('events').column('redacts').where(sql.ref('redacts'), 'is not', null).execute();
      if (dialect === 'sqlite') {
        await db.schema
          .createTable('forward_extremities_new')
          .addColumn('room_id', 'text', (c) => c.notNull())
          .addColumn('event_id', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('forward_extremities_pk', ['room_id', 'event_id'])
          .modifyEnd(sql`without rowid`)
          .execute();
        await sql`insert into forward_extremities_new (room_id, event_id) select room_id, event_id from forward_extremities`.execute(db);
        await db.schema.dropTable('forward_extremities').execute();
        await db.schema.alterTable('forward_extremities_new').renameTo('forward_extremities').execute();
      }
    },
  },
];
