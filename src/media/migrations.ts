import type { Migration } from '../db/migrate.js';

export const migrations: Migration[] = [
  {
    version: 1,
    name: 'local media, thumbnails and URL previews',
    async up(db) {
      await db.schema
        .createTable('local_media')
        .addColumn('media_id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('content_type', 'text')
        .addColumn('upload_name', 'text')
        .addColumn('size', 'bigint', (c) => c.notNull())
        .addColumn('sha256', 'text')
        .addColumn('created_ts', 'bigint', (c) => c.notNull())
        .addColumn('uploaded_ts', 'bigint')
        .addColumn('unused_expires_ts', 'bigint')
        .execute();
      await db.schema.createIndex('local_media_user_idx').on('local_media').columns(['user_id', 'created_ts']).execute();
      await db.schema.createIndex('local_media_sha256_idx').on('local_media').column('sha256').execute();
      await db.schema
        .createTable('media_thumbnails')
        .addColumn('media_id', 'text', (c) => c.notNull())
        .addColumn('width', 'integer', (c) => c.notNull())
        .addColumn('height', 'integer', (c) => c.notNull())
        .addColumn('method', 'text', (c) => c.notNull())
        .addColumn('animated', 'integer', (c) => c.notNull())
        .addColumn('content_type', 'text', (c) => c.notNull())
        .addColumn('sha256', 'text', (c) => c.notNull())
        .addColumn('size', 'bigint', (c) => c.notNull())
        .addColumn('created_ts', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('media_thumbnails_pk', ['media_id', 'width', 'height', 'method', 'animated'])
        .execute();
      await db.schema.createIndex('media_thumbnails_sha256_idx').on('media_thumbnails').column('sha256').execute();
      await db.schema
        .createTable('url_previews')
        .addColumn('url', 'text', (c) => c.primaryKey())
        .addColumn('og', 'text', (c) => c.notNull())
        .addColumn('fetched_ts', 'bigint', (c) => c.notNull())
        .addColumn('expires_ts', 'bigint', (c) => c.notNull())
        .execute();
    },
  },
  {
    version: 2,
    name: 'remote media cache',
    async up(db) {
      await db.schema
        .createTable('remote_media')
        .addColumn('server_name', 'text', (c) => c.notNull())
        .addColumn('media_id', 'text', (c) => c.notNull())
        .addColumn('content_type', 'text', (c) => c.notNull())
        .addColumn('upload_name', 'text')
        .addColumn('size', 'bigint', (c) => c.notNull())
        .addColumn('sha256', 'text', (c) => c.notNull())
        .addColumn('fetched_ts', 'bigint', (c) => c.notNull())
        .addColumn('last_access_ts', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('remote_media_pk', ['server_name', 'media_id'])
        .execute();
      await db.schema.createIndex('remote_media_access_idx').on('remote_media').column('last_access_ts').execute();
      await db.schema.createIndex('remote_media_sha256_idx').on('remote_media').column('sha256').execute();
      await db.schema
        .createTable('remote_media_thumbnails')
        .addColumn('server_name', 'text', (c) => c.notNull())
        .addColumn('media_id', 'text', (c) => c.notNull())
        .addColumn('width', 'integer', (c) => c.notNull())
        .addColumn('height', 'integer', (c) => c.notNull())
        .addColumn('method', 'text', (c) => c.notNull())
        .addColumn('animated', 'integer', (c) => c.notNull())
        .addColumn('content_type', 'text', (c) => c.notNull())
        .addColumn('sha256', 'text', (c) => c.notNull())
        .addColumn('size', 'bigint', (c) => c.notNull())
        .addColumn('created_ts', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('remote_media_thumbnails_pk', ['server_name', 'media_id', 'width', 'height', 'method', 'animated'])
        .execute();
      await db.schema.createIndex('remote_media_thumbnails_sha256_idx').on('remote_media_thumbnails').column('sha256').execute();
    },
  },
  {
    version: 3,
    name: 'last access of local media',
    async up(db) {
      await db.schema.alterTable('local_media').addColumn('last_access_ts', 'bigint').execute();
      // Until served again, media counts as last used when it arrived.
      await db.updateTable('local_media').set((eb) => ({ last_access_ts: eb.fn.coalesce('uploaded_ts', 'created_ts') })).where('sha256', 'is not', null).execute();
      await db.schema.createIndex('local_media_access_idx').on('local_media').column('last_access_ts').execute();
    },
  },
];
