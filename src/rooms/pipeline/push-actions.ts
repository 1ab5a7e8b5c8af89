import type { Context } from '../../context.js';
import type { ClientEvent, JsonObject } from '../../core/types.js';
import type { Tx } from '../../db/schema.js';
import type { PushActionRow } from '../../push/service.js';
import type { StatementSink } from '../../db/pg-pipeline.js';
import type { RoomHead } from '../state/room-head.js';

function isUnimplemented(e: unknown): boolean {
  return e instanceof Error && e.message === 'unimplemented';
}

/**
 * Push evaluation happens before the persisting transaction (it reads the
 * database). The result is what push stores with the event, in a list of
 * zero or one (push/service.ts PushOutcome: the event's outcome for the whole
 * room, not a row per member). A failing evaluator costs notifications,
 * never the message.
 */
export async function computePushActions(
  ctx: Context,
  event: ClientEvent,
  room: PushRoom,
): Promise<PushActionRow[]> {
  try {
    return await ctx.services.push.computeActions(event, room);
  } catch (e) {
    if (!isUnimplemented(e)) ctx.logger.error({ err: e, eventId: event.event_id }, 'push evaluation failed');
    return [];
  }
}

/** Inside the transaction: errors other than "not written yet" abort the transaction. */
export async function storePushActions(
  ctx: Context,
  trx: Tx,
  roomId: string,
  eventId: string,
  streamPos: number,
  rows: PushActionRow[],
): Promise<void> {
  try {
    await ctx.services.push.storeActions(trx, roomId, eventId, streamPos, rows);
  } catch (e) {
    if (!isUnimplemented(e)) throw e;
  }
}

/** As storePushActions, written to a transaction that takes statements without answering each (sqlite-sync, pg-pipeline). */
export function storePushActionsVia(ctx: Context, tx: StatementSink, roomId: string, eventId: string, streamPos: number, rows: PushActionRow[]): void {
  try {
    ctx.services.push.storeActionsVia(tx, roomId, eventId, streamPos, rows);
  } catch (e) {
    if (!isUnimplemented(e)) throw e;
  }
}

/** What push rules read of a room before an event: its joined members and their display names. */
export interface PushRoom {
  members: string[];
  powerLevels: Record<string, unknown> | undefined;
  displayNames: Map<string, string>;
}

/**
 * The push view of room heads, kept per member map: a head's member map is replaced, never
 * changed, when membership changes, so sends between membership changes share one view.
 */
export class PushRooms {
  private readonly cache = new WeakMap<ReadonlyMap<string, unknown>, { members: string[]; displayNames: Map<string, string> }>();

  of(head: RoomHead, powerLevels: JsonObject | undefined): PushRoom {
    let cached = this.cache.get(head.members);
    if (!cached) {
      const members: string[] = [];
      const displayNames = new Map<string, string>();
      for (const [userId, m] of head.members) {
        if (m.membership !== 'join') continue;
        members.push(userId);
        if (m.displayName !== null) displayNames.set(userId, m.displayName);
      }
      cached = { members, displayNames };
      this.cache.set(head.members, cached);
    }
    return { members: cached.members, powerLevels: powerLevels as Record<string, unknown> | undefined, displayNames: cached.displayNames };
  }
}
