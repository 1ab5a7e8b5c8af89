import type { Migration } from '../db/migrate.js';

export const migrations: Migration[] = [
  {
    version: 1,
    name: 'delayed events',
    async up(db) {
      await db.schema
        .createTable('delayed_events')
        .addColumn('delay_id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('device_id', 'text', (c) => c.notNull())
        .addColumn('room_id', 'text', (c) => c.notNull())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('state_key', 'text')
        .addColumn('content', 'text', (c) => c.notNull())
        .addColumn('delay_ms', 'bigint', (c) => c.notNull())
        .addColumn('running_since', 'bigint', (c) => c.notNull())
        .addColumn('send_ts', 'bigint', (c) => c.notNull())
        .addColumn('txn_id', 'text')
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('event_id', 'text')
        .addColumn('error', 'text')
        .addColumn('finalised_ts', 'bigint')
        .execute();
      await db.schema.createIndex('delayed_events_due_idx').on('delayed_events').columns(['status', 'send_ts']).execute();
      await db.schema.createIndex('delayed_events_user_idx').on('delayed_events').columns(['user_id', 'status']).execute();
      await db.schema.createIndex('delayed_events_txn_uq').unique().on('delayed_events').columns(['user_id', 'device_id', 'txn_id']).execute();
    },
  },
];
