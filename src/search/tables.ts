/** Tables owned by the search domain. */
declare module '../db/schema.js' {
  interface Tables {
    event_search: EventSearchRow;
    search_index_state: SearchIndexStateRow;
  }
}

/** The one row saying how far the indexer has read the events stream (indexer.ts). */
export interface SearchIndexStateRow {
  id: number;
  /** Every searchable event with a position in (0, forward_pos] is indexed. */
  forward_pos: number;
  /** Backfilled history (negative positions) is indexed down to backward_pos. */
  backward_pos: number;
}

/**
 * One row per searchable event (search.md "room_events": `content.body` of
 * m.room.message, `content.name` of m.room.name, `content.topic` of
 * m.room.topic): on SQLite an FTS5 table whose only indexed column is
 * `value`; on PostgreSQL a table whose `vector` (a tsvector of the value) has
 * a GIN index. Written by the indexer as it reads the events stream;
 * deleted in the transaction that redacts the event.
 */
export interface EventSearchRow {
  event_id: string;
  room_id: string;
  sender: string;
  /** content.body, content.name or content.topic. */
  key: string;
  stream_pos: number;
  origin_server_ts: number;
  /** SQLite: the indexed text. */
  value?: string;
  /** PostgreSQL: to_tsvector of the text. */
  vector?: unknown;
}
