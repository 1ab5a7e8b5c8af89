/** Row types of the federation domain's tables (see migrations.ts). */

declare module '../db/schema.js' {
  interface Tables {
    federation_server_keys: ServerKeyRow;
    federation_received_txns: ReceivedTxnRow;
    federation_destinations: DestinationRow;
    federation_sender_positions: SenderPositionRow;
    federation_outbound_edus: OutboundEduRow;
  }
}

/**
 * A remote server's signing key as verified here. `valid_until_ts` is already capped at seven
 * days after fetching (spec: keys, `valid_until_ts`); an old key (`old_verify_keys`) has its
 * `expired_ts` and is valid only for events sent before it.
 */
export interface ServerKeyRow {
  server_name: string;
  key_id: string;
  /** Unpadded Base64. */
  public_key: string;
  valid_until_ts: number;
  expired_ts: number | null;
  fetched_ts: number;
  /** The server's own signed key response the key came in, served again by the notary endpoints. */
  response_json: string;
}

/** A transaction received over `/send`, with the answer given, so that a retry is not processed twice. */
export interface ReceivedTxnRow {
  origin: string;
  txn_id: string;
  response_json: string;
  received_ts: number;
}

/**
 * A server this one sends events to: how far its queue got (the events stream position up to
 * which everything meant for it was delivered) and, while it fails, since when and why.
 */
export interface DestinationRow {
  destination: string;
  delivered_pos: number;
  /** The federation_edus position up to which the server took this server's stored EDUs. */
  edu_pos: number;
  failing_since: number | null;
  last_error: string | null;
}

/** How far the sender has read a stream to sort its events into destination queues. */
export interface SenderPositionRow {
  stream: string;
  pos: number;
}

/**
 * An EDU that must reach `destination` even if it is down or this node restarts, at `pos` on the
 * federation_edus counter. `dedupe_key` tells the same EDU written twice (every node of a cluster
 * hears a device-list change and writes its EDUs) so that it is stored once.
 */
export interface OutboundEduRow {
  destination: string;
  pos: number;
  edu_type: string;
  content_json: string;
  dedupe_key: string;
  /** Rows with the same key for the same server carry the same kind of news, the newest alone worth sending (see supersedeKeyOf). */
  supersede_key: string | null;
  created_ts: number;
}
