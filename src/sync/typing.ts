import type { StreamAdvance } from '../cluster/bus.js';
import {
  deleteExpiredOfRoom,
  deleteTypists,
  extendTypist,
  selectAllTypists,
  selectRoomsWithExpired,
  selectTypistsOfRoom,
  upsertTypist,
} from '../cluster/typing-table.js';
import type { Context } from '../context.js';
import type { Tx } from '../db/schema.js';
import { nextPosition } from '../db/stream-positions.js';

interface RoomTyping {
  /** userId → expiry (ms since epoch). */
  users: Map<string, number>;
  /** 'typing' stream position of the last change in this room. */
  pos: number;
}

/** A notice whose writer never cleared it (its node went away) is cleared this long after it expired. */
const ORPHAN_GRACE_MS = 5_000;
const SWEEP_EVERY_MS = 10_000;

/**
 * Who is typing where. The notices are rows of a table every node shares
 * (UNLOGGED on PostgreSQL: losable, CLUSTER.md 9), and each node keeps the
 * rooms in memory so /sync reads nothing: a change takes a position on the
 * 'typing' stream in the transaction that writes the rows, and its
 * announcement carries the room's typists, which other nodes apply before
 * their waiters wake; a missed announcement is made good by reloading the
 * table (the bus's onMissed). Expiry is checked at read time; the node that wrote a
 * notice announces its expiry, and the lease holder clears notices whose
 * node went away. Rooms stay in memory once known, so a client behind the
 * last position still hears "nobody types".
 */
export class TypingTracker {
  private readonly rooms = new Map<string, RoomTyping>();
  /** Expiries of the notices this node wrote, by room. */
  private readonly mine = new Map<string, Map<string, number>>();
  private timer: NodeJS.Timeout | null = null;
  private timerAt = Infinity;
  private sweeper: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(private readonly ctx: Context) {}

  /** Loads the notices other nodes hold now, and from then on hears their changes. */
  async start(): Promise<void> {
    await this.reload(0);
    this.ctx.bus.onMissed('typing', (head) => this.reload(head));
    this.sweeper = setInterval(() => void this.sweep(), SWEEP_EVERY_MS);
    this.sweeper.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.sweeper) clearInterval(this.sweeper);
    this.timer = null;
    this.sweeper = null;
  }

  /** A typing announcement; runs before the notifier wakes anyone. */
  onAdvance(msg: StreamAdvance): void {
    if (msg.roomId === undefined || msg.typists === undefined) return;
    const room = this.rooms.get(msg.roomId);
    if (room && room.pos >= msg.pos) return;
    this.rooms.set(msg.roomId, { users: new Map(msg.typists), pos: msg.pos });
  }

  /** Returns true when the set of typing users changed. */
  async set(roomId: string, userId: string, typing: boolean, timeoutMs: number): Promise<boolean> {
    const now = this.ctx.now();
    const room = this.rooms.get(roomId);
    const wasTyping = room !== undefined && (room.users.get(userId) ?? 0) > now;
    if (typing) {
      const expires = now + timeoutMs;
      this.own(roomId, userId, expires);
      if (wasTyping) {
        // Only the expiry moved: nobody needs telling.
        room.users.set(userId, expires);
        await extendTypist(this.ctx.db, roomId, userId, expires);
        return false;
      }
      await this.change(roomId, (trx, pos) => upsertTypist(trx, { room_id: roomId, user_id: userId, expires_ts: expires, pos }));
    } else {
      this.mine.get(roomId)?.delete(userId);
      if (!room || !room.users.has(userId)) return false;
      if (!wasTyping) {
        room.users.delete(userId);
        return false;
      }
      await this.change(roomId, (trx) => deleteTypists(trx, roomId, [userId]));
    }
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

  /**
   * One change of a room's notices: the position is taken first, so writers
   * take turns and each reads the rows every earlier one committed; the
   * room's typists after the change go out with the announcement.
   */
  private async change(roomId: string, write: (trx: Tx, pos: number) => Promise<void>): Promise<void> {
    const { pos, rows } = await this.ctx.db.transaction().execute(async (trx) => {
      const p = await nextPosition(trx, 'typing');
      await write(trx, p);
      return { pos: p, rows: await selectTypistsOfRoom(trx, roomId) };
    });
    const typists = rows.map((r): [string, number] => [r.user_id, Number(r.expires_ts)]);
    const room = this.rooms.get(roomId);
    if (!room || room.pos < pos) this.rooms.set(roomId, { users: new Map(typists), pos });
    this.ctx.bus.publish({ stream: 'typing', pos, roomId, typists });
  }

  private own(roomId: string, userId: string, expires: number): void {
    let m = this.mine.get(roomId);
    if (!m) this.mine.set(roomId, (m = new Map()));
    m.set(userId, expires);
    this.schedule(expires);
  }

  /** Replaces what this node knows with the table; a room whose typists differ takes position `pos` at least. */
  private async reload(pos: number): Promise<void> {
    const fresh = new Map<string, RoomTyping>();
    for (const r of await selectAllTypists(this.ctx.db)) {
      let room = fresh.get(r.room_id);
      if (!room) fresh.set(r.room_id, (room = { users: new Map(), pos: 0 }));
      room.users.set(r.user_id, Number(r.expires_ts));
      room.pos = Math.max(room.pos, Number(r.pos));
    }
    for (const roomId of new Set([...fresh.keys(), ...this.rooms.keys()])) {
      const known = this.rooms.get(roomId);
      const table = fresh.get(roomId) ?? { users: new Map<string, number>(), pos: 0 };
      const same = known !== undefined && known.users.size === table.users.size && [...table.users.keys()].every((u) => known.users.has(u));
      if (!same) this.rooms.set(roomId, { users: table.users, pos: Math.max(known?.pos ?? 0, table.pos, pos) });
    }
  }

  private schedule(at: number): void {
    if (this.stopped || at >= this.timerAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => void this.expire(), Math.max(0, at - this.ctx.now()) + 5);
    this.timer.unref();
  }

  /** Announces the expiry of the notices this node wrote. */
  private async expire(): Promise<void> {
    this.timer = null;
    this.timerAt = Infinity;
    const now = this.ctx.now();
    let next = Infinity;
    const changed: Array<[string, string[]]> = [];
    for (const [roomId, users] of this.mine) {
      const gone: string[] = [];
      for (const [u, exp] of users) {
        if (exp <= now) {
          users.delete(u);
          gone.push(u);
        } else next = Math.min(next, exp);
      }
      if (users.size === 0) this.mine.delete(roomId);
      if (gone.length > 0) changed.push([roomId, gone]);
    }
    if (next !== Infinity) this.schedule(next);
    for (const [roomId, gone] of changed) {
      try {
        if (!this.stopped) await this.change(roomId, (trx) => deleteTypists(trx, roomId, gone));
      } catch (err) {
        this.ctx.logger.warn({ err, roomId }, 'typing expiry failed');
      }
    }
  }

  /** Clears notices left by a node that went away; one node does it (lease). */
  private async sweep(): Promise<void> {
    try {
      const lease = await this.ctx.leases.acquire('typing_expiry');
      if (!lease) return;
      const before = this.ctx.now() - ORPHAN_GRACE_MS;
      for (const roomId of await selectRoomsWithExpired(this.ctx.db, before)) {
        if (this.stopped || !this.ctx.leases.stillHeld(lease)) return;
        await this.change(roomId, async (trx) => {
          await this.ctx.leases.fence(trx, lease);
          await deleteExpiredOfRoom(trx, roomId, before);
        });
      }
    } catch (err) {
      this.ctx.logger.warn({ err }, 'typing sweep failed');
    }
  }
}
