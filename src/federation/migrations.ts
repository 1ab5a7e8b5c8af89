import type { Migration } from '../db/migrate.js';

export const migrations: Migration[] = [
  {
    version: 1,
    name: 'remote servers keys and received transactions',
    async up(db) {
      // One row per (server, key id): the key, how long it may be used, and the signed response it came in.
      await db.schema
        .createTable('federation_server_keys')
        .addColumn('server_name', 'text', (c) => c.notNull())
        .addColumn('key_id', 'text', (c) => c.notNull())
        .addColumn('public_key', 'text', (c) => c.notNull())
        .addColumn('valid_until_ts', 'bigint', (c) => c.notNull())
        .addColumn('expired_ts', 'bigint')
        .addColumn('fetched_ts', 'bigint', (c) => c.notNull())
        .addColumn('response_json', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('federation_server_keys_pk', ['server_name', 'key_id'])
        .execute();
      await db.schema
        .createTable('federation_received_txns')
        .addColumn('origin', 'text', (c) => c.notNull())
        .addColumn('txn_id', 'text', (c) => c.notNull())
        .addColumn('response_json', 'text', (c) => c.notNull())
        .addColumn('received_ts', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('federation_received_txns_pk', ['origin', 'txn_id'])
        .execute();
      await db.schema.createIndex('federation_received_txns_ts_idx').on('federation_received_txns').column('received_ts').execute();
    },
  },
  {
    version: 2,
    name: 'outbound destinations and sender positions',
    async up(db) {
      await db.schema
        .createTable('federation_destinations')
        .addColumn('destination', 'text', (c) => c.primaryKey())
        .addColumn('delivered_pos', 'bigint', (c) => c.notNull())
        .addColumn('failing_since', 'bigint')
        .addColumn('last_error', 'text')
        .execute();
      await db.schema
        .createTable('federation_sender_positions')
        .addColumn('stream', 'text', (c) => c.primaryKey())
        .addColumn('pos', 'bigint', (c) => c.notNull())
        .execute();
    },
  },
];
