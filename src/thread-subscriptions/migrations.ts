import type { Migration } from '../db/migrate.js';

export const migrations: Migration[] = [
  {
    version: 1,
    name: 'thread subscriptions',
    async up(db) {
      await db.schema
        .createTable('thread_subscriptions')
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('room_id', 'text', (c) => c.notNull())
        .addColumn('thread_root', 'text', (c) => c.notNull())
        .addColumn('subscribed', 'integer', (c) => c.notNull())
        .addColumn('automatic', 'integer', (c) => c.notNull())
        .addColumn('unsubscribed_after', 'bigint')
        .addColumn('stream_pos', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('thread_subscriptions_pk', ['user_id', 'room_id', 'thread_root'])
        .execute();
      await db.schema.createIndex('thread_subscriptions_user_pos_idx').on('thread_subscriptions').columns(['user_id', 'stream_pos']).execute();
      // The counter that orders changes (stream-positions.ts: taken last in each writing transaction).
      await db.insertInto('stream_positions').values({ stream: 'thread_subscriptions', pos: 0 }).execute();
    },
  },
  {
    version: 2,
    name: 'thread subscriptions by thread',
    async up(db) {
      // Push evaluation asks who is subscribed to the thread of every event in a thread (MSC4306's rules).
      await db.schema.createIndex('thread_subscriptions_thread_idx').on('thread_subscriptions').columns(['room_id', 'thread_root', 'subscribed']).execute();
    },
  },
];
