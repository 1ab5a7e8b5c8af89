import type { Migration } from '../db/migrate.js';

export const migrations: Migration[] = [
  {
    version: 1,
    name: 'filters, account data, receipts, presence',
    async up(db) {
      await db.schema
        .createTable('sync_filters')
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('filter_id', 'text', (c) => c.notNull())
        .addColumn('filter_json', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('sync_filters_pk', ['user_id', 'filter_id'])
        .execute();

      await db.schema
        .createTable('sync_account_data')
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('room_id', 'text', (c) => c.notNull())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('content', 'text', (c) => c.notNull())
        .addColumn('stream_pos', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('sync_account_data_pk', ['user_id', 'room_id', 'type'])
        .execute();
      await db.schema
        .createIndex('sync_account_data_user_pos')
        .on('sync_account_data')
        .columns(['user_id', 'stream_pos'])
        .execute();

      await db.schema
        .createTable('sync_receipts')
        .addColumn('room_id', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('receipt_type', 'text', (c) => c.notNull())
        .addColumn('thread_id', 'text', (c) => c.notNull())
        .addColumn('event_id', 'text', (c) => c.notNull())
        .addColumn('event_pos', 'bigint', (c) => c.notNull())
        .addColumn('ts', 'bigint', (c) => c.notNull())
        .addColumn('stream_pos', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('sync_receipts_pk', ['room_id', 'user_id', 'receipt_type', 'thread_id'])
        .execute();
      await db.schema.createIndex('sync_receipts_room_pos').on('sync_receipts').columns(['room_id', 'stream_pos']).execute();

      await db.schema
        .createTable('sync_presence')
        .addColumn('user_id', 'text', (c) => c.primaryKey())
        .addColumn('presence', 'text', (c) => c.notNull())
        .addColumn('status_msg', 'text')
        .addColumn('last_active_ts', 'bigint', (c) => c.notNull())
        .addColumn('last_sync_ts', 'bigint', (c) => c.notNull())
        .addColumn('stream_pos', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('sync_presence_pos').on('sync_presence').columns(['stream_pos']).execute();
    },
  },
];
