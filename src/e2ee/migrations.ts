import type { Migration } from '../db/migrate.js';

export const migrations: Migration[] = [
  {
    version: 1,
    name: 'device keys, one-time and fallback keys, to-device, device list changes, cross-signing',
    async up(db) {
      await db.schema
        .createTable('device_keys')
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('device_id', 'text', (c) => c.notNull())
        .addColumn('json', 'text', (c) => c.notNull())
        .addColumn('pos', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('device_keys_pk', ['user_id', 'device_id'])
        .execute();

      await db.schema
        .createTable('one_time_keys')
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('device_id', 'text', (c) => c.notNull())
        .addColumn('algorithm', 'text', (c) => c.notNull())
        .addColumn('key_id', 'text', (c) => c.notNull())
        .addColumn('json', 'text', (c) => c.notNull())
        .addColumn('seq', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('one_time_keys_pk', ['user_id', 'device_id', 'algorithm', 'key_id'])
        .execute();
      await db.schema
        .createIndex('one_time_keys_claim')
        .on('one_time_keys')
        .columns(['user_id', 'device_id', 'algorithm', 'seq'])
        .execute();

      await db.schema
        .createTable('fallback_keys')
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('device_id', 'text', (c) => c.notNull())
        .addColumn('algorithm', 'text', (c) => c.notNull())
        .addColumn('key_id', 'text', (c) => c.notNull())
        .addColumn('json', 'text', (c) => c.notNull())
        .addColumn('used', 'integer', (c) => c.notNull().defaultTo(0))
        .addPrimaryKeyConstraint('fallback_keys_pk', ['user_id', 'device_id', 'algorithm'])
        .execute();

      await db.schema
        .createTable('to_device')
        .addColumn('pos', 'bigint', (c) => c.notNull().primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('device_id', 'text', (c) => c.notNull())
        .addColumn('sender', 'text', (c) => c.notNull())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('content', 'text', (c) => c.notNull())
        .addColumn('message_id', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('to_device_recipient').on('to_device').columns(['user_id', 'device_id', 'pos']).execute();

      await db.schema
        .createTable('to_device_txns')
        .addColumn('sender', 'text', (c) => c.notNull())
        .addColumn('sender_device', 'text', (c) => c.notNull())
        .addColumn('txn_id', 'text', (c) => c.notNull())
        .addColumn('ts', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('to_device_txns_pk', ['sender', 'sender_device', 'txn_id'])
        .execute();

      await db.schema
        .createTable('device_list_changes')
        .addColumn('pos', 'bigint', (c) => c.notNull())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('device_list_changes_pk', ['pos', 'user_id'])
        .execute();
      await db.schema.createIndex('device_list_changes_user').on('device_list_changes').columns(['user_id', 'pos']).execute();

      await db.schema
        .createTable('cross_signing_keys')
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('usage', 'text', (c) => c.notNull())
        .addColumn('public_key', 'text', (c) => c.notNull())
        .addColumn('json', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('cross_signing_keys_pk', ['user_id', 'usage'])
        .execute();

      await db.schema
        .createTable('e2e_signatures')
        .addColumn('signer_user_id', 'text', (c) => c.notNull())
        .addColumn('signer_key_id', 'text', (c) => c.notNull())
        .addColumn('target_user_id', 'text', (c) => c.notNull())
        .addColumn('target_key_id', 'text', (c) => c.notNull())
        .addColumn('signature', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('e2e_signatures_pk', ['target_user_id', 'target_key_id', 'signer_user_id', 'signer_key_id'])
        .execute();
    },
  },
  {
    version: 2,
    name: 'server-side key backup: versions and the room keys stored in them',
    async up(db) {
      await db.schema
        .createTable('key_backup_versions')
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('version', 'bigint', (c) => c.notNull())
        .addColumn('algorithm', 'text', (c) => c.notNull())
        .addColumn('auth_data', 'text', (c) => c.notNull())
        .addColumn('etag', 'bigint', (c) => c.notNull())
        .addColumn('key_count', 'bigint', (c) => c.notNull())
        .addColumn('deleted', 'integer', (c) => c.notNull().defaultTo(0))
        .addPrimaryKeyConstraint('key_backup_versions_pk', ['user_id', 'version'])
        .execute();

      await db.schema
        .createTable('key_backup_keys')
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('version', 'bigint', (c) => c.notNull())
        .addColumn('room_id', 'text', (c) => c.notNull())
        .addColumn('session_id', 'text', (c) => c.notNull())
        .addColumn('first_message_index', 'bigint', (c) => c.notNull())
        .addColumn('forwarded_count', 'bigint', (c) => c.notNull())
        .addColumn('is_verified', 'integer', (c) => c.notNull())
        .addColumn('session_data', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('key_backup_keys_pk', ['user_id', 'version', 'room_id', 'session_id'])
        .execute();
    },
  },
  {
    version: 3,
    name: 'dehydrated devices (MSC3814): one per user, with the data only its owner can decrypt',
    async up(db) {
      await db.schema
        .createTable('dehydrated_devices')
        .addColumn('user_id', 'text', (c) => c.primaryKey())
        .addColumn('device_id', 'text', (c) => c.notNull())
        .addColumn('device_data', 'text', (c) => c.notNull())
        .execute();
    },
  },
  {
    version: 4,
    name: 'device list changes name their device; remote users\' device lists: how far they are known',
    async up(db) {
      // Null for a change to the user's cross-signing keys.
      await db.schema.alterTable('device_list_changes').addColumn('device_id', 'text').execute();
      await db.schema
        .createTable('remote_device_lists')
        .addColumn('user_id', 'text', (c) => c.notNull().primaryKey())
        .addColumn('stream_id', 'bigint', (c) => c.notNull())
        .addColumn('stale', 'integer', (c) => c.notNull())
        .execute();
    },
  },
];
