/** Tables owned by the sync domain (filters, account data, receipts, presence). */
declare module '../db/schema.js' {
  interface Tables {
    sync_filters: SyncFilterRow;
    sync_account_data: AccountDataRow;
    sync_receipts: ReceiptRow;
    sync_presence: PresenceRow;
  }
}

export interface SyncFilterRow {
  user_id: string;
  filter_id: string;
  /** The filter as uploaded, JSON. */
  filter_json: string;
}

export interface AccountDataRow {
  user_id: string;
  /** '' for global account data. */
  room_id: string;
  type: string;
  /** JSON object. */
  content: string;
  /** Position on the 'account_data' stream of the last change. */
  stream_pos: number;
}

export interface ReceiptRow {
  room_id: string;
  user_id: string;
  receipt_type: string;
  /** '' for an unthreaded receipt, 'main' or a thread root event id otherwise. */
  thread_id: string;
  event_id: string;
  /** Stream position of the receipted event, to refuse moving backwards. */
  event_pos: number;
  ts: number;
  /** Position on the 'receipts' stream. */
  stream_pos: number;
}

export interface PresenceRow {
  user_id: string;
  presence: string;
  status_msg: string | null;
  last_active_ts: number;
  /** Last time a /sync of this user was seen (any node); drives the offline timeout. */
  last_sync_ts: number;
  /** Position on the 'presence' stream of the last change worth telling others. */
  stream_pos: number;
}
