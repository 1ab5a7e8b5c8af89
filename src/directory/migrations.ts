import type { Migration } from '../db/migrate.js';

export const migrations: Migration[] = [
  {
    version: 1,
    name: 'room aliases and the published room directory',
    async up(db) {
      await db.schema
        .createTable('room_aliases')
        .addColumn('room_alias', 'text', (c) => c.primaryKey())
        .addColumn('room_id', 'text', (c) => c.notNull())
        .addColumn('creator', 'text', (c) => c.notNull())
        .addColumn('created_ts', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('room_aliases_room_idx').on('room_aliases').column('room_id').execute();
      await db.schema
        .createTable('published_rooms')
        .addColumn('room_id', 'text', (c) => c.primaryKey())
        .addColumn('published_ts', 'bigint', (c) => c.notNull())
        .execute();
    },
  },
];
