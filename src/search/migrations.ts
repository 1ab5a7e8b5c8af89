import { sql } from 'kysely';
import type { Migration } from '../db/migrate.js';

/** The text search configuration PostgreSQL indexes and queries with (stemming, as SQLite's porter tokenizer). */
export const PG_TEXT_CONFIG = 'english';

export const migrations: Migration[] = [
  {
    version: 1,
    name: 'full-text index of room events',
    async up(db, dialect) {
      // How far the indexer has read the events stream: up to forward_pos, and backfilled history down to backward_pos.
      await db.schema
        .createTable('search_index_state')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('forward_pos', 'bigint', (c) => c.notNull())
        .addColumn('backward_pos', 'bigint', (c) => c.notNull())
        .execute();
      await db.insertInto('search_index_state').values({ id: 1, forward_pos: 0, backward_pos: 0 }).execute();
      if (dialect === 'sqlite') {
        await sql`create virtual table event_search using fts5(
          value, event_id unindexed, room_id unindexed, sender unindexed, key unindexed,
          stream_pos unindexed, origin_server_ts unindexed, tokenize = 'porter unicode61')`.execute(db);
        return;
      }
      await db.schema
        .createTable('event_search')
        .addColumn('event_id', 'text', (c) => c.primaryKey())
        .addColumn('room_id', 'text', (c) => c.notNull())
        .addColumn('sender', 'text', (c) => c.notNull())
        .addColumn('key', 'text', (c) => c.notNull())
        .addColumn('stream_pos', 'bigint', (c) => c.notNull())
        .addColumn('origin_server_ts', 'bigint', (c) => c.notNull())
        .addColumn('vector', sql`tsvector`, (c) => c.notNull())
        .execute();
      await sql`create index event_search_vector on event_search using gin (vector)`.execute(db);
      await db.schema.createIndex('event_search_room').on('event_search').columns(['room_id', 'stream_pos']).execute();
    },
  },
];
