import { boundedCache } from '../bounded-cache.js';

/** Reads which of the rooms have any event with a stream position in (fromPos, toPos]. */
export type ActivityReader = (roomIds: string[], fromPos: number, toPos: number) => Promise<Set<string>>;

interface RangeAnswers {
  /** Rooms answered for this range: whether each had events in it. */
  known: Map<string, boolean>;
  /** Rooms whose answer a read under way will give. */
  pending: Map<string, Promise<Set<string>>>;
  /** Rooms asked for in this turn of the event loop, read together when it ends. */
  queued: Set<string> | null;
  queuedRead: Promise<Set<string>> | null;
}

/**
 * "Which of these rooms had events between two positions of the events
 * stream", shared by the syncs that ask it: the long-polls one event wakes
 * ask about the same range at the same moment, so their questions are
 * gathered into one read. A range whose end is a committed position never
 * changes (positions are taken at commit, in commit order), so answers are
 * also kept for later askers of the same range.
 */
export class RoomActivity {
  private readonly ranges = boundedCache<string, RangeAnswers>(64);

  constructor(private readonly read: ActivityReader) {}

  /** Of `roomIds`, those with events in (fromPos, toPos]; `toPos` must be a committed position. */
  async between(roomIds: string[], fromPos: number, toPos: number): Promise<Set<string>> {
    const out = new Set<string>();
    if (roomIds.length === 0 || toPos <= fromPos) return out;
    const key = `${fromPos}:${toPos}`;
    let r = this.ranges.get(key);
    if (!r) this.ranges.set(key, (r = { known: new Map(), pending: new Map(), queued: null, queuedRead: null }));
    const waits = new Set<Promise<Set<string>>>();
    const wanted: string[] = [];
    for (const roomId of roomIds) {
      const known = r.known.get(roomId);
      if (known !== undefined) {
        if (known) out.add(roomId);
        continue;
      }
      wanted.push(roomId);
      const pending = r.pending.get(roomId);
      if (pending) waits.add(pending);
      else waits.add(this.enqueue(r, roomId, fromPos, toPos));
    }
    for (const found of await Promise.all(waits)) {
      for (const roomId of wanted) if (found.has(roomId)) out.add(roomId);
    }
    return out;
  }

  /** Adds the room to the read that starts once the current callers have asked (a microtask later). */
  private enqueue(r: RangeAnswers, roomId: string, fromPos: number, toPos: number): Promise<Set<string>> {
    if (!r.queued || !r.queuedRead) {
      const rooms = new Set<string>();
      const read = new Promise<void>((resolve) => queueMicrotask(resolve)).then(async () => {
        r.queued = null;
        r.queuedRead = null;
        try {
          const found = await this.read([...rooms], fromPos, toPos);
          for (const roomId of rooms) r.known.set(roomId, found.has(roomId));
          return found;
        } finally {
          for (const roomId of rooms) if (r.pending.get(roomId) === read) r.pending.delete(roomId);
        }
      });
      // Every asker awaits it; a failure reaches them, not the process.
      read.catch(() => {});
      r.queued = rooms;
      r.queuedRead = read;
    }
    r.queued.add(roomId);
    r.pending.set(roomId, r.queuedRead);
    return r.queuedRead;
  }
}
