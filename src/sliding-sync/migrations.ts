import type { Migration } from '../db/migrate.js';

export const migrations: Migration[] = [
  {
    version: 1,
    name: 'sliding sync connections and positions',
    async up(db) {
      await db.schema
        .createTable('sliding_sync_connections')
        .addColumn('conn_key', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('device_id', 'text', (c) => c.notNull())
        .addColumn('conn_id', 'text', (c) => c.notNull())
        .addColumn('created_ts', 'bigint', (c) => c.notNull())
        .addColumn('last_used_ts', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('sliding_sync_connections_device_uq')
        .unique()
        .on('sliding_sync_connections')
        .columns(['user_id', 'device_id', 'conn_id'])
        .execute();
      await db.schema.createIndex('sliding_sync_connections_used_idx').on('sliding_sync_connections').column('last_used_ts').execute();
      await db.schema
        .createTable('sliding_sync_positions')
        .addColumn('conn_key', 'text', (c) => c.notNull())
        .addColumn('pos_id', 'text', (c) => c.notNull())
        .addColumn('parent_id', 'text', (c) => c.notNull())
        .addColumn('created_ts', 'bigint', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('sliding_sync_positions_pk', ['conn_key', 'pos_id'])
        .execute();
    },
  },
];
