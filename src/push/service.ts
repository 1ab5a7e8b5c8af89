import type { Context } from '../context.js';
import type { ClientEvent } from '../core/types.js';
import type { Tx } from '../db/schema.js';

/** One user's push evaluation result for one event, to be stored with the event. */
export interface PushActionRow {
  userId: string;
  notify: boolean;
  highlight: boolean;
}

/**
 * Push rules (the client API), notification counts and, later, pushers.
 * Methods below "cross-domain API" are used by rooms and sync.
 */
export class PushService {
  constructor(private readonly ctx: Context) {}

  // ---- cross-domain API ----

  /**
   * Evaluates every joined local member's push rules for a new event (not
   * the sender). Called by the pipeline BEFORE its transaction: it may read
   * the database. `members` are the room's joined users; `powerLevels` the
   * room's current power levels content (or undefined); `displayNames` the
   * members' room display names.
   */
  async computeActions(
    event: ClientEvent,
    room: { members: string[]; powerLevels: Record<string, unknown> | undefined; displayNames: Map<string, string> },
  ): Promise<PushActionRow[]> {
    void [event, room];
    throw new Error('unimplemented');
  }

  /** Stores computed actions inside the pipeline's transaction, once the event has its stream position. */
  async storeActions(trx: Tx, roomId: string, eventId: string, streamPos: number, rows: PushActionRow[]): Promise<void> {
    void [trx, roomId, eventId, streamPos, rows];
    throw new Error('unimplemented');
  }

  /** Unread counts per room: notifying events after the user's read receipt. One query for all rooms. */
  async getUnreadCounts(userId: string, roomIds: string[]): Promise<Map<string, { notification_count: number; highlight_count: number }>> {
    void [userId, roomIds];
    throw new Error('unimplemented');
  }

  /** The user read up to the event at `streamPos` in a room (m.read or m.read.private). */
  async onReadUpTo(userId: string, roomId: string, streamPos: number): Promise<void> {
    void [userId, roomId, streamPos];
    throw new Error('unimplemented');
  }
}
