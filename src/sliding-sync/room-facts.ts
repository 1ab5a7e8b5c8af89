import { boundedCache } from '../bounded-cache.js';
import type { Context } from '../context.js';

/**
 * What ordering and filtering the room list needs of each room, kept in
 * memory across requests: its recency (the newest "bump" event, MSC4186
 * `bump_stamp`), its type (from the create event, never changes) and
 * whether it is encrypted (once on, never off). An entry is valid up to the
 * events position it was read at; an event in the room announced on the
 * bus (from any node) past that position makes it stale.
 */

/** Event types that count as activity (MSC4186 `bump_stamp`). */
export const BUMP_TYPES = ['m.room.create', 'm.room.message', 'm.room.encrypted', 'm.sticker', 'm.call.invite', 'm.poll.start', 'm.beacon_info'];

interface Entry {
  /** Newest bump event position, null when the room has none; undefined when unknown. */
  bump?: number | null;
  bumpAt: number;
  roomType?: string | null;
  encrypted?: boolean;
  encryptedAt: number;
  /** Highest events position announced for the room. */
  latestSeen: number;
}

export interface RoomFactsView {
  roomType: string | null;
  encrypted: boolean;
}

export class RoomFacts {
  private readonly entries = boundedCache<string, Entry>(50000);
  private unsubscribe: (() => void) | null = null;

  constructor(private readonly ctx: Context) {}

  start(): void {
    this.unsubscribe ??= this.ctx.bus.onAdvance((msg) => {
      if (msg.stream !== 'events' || msg.roomId === undefined) return;
      const e = this.entry(msg.roomId);
      if (msg.pos > e.latestSeen) e.latestSeen = msg.pos;
    });
  }

  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
  }

  private entry(roomId: string): Entry {
    let e = this.entries.get(roomId);
    if (!e) this.entries.set(roomId, (e = { bumpAt: -1, encryptedAt: -1, latestSeen: 0 }));
    return e;
  }

  /** Newest bump event position of each room at or before `upTo` (null: none). */
  async bumpStamps(roomIds: string[], upTo: number): Promise<Map<string, number | null>> {
    const out = new Map<string, number | null>();
    const missing: string[] = [];
    for (const roomId of roomIds) {
      const e = this.entries.get(roomId);
      if (e && e.bump !== undefined && e.bumpAt >= e.latestSeen) out.set(roomId, e.bump);
      else missing.push(roomId);
    }
    if (missing.length > 0) {
      const found = await this.ctx.services.rooms.getLatestEventPositions(missing, BUMP_TYPES, upTo);
      for (const roomId of missing) {
        const bump = found.get(roomId) ?? null;
        out.set(roomId, bump);
        const e = this.entry(roomId);
        e.bump = bump;
        e.bumpAt = upTo;
      }
    }
    return out;
  }

  /** Type and encryption of each room, read from current state when not known. */
  async facts(roomIds: string[], upTo: number): Promise<Map<string, RoomFactsView>> {
    const out = new Map<string, RoomFactsView>();
    const rooms = this.ctx.services.rooms;
    await Promise.all(
      roomIds.map(async (roomId) => {
        const e = this.entries.get(roomId);
        if (e && e.roomType !== undefined && (e.encrypted === true || (e.encrypted === false && e.encryptedAt >= e.latestSeen))) {
          out.set(roomId, { roomType: e.roomType, encrypted: e.encrypted });
          return;
        }
        const state = await rooms.getCurrentState(roomId, ['m.room.create', 'm.room.encryption']);
        const create = state.find((ev) => ev.type === 'm.room.create' && ev.state_key === '');
        const type = create?.content.type;
        const view = { roomType: typeof type === 'string' ? type : null, encrypted: state.some((ev) => ev.type === 'm.room.encryption' && ev.state_key === '') };
        const entry = this.entry(roomId);
        entry.roomType = view.roomType;
        entry.encrypted = view.encrypted;
        entry.encryptedAt = upTo;
        out.set(roomId, view);
      }),
    );
    return out;
  }
}
