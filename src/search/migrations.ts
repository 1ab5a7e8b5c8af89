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
  {
    version: 2,
    name: 'SQLite full-text rows keyed by stream position',
    async up(db, dialect) {
      if (dialect !== 'sqlite') return;
      // A redaction deletes its event's row: by row id, which is now the stream position (FTS5
      // matches event_id only by reading every row). One row per position is kept.
      await sql`create virtual table event_search_by_pos using fts5(
        value, event_id unindexed, room_id unindexed, sender unindexed, key unindexed,
        stream_pos unindexed, origin_server_ts unindexed, tokenize = 'porter unicode61')`.execute(db);
      await sql`insert into event_search_by_pos (rowid, value, event_id, room_id, sender, key, stream_pos, origin_server_ts)
        select stream_pos, value, event_id, room_id, sender, key, stream_pos, origin_server_ts from event_search
        where rowid in (select min(rowid) from event_search group by stream_pos)`.execute(db);
      await sql`drop table event_search`.execute(db);
      await sql`alter table event_search_by_pos rename to event_search`.execute(db);
    },
  },
];
