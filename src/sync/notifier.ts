import type { Bus, StreamAdvance } from '../cluster/bus.js';
import type { WaitHeads } from '../db/stream-positions.js';

/**
 * Long-poll waiters for /sync. A waiter is registered before its request
 * reads the stream heads, so nothing committed after that read can be
 * missed: advances seen while the response is computed are kept and checked
 * against the rooms the computation found. Waking is by user (to-device,
 * account data, membership targets, expanded presence/device-list changes)
 * or by room (events, receipts, typing) through an index of the rooms of
 * the users who are waiting. No polling: one timer per waiter.
 */

export interface Waiter {
  readonly userId: string;
  /** Resolves true when woken by a relevant advance, false on timeout or close. */
  wait(timeoutMs: number): Promise<boolean>;
  /**
   * Rooms whose events/receipts/typing concern this waiter, and the heads its last computation
   * used. A stream the heads leave out (thread subscriptions, which /sync does not send) never
   * wakes it.
   */
  arm(rooms: Iterable<string>, heads: WaitHeads): boolean;
  /**
   * Rooms whose new events woke the waiter since the last call: a hint of
   * what the next computation will find (it still reads what happened).
   */
  takeEventRooms(): string[];
  /** Wakes the waiter now (client went away, server stopping). */
  cancel(): void;
  close(): void;
}

/** Presence advances name the user whose presence changed; this turns them into "these users should look". */
export type AudienceResolver = (msg: StreamAdvance) => Promise<string[] | null>;

const MAX_BACKLOG = 256;

class WaiterImpl implements Waiter {
  rooms = new Set<string>();
  heads: WaitHeads | null = null;
  /** Non-null while a computation runs: advances seen meanwhile, checked on arm(). */
  backlog: StreamAdvance[] | null = null;
  private resolve: ((woken: boolean) => void) | null = null;
  private timer: NodeJS.Timeout | null = null;
  cancelled = false;
  pendingWake = false;
  overflowed = false;
  private eventRooms = new Set<string>();

  constructor(
    readonly userId: string,
    private readonly owner: Notifier,
  ) {}

  collect(): void {
    this.backlog = [];
    this.owner.setCollecting(this, true);
  }

  arm(rooms: Iterable<string>, heads: WaitHeads): boolean {
    this.owner.setRooms(this, new Set(rooms));
    this.heads = heads;
    const backlog = this.backlog ?? [];
    this.backlog = null;
    this.owner.setCollecting(this, false);
    // An overflowing backlog is taken as a wake-up: recomputing is always safe.
    let woken = this.overflowed;
    for (const m of backlog) {
      if (!this.concerns(m)) continue;
      woken = true;
      this.noteRoom(m);
    }
    this.pendingWake = woken;
    this.overflowed = false;
    return this.pendingWake;
  }

  takeEventRooms(): string[] {
    const out = [...this.eventRooms];
    this.eventRooms.clear();
    return out;
  }

  private noteRoom(msg: StreamAdvance): void {
    if (msg.stream === 'events' && msg.roomId !== undefined) this.eventRooms.add(msg.roomId);
  }

  /** Whether the message is news for this waiter; audience-expanded messages carry userIds. */
  concerns(msg: StreamAdvance): boolean {
    if (this.heads) {
      const known = this.heads[msg.stream];
      if (known === undefined || msg.pos <= known) return false;
    }
    if (msg.everyone) return true;
    if (msg.userIds?.includes(this.userId)) return true;
    return msg.roomId !== undefined && this.rooms.has(msg.roomId);
  }

  offer(msg: StreamAdvance): void {
    if (this.backlog !== null) {
      if (this.backlog.length < MAX_BACKLOG) this.backlog.push(msg);
      else this.overflowed = true;
      return;
    }
    if (this.concerns(msg)) {
      this.noteRoom(msg);
      this.wake(true);
    }
  }

  /** Call after arm(); when it resolves the waiter is collecting again for the next computation. */
  wait(timeoutMs: number): Promise<boolean> {
    if (this.pendingWake || this.cancelled) {
      this.pendingWake = false;
      this.collect();
      return Promise.resolve(!this.cancelled);
    }
    return new Promise<boolean>((resolve) => {
      this.resolve = resolve;
      this.timer = setTimeout(() => this.wake(false), Math.max(0, timeoutMs));
    });
  }

  wake(woken: boolean): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const r = this.resolve;
    this.resolve = null;
    if (r) {
      // The next computation starts collecting again until it re-arms.
      this.collect();
      r(woken);
    } else if (woken) this.pendingWake = true;
  }

  cancel(): void {
    this.cancelled = true;
    this.wake(false);
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.resolve = null;
    this.backlog = null;
    this.owner.setCollecting(this, false);
    this.owner.remove(this);
  }
}

export class Notifier {
  private readonly byUser = new Map<string, Set<WaiterImpl>>();
  private readonly byRoom = new Map<string, Set<WaiterImpl>>();
  private readonly collecting = new Set<WaiterImpl>();
  private unsubscribe: (() => void) | null = null;
  private closing = false;

  constructor(
    private readonly bus: Bus,
    private readonly resolveAudience: AudienceResolver,
    private readonly onError: (err: unknown) => void,
  ) {}

  start(): void {
    this.unsubscribe ??= this.bus.onAdvance((msg) => this.onAdvance(msg));
  }

  /** Answers every long-poll now, and every later one at once (the server is shutting down). */
  release(): void {
    this.closing = true;
    for (const set of this.byUser.values()) for (const w of set) w.cancel();
  }

  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.release();
  }

  get waiting(): number {
    let n = 0;
    for (const s of this.byUser.values()) n += s.size;
    return n;
  }

  register(userId: string): Waiter {
    const w = new WaiterImpl(userId, this);
    let set = this.byUser.get(userId);
    if (!set) this.byUser.set(userId, (set = new Set()));
    set.add(w);
    w.collect();
    if (this.closing) w.cancel();
    return w;
  }

  setCollecting(w: WaiterImpl, on: boolean): void {
    if (on) this.collecting.add(w);
    else this.collecting.delete(w);
  }

  setRooms(w: WaiterImpl, rooms: Set<string>): void {
    for (const r of w.rooms) if (!rooms.has(r)) this.unindex(r, w);
    for (const r of rooms) {
      let set = this.byRoom.get(r);
      if (!set) this.byRoom.set(r, (set = new Set()));
      set.add(w);
    }
    w.rooms = rooms;
  }

  remove(w: WaiterImpl): void {
    const set = this.byUser.get(w.userId);
    if (set) {
      set.delete(w);
      if (set.size === 0) this.byUser.delete(w.userId);
    }
    for (const r of w.rooms) this.unindex(r, w);
  }

  private unindex(roomId: string, w: WaiterImpl): void {
    const set = this.byRoom.get(roomId);
    if (!set) return;
    set.delete(w);
    if (set.size === 0) this.byRoom.delete(roomId);
  }

  onAdvance(msg: StreamAdvance): void {
    if (this.byUser.size === 0) return;
    if (msg.everyone) {
      // Another node's change whose audience is unknown (CLUSTER.md 3): every waiter behind it looks again.
      for (const set of [...this.byUser.values()]) for (const w of set) w.offer(msg);
      return;
    }
    if (msg.stream === 'presence') {
      // Who cares about a user's presence needs a lookup (e2ee already names device-list audiences).
      this.resolveAudience(msg).then(
        (users) => {
          if (users) this.deliver({ ...msg, userIds: users, roomId: undefined });
        },
        (err) => this.onError(err),
      );
      return;
    }
    this.deliver(msg);
  }

  private deliver(msg: StreamAdvance): void {
    const seen = new Set<WaiterImpl>();
    if (msg.userIds) {
      for (const u of msg.userIds) {
        const set = this.byUser.get(u);
        if (set) for (const w of set) seen.add(w);
      }
    }
    if (msg.roomId) {
      const set = this.byRoom.get(msg.roomId);
      if (set) for (const w of set) seen.add(w);
    }
    // Waiters still computing may not have their rooms indexed: they keep every message to check once armed.
    for (const w of this.collecting) if (!seen.has(w)) w.offer(msg);
    for (const w of seen) w.offer(msg);
  }
}
