import type { Context } from '../context.js';
import type { ClientEvent, StrippedStateEvent } from '../core/types.js';

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
}

export interface TimelineChunk {
  /** Chronological (oldest first). */
  events: ClientEvent[];
  /** True when there were more events in (fromPos, toPos] than `limit`. */
  limited: boolean;
  /** Stream position just before the first returned event: a `/messages` `from` token for going backwards. */
  prevBatchPos: number;
}

/**
 * The event pipeline, room state and every room endpoint. Methods below
 * "cross-domain API" are used by sync, push, accounts and directory, and keep
 * their signatures.
 */
export class RoomsService {
  constructor(private readonly ctx: Context) {}

  // ---- cross-domain API ----

  /** Every room the user has a membership in (any membership), with the event that set it. */
  async getMemberships(userId: string): Promise<RoomMembership[]> {
    void userId;
    throw new Error('unimplemented');
  }

  /** The user's membership changes with stream position in (fromPos, toPos]. */
  async getMembershipChanges(userId: string, fromPos: number, toPos: number): Promise<RoomMembership[]> {
    void [userId, fromPos, toPos];
    throw new Error('unimplemented');
  }

  /** Of the given rooms, those with any event whose stream position is in (fromPos, toPos]. One query. */
  async getRoomsWithEventsBetween(roomIds: string[], fromPos: number, toPos: number): Promise<Set<string>> {
    void [roomIds, fromPos, toPos];
    throw new Error('unimplemented');
  }

  async getTimeline(q: TimelineQuery): Promise<TimelineChunk> {
    void q;
    throw new Error('unimplemented');
  }

  /** Room state after the last event at or before stream position `pos`, as client events. */
  async getStateAtPosition(roomId: string, pos: number): Promise<ClientEvent[]> {
    void [roomId, pos];
    throw new Error('unimplemented');
  }

  /**
   * State events whose (type, state_key) changed between two positions, with
   * their value at `toPos` (for incremental sync's `state` section).
   */
  async getStateChangesBetween(roomId: string, fromPos: number, toPos: number): Promise<ClientEvent[]> {
    void [roomId, fromPos, toPos];
    throw new Error('unimplemented');
  }

  /** The room's current state; optionally only some types. */
  async getCurrentState(roomId: string, types?: string[]): Promise<ClientEvent[]> {
    void [roomId, types];
    throw new Error('unimplemented');
  }

  /** Stripped state shown with an invite or knock (create, join rules, name, avatar, encryption, canonical alias, and the member event). */
  async getStrippedState(roomId: string, memberEventId: string): Promise<StrippedStateEvent[]> {
    void [roomId, memberEventId];
    throw new Error('unimplemented');
  }

  async getEvents(eventIds: string[], viewer?: { userId: string; deviceId?: string }): Promise<Map<string, ClientEvent>> {
    void [eventIds, viewer];
    throw new Error('unimplemented');
  }

  /** Stream position of an event (null for outliers or unknown events). */
  async getEventStreamPos(eventId: string): Promise<number | null> {
    void eventId;
    throw new Error('unimplemented');
  }

  /** User ids currently joined to the room. */
  async getJoinedMembers(roomId: string): Promise<string[]> {
    void roomId;
    throw new Error('unimplemented');
  }

  /** Users who share at least one joined room with the user (the user included). */
  async getUsersSharingRooms(userId: string): Promise<Set<string>> {
    void userId;
    throw new Error('unimplemented');
  }

  /** Sends new m.room.member events with the user's new profile into every room they are joined to. */
  async onProfileChanged(userId: string): Promise<void> {
    void userId;
    throw new Error('unimplemented');
  }

  /** Leaves every room (deactivation). */
  async leaveAllRooms(userId: string): Promise<void> {
    void userId;
    throw new Error('unimplemented');
  }
}
