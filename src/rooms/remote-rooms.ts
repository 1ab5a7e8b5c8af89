import type { JsonObject } from '../core/types.js';

/**
 * What the rooms domain asks of federation when a room or a user lives on another server;
 * federation implements it (absent while federation is off).
 */
export interface RemoteRooms {
  /** Joins `userId` to a room this server is not in, through one of `servers`; resolves once the join is stored. */
  join(roomId: string, userId: string, servers: string[], content: JsonObject): Promise<void>;
  /** Leaves a room this server is not in (rejecting an invite) through one of `servers`; resolves once the leave is stored. */
  leave(roomId: string, userId: string, servers: string[], content: JsonObject): Promise<void>;
  /** Knocks on a room this server is not in through one of `servers` (make_knock / send_knock); resolves once the knock is held here. */
  knock(roomId: string, userId: string, servers: string[], content: JsonObject): Promise<void>;
  /** Invites a user of another server to a room held here: their server signs the invite before it is stored. */
  invite(roomId: string, inviter: string, target: string, content: JsonObject): Promise<void>;
  /**
   * Hands a third-party invite's proof to the server of `sender`, a user of another server who
   * sent the invite; that server issues the member invite of `signed.mxid`.
   */
  exchangeThirdPartyInvite(roomId: string, sender: string, signed: JsonObject): Promise<void>;
  /** Fetches history before the room's earliest known events from other servers; true when some was stored. */
  backfill(roomId: string, limit: number): Promise<boolean>;
  /**
   * Asks the other servers in the room for the event nearest `ts` in direction `dir`; when one is
   * closer to `ts` than `than` (the timestamp of the nearest event held here, null for none), it
   * is brought here as backfilled history and its id returned. Null otherwise.
   */
  eventNearTimestamp(roomId: string, ts: number, dir: 'f' | 'b', than: number | null): Promise<string | null>;
}
