/** Tables owned by the search domain. */
declare module '../db/schema.js' {
  interface Tables {
    event_search: EventSearchRow;
  }
}

/**
 * One row per searchable event (search.md "room_events": `content.body` of
 * m.room.message, `content.name` of m.room.name, `content.topic` of
 * m.room.topic): on SQLite an FTS5 table whose only indexed column is
 * `value`; on PostgreSQL a table whose `vector` (a tsvector of the value) has
 * a GIN index. Written in the transaction that persists the event; deleted
 * when the event is redacted.
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
