/** Tables owned by the sliding-sync domain: connections and the positions handed out on them. */
declare module '../db/schema.js' {
  interface Tables {
    sliding_sync_connections: SlidingConnectionRow;
    sliding_sync_positions: SlidingPositionRow;
  }
}

/** One sync loop of a device (MSC4186 "Connections"), named by the client's `conn_id`. */
export interface SlidingConnectionRow {
  /** Random id, the first half of every `pos` handed out on the connection. */
  conn_key: string;
  user_id: string;
  device_id: string;
  /** The client's `conn_id` ('' when it sent none). */
  conn_id: string;
  created_ts: number;
  last_used_ts: number;
}

/**
 * What the client has after receiving one response: the stream heads it
 * covered and, per room, what was sent. A request names the position it
 * builds on; the answer is stored as a child of it, so a retried request
 * builds on the same parent again.
 */
export interface SlidingPositionRow {
  conn_key: string;
  pos_id: string;
  /** The position this one was computed from ('' for the first of a connection). */
  parent_id: string;
  created_ts: number;
  /** JSON of ConnectionState (connection-state.ts). */
  state: string;
}
