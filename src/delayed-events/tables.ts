/** Tables owned by the delayed-events domain (MSC4140). */
declare module '../db/schema.js' {
  interface Tables {
    delayed_events: DelayedEventRow;
  }
}

export type DelayedStatus = 'scheduled' | 'sending' | 'sent' | 'cancelled' | 'error';

/** An event a user scheduled to be sent later, kept after it is finalised (sent, cancelled, failed) for a while. */
export interface DelayedEventRow {
  /** Random, unguessable: it alone authorises managing the event. */
  delay_id: string;
  user_id: string;
  device_id: string;
  room_id: string;
  type: string;
  /** null for a message event. */
  state_key: string | null;
  /** JSON object. */
  content: string;
  delay_ms: number;
  running_since: number;
  /** running_since + delay_ms. */
  send_ts: number;
  /** The scheduling request's transaction id (send endpoint), for retries. */
  txn_id: string | null;
  status: DelayedStatus;
  event_id: string | null;
  /** JSON Matrix error of a failed send. */
  error: string | null;
  finalised_ts: number | null;
}
