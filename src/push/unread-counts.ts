/**
 * Unread counts per user and room (spec: push module, "Receiving
 * notifications"): the events after the user's read position that notify
 * them, counted from the stored outcomes (unread-counts-store.ts) and kept in
 * memory so the next count only reads what came since.
 */
import { boundedCache } from '../bounded-cache.js';
import { ALL_KEYS } from '../cluster/bus.js';
import type { Context } from '../context.js';
import { selectRoomsWithThreadReads, selectThreadedUnread } from './thread-read-store.js';
import { selectUnreadSinceForUsers } from './unread-counts-store.js';

/** Bus cache name: a room's stored outcomes changed after commit (events withdrawn), its counts are counted again. */
export const UNREAD_CACHE = 'push.unread';

export interface Counts {
  notification_count: number;
  highlight_count: number;
}

/** A room's counts; with per-thread counts asked for, the main timeline's, and each thread's that has any. */
export interface RoomUnread extends Counts {
  threads?: Record<string, Counts>;
}

/** Whose counts, in which rooms; `threads`: split per thread (the sync filter's `unread_thread_notifications`). */
export interface UnreadAsk {
  userId: string;
  roomIds: string[];
  threads?: boolean;
}

/** Unread counts relative to the read position `readUpto`, complete for stream positions up to `upTo`. */
interface UnreadMemo {
  readUpto: number;
  upTo: number;
  notify: number;
  highlight: number;
}

export class UnreadCounts {
  /** Unread counts per `user\u0000room` (see get). */
  private readonly unread = boundedCache<string, UnreadMemo>(50_000);

  constructor(private readonly ctx: Context) {
    ctx.bus.onInvalidate((msg) => {
      if (msg.cache !== UNREAD_CACHE) return;
      if (msg.key === ALL_KEYS) this.unread.clear();
      else for (const k of [...this.unread.keys()]) if (k.endsWith(`\u0000${msg.key}`)) this.unread.delete(k);
    });
  }

  /**
   * Unread counts per room: notifying events after the user's read receipt.
   * One query for all rooms. Counts are kept per (user, room) together with
   * the read position they are relative to and the stream position they are
   * complete up to, so the next call only reads the rows after that (a user
   * who never reads a busy room would otherwise cost a scan of every row on
   * each /sync). Whether an event notifies a user never changes once it is
   * committed: its outcome and exceptions are written once, and the spans
   * that decide whom it applies to are opened and closed by events of the
   * same room, which commit in position order, so they only ever decide for
   * later events. Every row at or below the highest one a statement sees is
   * visible to it. (Only an event withdrawn after it was stored, when a
   * partial state is filled in, loses its outcome: its room's counts are
   * then dropped through UNREAD_CACHE and counted again.)
   */
  async get(userId: string, roomIds: string[], opts: { threads?: boolean } = {}): Promise<Map<string, RoomUnread>> {
    return (await this.getForUsers([{ userId, roomIds, threads: opts.threads }])).get(userId) ?? new Map();
  }

  /**
   * get for several users at once, in one statement (per few hundred rooms); keyed by user, then room.
   * Rooms where threads change the answer (counts split per thread were asked for, or a threaded
   * receipt reaches past the unthreaded one) are counted per thread instead (countThreaded).
   */
  async getForUsers(asks: UnreadAsk[]): Promise<Map<string, Map<string, RoomUnread>>> {
    const out = new Map<string, Map<string, RoomUnread>>();
    for (const a of asks) {
      let m = out.get(a.userId);
      if (!m) out.set(a.userId, (m = new Map()));
      for (const r of a.roomIds) m.set(r, { notification_count: 0, highlight_count: 0 });
    }
    const threaded = new Map<string, Set<string>>();
    await Promise.all(
      asks.map(async (a) => {
        if (a.roomIds.length === 0) return;
        const rooms = a.threads === true ? new Set(a.roomIds) : await selectRoomsWithThreadReads(this.ctx.db, a.userId, a.roomIds);
        if (rooms.size === 0) return;
        const set = threaded.get(a.userId) ?? new Set<string>();
        for (const r of rooms) set.add(r);
        threaded.set(a.userId, set);
        await this.countThreaded(a.userId, [...rooms], a.threads === true, out.get(a.userId)!);
      }),
    );
    const key = (userId: string, roomId: string) => `${userId}\u0000${roomId}`;
    type Bound = { userId: string; roomId: string; memo: UnreadMemo | undefined };
    // The memo each bound came from: another call may replace it meanwhile.
    const count = async (bounds: Bound[]): Promise<Bound[]> => {
      const rows = await selectUnreadSinceForUsers(this.ctx.db, bounds.map((b) => ({ userId: b.userId, roomId: b.roomId, after: b.memo?.upTo ?? 0 })));
      const memos = new Map(bounds.map((b) => [key(b.userId, b.roomId), b.memo]));
      const retry: Bound[] = [];
      for (const r of rows) {
        const memo = memos.get(key(r.user_id, r.room_id));
        const top = r.max_pos ?? 0;
        let next: UnreadMemo;
        if (!memo) {
          next = { readUpto: r.read_upto, upTo: Math.max(r.read_upto, top), notify: r.notify, highlight: r.highlight };
        } else if (memo.readUpto === r.read_upto) {
          next = { readUpto: r.read_upto, upTo: Math.max(memo.upTo, top), notify: memo.notify + r.notify, highlight: memo.highlight + r.highlight };
        } else if (r.read_upto >= memo.upTo) {
          // Read past everything counted before: the rows after the read position are all in this answer.
          next = { readUpto: r.read_upto, upTo: Math.max(r.read_upto, top), notify: r.notify, highlight: r.highlight };
        } else {
          // Read part of what was counted: count again from the read position.
          retry.push({ userId: r.user_id, roomId: r.room_id, memo: undefined });
          continue;
        }
        this.unread.set(key(r.user_id, r.room_id), next);
        out.get(r.user_id)?.set(r.room_id, { notification_count: next.notify, highlight_count: next.highlight });
      }
      return retry;
    };
    const bounds: Bound[] = [];
    const seen = new Set<string>();
    for (const a of asks) {
      for (const roomId of a.roomIds) {
        const k = key(a.userId, roomId);
        if (seen.has(k) || threaded.get(a.userId)?.has(roomId)) continue;
        seen.add(k);
        bounds.push({ userId: a.userId, roomId, memo: this.unread.get(k) });
      }
    }
    if (bounds.length === 0) return out;
    const retry = await count(bounds);
    if (retry.length > 0) await count(retry);
    return out;
  }

  /**
   * Counts per thread (thread-read-store.ts): each event against the furthest
   * of the unthreaded receipt and its thread's receipt. `split`: the main
   * timeline's count leaves out events in threads, which are given per
   * thread; otherwise the room's count is the sum. Not memoised: these are
   * the rooms of clients that read per thread.
   */
  private async countThreaded(userId: string, roomIds: string[], split: boolean, into: Map<string, RoomUnread>): Promise<void> {
    const rows = await selectThreadedUnread(this.ctx.db, userId, roomIds);
    for (const roomId of roomIds) into.set(roomId, split ? { notification_count: 0, highlight_count: 0, threads: {} } : { notification_count: 0, highlight_count: 0 });
    for (const r of rows) {
      const room = into.get(r.room_id)!;
      if (split && r.thread !== '') {
        room.threads![r.thread] = { notification_count: r.notify, highlight_count: r.highlight };
      } else {
        room.notification_count += r.notify;
        room.highlight_count += r.highlight;
      }
    }
  }
}
