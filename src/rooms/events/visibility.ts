import type { LRUCache } from 'lru-cache';
import { boundedCache } from '../../bounded-cache.js';
import type { StreamAdvance } from '../../cluster/bus.js';
import type { Context } from '../../context.js';
import type { Pdu } from '../../core/types.js';
import { selectHistoryVisibilityEvents, selectMembershipEvents } from '../store/events-table.js';
import { selectHistoryVisibilityOfRooms, selectMembershipHistoryOfRooms } from '../store/sync-queries.js';
import type { StoredEvent } from './stored-event.js';

type HistoryVisibility = 'world_readable' | 'shared' | 'invited' | 'joined';
interface Point<T> {
  pos: number;
  value: T;
}

/** A history along the stream, and the position up to which it is known complete. */
interface History<T> {
  points: Point<T>[];
  upTo: number;
}

function parseVisibility(v: unknown): HistoryVisibility {
  // "If no history_visibility is set, or if the value is not understood, the visibility is assumed to be shared."
  return v === 'world_readable' || v === 'invited' || v === 'joined' ? v : 'shared';
}

/** The value in force at `pos` (inclusive) or strictly before it. */
function valueAt<T>(points: Point<T>[], pos: number, inclusive: boolean, dflt: T): T {
  let lo = 0;
  let hi = points.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const p = points[mid]!.pos;
    if (p < pos || (inclusive && p === pos)) lo = mid + 1;
    else hi = mid;
  }
  return lo === 0 ? dflt : points[lo - 1]!.value;
}

/**
 * A bounded cache of histories that our own writes extend in place and that
 * a bus announcement from another writer (a position past what the entry
 * knows) drops. A load that raced a write is returned but not cached.
 */
class HistoryCache<T> {
  private readonly cache: LRUCache<string, History<T>>;
  private readonly inflight = new Map<string, { dirty: boolean }>();

  constructor(max: number) {
    this.cache = boundedCache(max);
  }

  async get(key: string, load: () => Promise<Point<T>[]>): Promise<Point<T>[]> {
    const hit = this.cache.get(key);
    if (hit) return hit.points;
    const flight = { dirty: false };
    this.inflight.set(key, flight);
    try {
      const points = await load();
      if (!flight.dirty && !this.cache.has(key)) {
        this.cache.set(key, { points, upTo: points.length > 0 ? points[points.length - 1]!.pos : 0 });
      }
      return points;
    } finally {
      if (this.inflight.get(key) === flight) this.inflight.delete(key);
    }
  }

  /** Loads the histories of the keys neither cached nor being loaded, with one call for all of them. */
  async prefetch(keys: Iterable<string>, loadMany: (keys: string[]) => Promise<Map<string, Point<T>[]>>): Promise<void> {
    const flights = new Map<string, { dirty: boolean }>();
    for (const k of keys) if (!this.cache.has(k) && !this.inflight.has(k)) flights.set(k, { dirty: false });
    if (flights.size === 0) return;
    for (const [k, f] of flights) this.inflight.set(k, f);
    try {
      const loaded = await loadMany([...flights.keys()]);
      for (const [k, f] of flights) {
        if (f.dirty || this.cache.has(k)) continue;
        const points = loaded.get(k) ?? [];
        this.cache.set(k, { points, upTo: points.length > 0 ? points[points.length - 1]!.pos : 0 });
      }
    } finally {
      for (const [k, f] of flights) if (this.inflight.get(k) === f) this.inflight.delete(k);
    }
  }

  /** Our own write at `pos`: extend a cached history (with a new point when `value` is given). */
  written(key: string, pos: number, value?: T): void {
    const f = this.inflight.get(key);
    if (f) f.dirty = true;
    const hit = this.cache.peek(key);
    if (!hit) return;
    if (value === undefined) {
      hit.upTo = Math.max(hit.upTo, pos);
    } else {
      this.cache.set(key, { points: [...hit.points, { pos, value }], upTo: Math.max(hit.upTo, pos) });
    }
  }

  /** Another writer's announcement: drop what it may have changed. */
  announced(key: string, pos: number): void {
    const hit = this.cache.peek(key);
    if (hit && pos > hit.upTo) this.cache.delete(key);
    const f = this.inflight.get(key);
    if (f) f.dirty = true;
  }
}

export interface VisibilityResult {
  visible: StoredEvent[];
  /** The viewer's membership at (after) each visible event. */
  membershipAt: Map<string, string>;
}

/**
 * History visibility (spec: modules/history_visibility "Server behaviour"),
 * evaluated along the stream order: the history visibility and the
 * viewer's membership in force at each event are the latest ones at or
 * before its position, which is the state at the event for a linear room.
 */
export class HistoryVisibilityFilter {
  private readonly hv: HistoryCache<HistoryVisibility>;
  private readonly members: HistoryCache<string>;

  constructor(private readonly ctx: Context) {
    this.hv = new HistoryCache(Math.max(100, ctx.config.caches.room_states * 4));
    this.members = new HistoryCache(Math.max(1000, ctx.config.caches.room_states * 50));
    ctx.bus.onAdvance((msg) => this.onAdvance(msg));
  }

  /** The pipeline reports every event it wrote, after commit and before announcing it. */
  onEventWritten(roomId: string, pos: number, pdu: Pdu): void {
    if (pdu.type === 'm.room.history_visibility' && pdu.state_key === '') {
      this.hv.written(roomId, pos, parseVisibility(pdu.content?.history_visibility));
    } else {
      this.hv.written(roomId, pos);
    }
    if (pdu.type === 'm.room.member' && typeof pdu.state_key === 'string') {
      const m = pdu.content?.membership;
      this.members.written(memberKey(roomId, pdu.state_key), pos, typeof m === 'string' ? m : 'leave');
    }
  }

  private onAdvance(msg: StreamAdvance): void {
    if (msg.stream !== 'events' || msg.roomId === undefined) return;
    this.hv.announced(msg.roomId, msg.pos);
    for (const u of msg.userIds ?? []) this.members.announced(memberKey(msg.roomId, u), msg.pos);
  }

  private history(roomId: string): Promise<Point<HistoryVisibility>[]> {
    return this.hv.get(roomId, async () => {
      const rows = await selectHistoryVisibilityEvents(this.ctx.db, roomId);
      return rows.map((r) => ({
        pos: Number(r.stream_pos),
        value: parseVisibility((JSON.parse(r.json) as Pdu).content?.history_visibility),
      }));
    });
  }

  /** The room's history visibility at stream position `pos`. */
  async visibilityAt(roomId: string, pos: number): Promise<HistoryVisibility> {
    return valueAt(await this.history(roomId), pos, true, 'shared');
  }

  /** The user's membership changes in the room, chronological. */
  membershipHistory(roomId: string, userId: string): Promise<Point<string>[]> {
    return this.members.get(memberKey(roomId, userId), async () => {
      const rows = await selectMembershipEvents(this.ctx.db, userId, { roomId });
      return rows.map((r) => ({ pos: Number(r.stream_pos), value: r.membership ?? 'leave' }));
    });
  }

  /**
   * Loads the history visibility of the rooms and the user's membership
   * history in them, for those not cached: two queries for all the rooms
   * (filter() then finds them cached).
   */
  async prefetch(roomIds: string[], userId: string): Promise<void> {
    if (roomIds.length === 0) return;
    await Promise.all([
      this.hv.prefetch(roomIds, async (keys) => {
        const out = new Map<string, Point<HistoryVisibility>[]>();
        for (const r of await selectHistoryVisibilityOfRooms(this.ctx.db, keys)) {
          let l = out.get(r.room_id);
          if (!l) out.set(r.room_id, (l = []));
          l.push({ pos: Number(r.stream_pos), value: parseVisibility((JSON.parse(r.json) as Pdu).content?.history_visibility) });
        }
        return out;
      }),
      this.members.prefetch(
        roomIds.map((r) => memberKey(r, userId)),
        async (keys) => {
          const rooms = keys.map((k) => k.slice(0, k.indexOf('\u0000')));
          const out = new Map<string, Point<string>[]>();
          for (const r of await selectMembershipHistoryOfRooms(this.ctx.db, userId, rooms)) {
            const k = memberKey(r.room_id, userId);
            let l = out.get(k);
            if (!l) out.set(k, (l = []));
            l.push({ pos: Number(r.stream_pos), value: r.membership ?? 'leave' });
          }
          return out;
        },
      ),
    ]);
  }

  /** Keeps the events (with stream positions) that `userId` may see. */
  async filter(roomId: string, events: StoredEvent[], userId: string): Promise<VisibilityResult> {
    const membershipAt = new Map<string, string>();
    if (events.length === 0) return { visible: [], membershipAt };
    const [hv, members] = await Promise.all([this.history(roomId), this.membershipHistory(roomId, userId)]);
    let lastJoin = -1;
    for (const m of members) if (m.value === 'join') lastJoin = m.pos;

    const allows = (vis: HistoryVisibility, membership: string, pos: number): boolean => {
      if (vis === 'world_readable') return true;
      if (membership === 'join') return true;
      if (vis === 'shared' && lastJoin > pos) return true;
      if (vis === 'invited' && membership === 'invite') return true;
      return false;
    };

    const visible: StoredEvent[] = [];
    for (const ev of events) {
      const pos = ev.streamPos;
      if (pos === null) continue;
      const visAfter = valueAt(hv, pos, true, 'shared');
      const memAfter = valueAt(members, pos, true, 'leave');
      let ok = allows(visAfter, memAfter, pos);
      if (!ok) {
        const t = ev.pdu.type;
        if (t === 'm.room.history_visibility' && ev.pdu.state_key === '') {
          ok = allows(valueAt(hv, pos, false, 'shared'), memAfter, pos);
        } else if (t === 'm.room.member' && ev.pdu.state_key === userId) {
          ok = allows(visAfter, valueAt(members, pos, false, 'leave'), pos);
        }
      }
      if (ok) {
        visible.push(ev);
        membershipAt.set(ev.eventId, memAfter);
      }
    }
    return { visible, membershipAt };
  }
}

function memberKey(roomId: string, userId: string): string {
  return `${roomId}\u0000${userId}`;
}
