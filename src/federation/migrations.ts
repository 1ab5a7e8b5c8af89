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
  {
    version: 3,
    name: 'outbound EDUs that must not be lost',
    async up(db) {
      // EDUs waiting for a server (to-device messages, device-list and signing-key updates), in
      // the order of the federation_edus counter, deleted once the server took them.
      await db.schema
        .createTable('federation_outbound_edus')
        .addColumn('destination', 'text', (c) => c.notNull())
        .addColumn('pos', 'bigint', (c) => c.notNull())
        .addColumn('edu_type', 'text', (c) => c.notNull())
        .addColumn('content_json', 'text', (c) => c.notNull())
        .addColumn('dedupe_key', 'text', (c) => c.notNull())
        .addColumn('created_ts', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('federation_outbound_edus_pk', ['destination', 'pos'])
        .execute();
      await db.schema.createIndex('federation_outbound_edus_dedupe_idx').unique().on('federation_outbound_edus').columns(['destination', 'dedupe_key']).execute();
      // Up to where the queue delivered the table's EDUs, moved under the destination's lease like delivered_pos.
      await db.schema.alterTable('federation_destinations').addColumn('edu_pos', 'bigint', (c) => c.notNull().defaultTo(0)).execute();
      await db.insertInto('stream_positions').values({ stream: 'federation_edus', pos: 0 }).execute();
    },
  },
  {
    version: 4,
    name: 'stored outbound EDUs bounded',
    async up(db) {
      // A row whose news a newer row for the same server repeats (the same user's read receipt
      // in the same room and thread) carries the same key; the pruner drops the older ones.
      await db.schema.alterTable('federation_outbound_edus').addColumn('supersede_key', 'text').execute();
      await db.schema
        .createIndex('federation_outbound_edus_supersede_idx')
        .on('federation_outbound_edus')
        .columns(['destination', 'supersede_key', 'pos'])
        .execute();
      // Rows past the age cap are found by when they were stored.
      await db.schema.createIndex('federation_outbound_edus_created_idx').on('federation_outbound_edus').column('created_ts').execute();
    },
  },
];
