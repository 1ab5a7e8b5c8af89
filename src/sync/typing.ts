import type { Context } from '../context.js';
import { nextPosition } from '../db/stream-positions.js';

interface RoomTyping {
  /** userId → expiry (ms since epoch). */
  users: Map<string, number>;
  /** 'typing' stream position of the last change in this room. */
  pos: number;
}

/**
 * Who is typing where: in memory on this node, with expiry checked at read
 * time and by one timer for the earliest expiry. Each change takes a
 * position on the persisted 'typing' stream, so positions keep rising
 * across restarts and a token's typing part stays meaningful.
 */
export class TypingTracker {
  private readonly rooms = new Map<string, RoomTyping>();
  private timer: NodeJS.Timeout | null = null;
  private timerAt = Infinity;
  private stopped = false;

  constructor(private readonly ctx: Context) {}

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Returns true when the set of typing users changed. */
  async set(roomId: string, userId: string, typing: boolean, timeoutMs: number): Promise<boolean> {
    const now = this.ctx.now();
    let room = this.rooms.get(roomId);
    const wasTyping = room !== undefined && (room.users.get(userId) ?? 0) > now;
    if (typing) {
      if (!room) this.rooms.set(roomId, (room = { users: new Map(), pos: 0 }));
      room.users.set(userId, now + timeoutMs);
      this.schedule(now + timeoutMs);
      if (wasTyping) return false; // only the expiry moved; nobody needs telling
    } else {
      if (!room || !room.users.delete(userId)) return false;
      if (!wasTyping) return false;
    }
    await this.bump(roomId);
    return true;
  }

  /** Current typists of each room whose typing changed after `sincePos` (all non-empty rooms when null). */
  changedSince(roomIds: Iterable<string>, sincePos: number | null): Map<string, string[]> {
    const now = this.ctx.now();
    const out = new Map<string, string[]>();
    for (const roomId of roomIds) {
      const room = this.rooms.get(roomId);
      if (!room) continue;
      const users = [...room.users].filter(([, exp]) => exp > now).map(([u]) => u);
      if (sincePos === null ? users.length > 0 : room.pos > sincePos) out.set(roomId, users);
    }
    return out;
  }

  private async bump(roomId: string): Promise<void> {
    const pos = await nextPosition(this.ctx.db, 'typing');
    const room = this.rooms.get(roomId);
    if (room) room.pos = Math.max(room.pos, pos);
    this.ctx.bus.publish({ stream: 'typing', pos, roomId });
  }

  private schedule(at: number): void {
    if (this.stopped || at >= this.timerAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => void this.expire(), Math.max(0, at - this.ctx.now()) + 5);
    this.timer.unref();
  }

  private async expire(): Promise<void> {
    this.timer = null;
    this.timerAt = Infinity;
    const now = this.ctx.now();
    let next = Infinity;
    const changed: string[] = [];
    for (const [roomId, room] of this.rooms) {
      let removed = false;
      for (const [u, exp] of room.users) {
        if (exp <= now) {
          room.users.delete(u);
          removed = true;
        } else next = Math.min(next, exp);
      }
      // Empty rooms stay: a client behind their last position must still hear "nobody types".
      if (removed) changed.push(roomId);
    }
    if (next !== Infinity) this.schedule(next);
    for (const roomId of changed) {
      try {
        if (!this.stopped) await this.bump(roomId);
      } catch (err) {
        this.ctx.logger.warn({ err, roomId }, 'typing expiry failed');
      }
    }
  }
}
