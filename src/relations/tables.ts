/** Tables owned by the relations domain. */
declare module '../db/schema.js' {
  interface Tables {
    event_relations: EventRelationRow;
  }
}

/**
 * One row per servable event whose content carries a well-formed
 * `m.relates_to` with a `rel_type` (spec: client-server "Forming
 * relationships between events"): the child, its parent and what reads
 * filter and order children by. Written in the transaction that persists the
 * child; deleted when the child is redacted (its relation is pruned away).
 */
export interface EventRelationRow {
  event_id: string;
  relates_to: string;
  room_id: string;
  rel_type: string;
  /** The child's event type. */
  type: string;
  sender: string;
  /** `key` of an `m.annotation`, else null. */
  aggregation_key: string | null;
  depth: number;
  stream_pos: number;
  origin_server_ts: number;
}
