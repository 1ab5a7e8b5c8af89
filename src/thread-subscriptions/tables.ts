/** Tables owned by the thread-subscriptions domain (MSC4306). */
declare module '../db/schema.js' {
  interface Tables {
    thread_subscriptions: ThreadSubscriptionRow;
  }
}

/**
 * A user's subscription to one thread, or the mark that they unsubscribed. Every change takes a
 * new `stream_pos` (the `thread_subscriptions` counter), so a sync sends only what changed.
 */
export interface ThreadSubscriptionRow {
  user_id: string;
  room_id: string;
  /** The thread's root event. */
  thread_root: string;
  /** 1 subscribed, 0 unsubscribed (kept so clients learn of the unsubscription). */
  subscribed: number;
  /** 1 when a client subscribed automatically (a mention), 0 when the user chose to. */
  automatic: number;
  /** Events position when the user last unsubscribed: an automatic subscription caused by an event up to there is refused. */
  unsubscribed_after: number | null;
  stream_pos: number;
}
