import type { Migration } from '../db/migrate.js';

export const migrations: Migration[] = [
  {
    version: 1,
    name: 'event relations index',
    async up(db) {
      await db.schema
        .createTable('event_relations')
        .addColumn('event_id', 'text', (c) => c.primaryKey())
        .addColumn('relates_to', 'text', (c) => c.notNull())
        .addColumn('room_id', 'text', (c) => c.notNull())
        .addColumn('rel_type', 'text', (c) => c.notNull())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('sender', 'text', (c) => c.notNull())
        .addColumn('aggregation_key', 'text')
        .addColumn('depth', 'bigint', (c) => c.notNull())
        .addColumn('stream_pos', 'bigint', (c) => c.notNull())
        .addColumn('origin_server_ts', 'bigint', (c) => c.notNull())
        .execute();
      // Children of a parent in topological order (/relations, bundled aggregations).
      await db.schema.createIndex('event_relations_parent').on('event_relations').columns(['relates_to', 'depth', 'stream_pos']).execute();
      // Threads of a room by their latest reply (/threads).
      await db.schema.createIndex('event_relations_room').on('event_relations').columns(['room_id', 'rel_type', 'stream_pos']).execute();
    },
  },
];
