import type { ClientEvent } from '../core/types.js';

/** The shapes of the rooms service's reads for other domains (sync, push, directory): memberships and timelines. */

export type Membership = 'join' | 'invite' | 'leave' | 'ban' | 'knock';

/** A user's latest membership in a room, as materialised by the pipeline. */
export interface RoomMembership {
  roomId: string;
  membership: Membership;
  eventId: string;
  /** Stream position of the membership event. */
  streamPos: number;
}

/** What /sync asks for one room's timeline. */
export interface TimelineQuery {
  roomId: string;
  /** Exclusive lower bound (stream position); 0 for an initial sync. */
  fromPos: number;
  /** Inclusive upper bound. */
  toPos: number;
  limit: number;
  /** Event type filters from the sync filter (`types`, `not_types`, `senders`, `not_senders`), glob `*` allowed. */
  filter?: { types?: string[]; not_types?: string[]; senders?: string[]; not_senders?: string[] };
  /** Whose view: adds `unsigned.transaction_id` for events that device sent. */
  viewer: { userId: string; deviceId?: string };
  /**
   * The caller reads the room's whole state at the start (`before`) or the
   * end (`after`) of the timeline next: that state is read with the
   * timeline, and history visibility takes what it needs from it rather than
   * reading the same state groups a second time.
   */
  wholeState?: 'before' | 'after';
}

/** How the room reads for /sync shape their events: without `room_id` (ClientEventWithoutRoomID). */
export interface EventShape {
  withoutRoomId?: boolean;
}

export interface TimelineChunk {
  /** Chronological (oldest first). */
  events: ClientEvent[];
  /** True when there were more events in (fromPos, toPos] than `limit`. */
  limited: boolean;
  /** Stream position just before the first returned event: a `/messages` `from` token for going backwards. */
  prevBatchPos: number;
}
