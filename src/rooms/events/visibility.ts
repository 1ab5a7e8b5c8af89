import type { LRUCache } from 'lru-cache';
import { boundedCache } from '../../bounded-cache.js';
import type { StreamAdvance } from '../../cluster/bus.js';
import type { Context } from '../../context.js';
import type { Pdu } from '../../core/types.js';
import { stateKey } from '../../core/types.js';
import { selectMembershipEvents } from '../store/events-table.js';
import { selectGroupChains, selectMembershipHistoryOfRooms, type GroupChainsRow } from '../store/sync-queries.js';
import type { RoomHeads } from '../state/room-head.js';
import type { StateGroups } from '../state/state-groups.js';
import type { EventStore } from './event-store.js';
import type { EventView, StoredEvent } from './stored-event.js';

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

  /** The history if it is cached; nothing is loaded. */
  cached(key: string): Point<T>[] | undefined {
    return this.cache.get(key)?.points;
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

export interface VisibilityResult<E extends EventView = StoredEvent> {
  visible: E[];
  /** The viewer's membership at (after) each visible event. */
  membershipAt: Map<string, string>;
}

/** What visibility needs of one state group for one viewer: the event ids at the two keys it reads. */
interface GroupFacts {
  hv: string | null;
  member: string | null;
}

const HV_TYPE = 'm.room.history_visibility';

/**
 * History visibility (spec: modules/history_visibility "Server behaviour"),
 * decided from the state at each event: the history visibility and the
 * viewer's membership in the state after it (before it, for the
 * history-visibility event itself and the viewer's own membership change, so
 * a user sees the event that let them in or out), read from the event's
 * state groups. Whether the viewer joined later ("shared") comes from their
 * membership history.
 */
export class HistoryVisibilityFilter {
  private readonly members: HistoryCache<string>;
  /** Facts per (state group, viewer): groups never change, so entries never go stale. */
  private readonly facts: LRUCache<string, GroupFacts>;

  constructor(
    private readonly ctx: Context,
    private readonly heads: RoomHeads,
    private readonly events: EventStore,
    private readonly groups: StateGroups,
  ) {
    this.members = new HistoryCache(Math.max(1000, ctx.config.caches.room_states * 50));
    this.facts = boundedCache(Math.max(10_000, ctx.config.caches.room_states * 100), {}, { owner: ctx, name: 'visibility_facts' });
    ctx.bus.onAdvance((msg) => this.onAdvance(msg));
  }

  /** The pipeline reports every event it wrote, after commit and before announcing it. */
  onEventWritten(roomId: string, pos: number, pdu: Pdu): void {
    if (pdu.type === 'm.room.member' && typeof pdu.state_key === 'string') {
      const m = pdu.content?.membership;
      this.members.written(memberKey(roomId, pdu.state_key), pos, typeof m === 'string' ? m : 'leave');
    }
  }

  private onAdvance(msg: StreamAdvance): void {
    if (msg.stream !== 'events' || msg.roomId === undefined) return;
    for (const u of msg.userIds ?? []) this.members.announced(memberKey(msg.roomId, u), msg.pos);
  }

  /** The room's history visibility in its current state. */
  async currentVisibility(roomId: string): Promise<HistoryVisibility> {
    const head = await this.heads.get(roomId);
    const id = head?.state.get(stateKey(HV_TYPE, ''));
    const ev = id === undefined ? undefined : await this.events.get(id);
    return parseVisibility(ev?.pdu.content?.history_visibility);
  }

  /** The user's membership changes in the room, chronological. */
  membershipHistory(roomId: string, userId: string): Promise<Point<string>[]> {
    return this.members.get(memberKey(roomId, userId), async () => {
      const rows = await selectMembershipEvents(this.ctx.db, userId, { roomId });
      return rows.map((r) => ({ pos: Number(r.stream_pos), value: r.membership ?? 'leave' }));
    });
  }

  /** Loads the user's membership history in the rooms, for those not cached: one query for all. */
  private async prefetch(roomIds: string[], userId: string): Promise<void> {
    if (roomIds.length === 0) return;
    await this.members.prefetch(
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
    );
  }

  /** The history visibility and membership events the facts name: one read for those not cached. */
  private async factEvents(facts: Iterable<GroupFacts>): Promise<Map<string, EventView>> {
    const ids = new Set<string>();
    for (const f of facts) {
      if (f.hv !== null) ids.add(f.hv);
      if (f.member !== null) ids.add(f.member);
    }
    return ids.size > 0 ? this.events.getViews(ids) : new Map();
  }

  /**
   * The facts of the state before and after each of the events for `userId`:
   * from the facts cache, from a group's whole state when that is cached,
   * and one query for the rest.
   */
  private async prefetchStates(events: Iterable<EventView>, userId: string): Promise<Map<number, GroupFacts>> {
    const out = new Map<number, GroupFacts>();
    const missing = this.cachedFacts(events, userId, out);
    if (missing.length === 0) return out;
    const rows = await selectGroupChains(this.ctx.db, missing, [
      [HV_TYPE, ''],
      ['m.room.member', userId],
    ]);
    for (const [g, f] of factsFromChains(missing, rows)) {
      this.facts.set(factsKey(g, userId), f);
      out.set(g, f);
    }
    return out;
  }

  /** prefetchStates' lookups: the facts the caches give into `out`; returns the groups left to read. */
  private cachedFacts(events: Iterable<EventView>, userId: string, out: Map<number, GroupFacts>): number[] {
    const missing = new Set<number>();
    for (const ev of events) {
      for (const g of [ev.stateGroup, ev.stateGroupBefore]) {
        if (g === null || out.has(g) || missing.has(g)) continue;
        const key = factsKey(g, userId);
        const hit = this.facts.get(key);
        if (hit) {
          out.set(g, hit);
          continue;
        }
        const whole = this.groups.peek(g);
        if (whole) {
          const f = { hv: whole.get(stateKey(HV_TYPE, '')) ?? null, member: whole.get(stateKey('m.room.member', userId)) ?? null };
          this.facts.set(key, f);
          out.set(g, f);
        } else missing.add(g);
      }
    }
    return [...missing];
  }

  /** Keeps the events (with stream positions) that `userId` may see. */
  async filter<E extends EventView>(roomId: string, events: E[], userId: string): Promise<VisibilityResult<E>> {
    if (events.length === 0) return { visible: [], membershipAt: new Map() };
    const [facts, members] = await Promise.all([this.prefetchStates(events, userId), this.membershipHistory(roomId, userId)]);
    const stateEvents = await this.factEvents(facts.values());
    return decideVisibility(events, userId, { facts, stateEvents, lastJoin: lastJoinOf(members) });
  }

  /**
   * `filter` for the pages of many rooms of one viewer (a /sync batch): the
   * state facts, the events they name and the viewer's membership histories
   * are read once for all the rooms, and each page is then decided without
   * further reads.
   */
  async filterRooms<E extends EventView>(pages: ReadonlyMap<string, E[]>, userId: string): Promise<Map<string, VisibilityResult<E>>> {
    const out = new Map<string, VisibilityResult<E>>();
    const { rooms, all } = nonEmptyPages(pages, out);
    if (rooms.length === 0) return out;
    const [facts] = await Promise.all([this.prefetchStates(all, userId), this.prefetch(rooms, userId)]);
    const stateEvents = await this.factEvents(facts.values());
    const raced = this.decideRooms(pages, rooms, userId, facts, stateEvents, out);
    // A room whose membership history a write raced out of the prefetch: read on its own.
    for (const roomId of raced) {
      const lastJoin = lastJoinOf(await this.membershipHistory(roomId, userId));
      out.set(roomId, decideVisibility(pages.get(roomId)!, userId, { facts, stateEvents, lastJoin }));
    }
    return out;
  }

  /** filterRooms' decisions for the rooms whose membership history is cached; returns the others. */
  private decideRooms<E extends EventView>(
    pages: ReadonlyMap<string, E[]>,
    rooms: readonly string[],
    userId: string,
    facts: ReadonlyMap<number, GroupFacts>,
    stateEvents: ReadonlyMap<string, EventView>,
    out: Map<string, VisibilityResult<E>>,
  ): string[] {
    const raced: string[] = [];
    for (const roomId of rooms) {
      const members = this.members.cached(memberKey(roomId, userId));
      if (members === undefined) raced.push(roomId);
      else out.set(roomId, decideVisibility(pages.get(roomId)!, userId, { facts, stateEvents, lastJoin: lastJoinOf(members) }));
    }
    return raced;
  }
}

/** The rooms with events on their page, and all those events; the empty pages' results go into `out`. */
function nonEmptyPages<E extends EventView>(pages: ReadonlyMap<string, E[]>, out: Map<string, VisibilityResult<E>>): { rooms: string[]; all: E[] } {
  const rooms: string[] = [];
  const all: E[] = [];
  for (const [roomId, events] of pages) {
    if (events.length === 0) out.set(roomId, { visible: [], membershipAt: new Map() });
    else {
      rooms.push(roomId);
      for (const ev of events) all.push(ev);
    }
  }
  return { rooms, all };
}

/** The facts of each of the groups from the rows of their chains (selectGroupChains): the nearest delta wins ('' removed the key). */
function factsFromChains(groups: readonly number[], rows: GroupChainsRow[]): Map<number, GroupFacts> {
  rows.sort((a, b) => b.n - a.n);
  const found = new Map<number, GroupFacts>(groups.map((g) => [g, { hv: null, member: null }]));
  for (const r of rows) {
    const f = found.get(r.root)!;
    const id = r.event_id === '' ? null : r.event_id;
    if (r.type === HV_TYPE) f.hv = id;
    else f.member = id;
  }
  return found;
}

/** What decideVisibility reads: the facts of the events' state groups, the events they name, and when the viewer last joined. */
interface VisibilityInputs {
  facts: ReadonlyMap<number, GroupFacts>;
  stateEvents: ReadonlyMap<string, EventView>;
  /** Stream position of the viewer's latest join, or -Infinity. */
  lastJoin: number;
}

function lastJoinOf(members: readonly Point<string>[]): number {
  let lastJoin = -Infinity;
  for (const m of members) if (m.value === 'join') lastJoin = m.pos;
  return lastJoin;
}

function allows(vis: HistoryVisibility, membership: string, pos: number, lastJoin: number): boolean {
  if (vis === 'world_readable') return true;
  if (membership === 'join') return true;
  if (vis === 'shared' && lastJoin > pos) return true;
  if (vis === 'invited' && membership === 'invite') return true;
  return false;
}

/** The visibility decision of HistoryVisibilityFilter, from inputs already read. */
function decideVisibility<E extends EventView>(events: readonly E[], userId: string, inputs: VisibilityInputs): VisibilityResult<E> {
  const { facts, stateEvents, lastJoin } = inputs;
  const visOf = (g: number | null): HistoryVisibility => {
    const id = g === null ? null : facts.get(g)?.hv;
    return parseVisibility(id ? stateEvents.get(id)?.pdu.content?.history_visibility : undefined);
  };
  const memOf = (g: number | null): string => {
    const id = g === null ? null : facts.get(g)?.member;
    const m = id ? stateEvents.get(id)?.pdu.content?.membership : undefined;
    return typeof m === 'string' ? m : 'leave';
  };
  const visible: E[] = [];
  const membershipAt = new Map<string, string>();
  for (const ev of events) {
    const pos = ev.streamPos;
    if (pos === null || ev.stateGroup === null) continue;
    const visAfter = visOf(ev.stateGroup);
    const memAfter = memOf(ev.stateGroup);
    let ok = allows(visAfter, memAfter, pos, lastJoin);
    if (!ok) {
      const t = ev.pdu.type;
      if (t === HV_TYPE && ev.pdu.state_key === '') {
        ok = allows(visOf(ev.stateGroupBefore), memAfter, pos, lastJoin);
      } else if (t === 'm.room.member' && ev.pdu.state_key === userId) {
        ok = allows(visAfter, memOf(ev.stateGroupBefore), pos, lastJoin);
      }
    }
    if (ok) {
      visible.push(ev);
      membershipAt.set(ev.eventId, memAfter);
    }
  }
  return { visible, membershipAt };
}

function memberKey(roomId: string, userId: string): string {
  return `${roomId}\u0000${userId}`;
}

function factsKey(group: number, userId: string): string {
  return `${group}\u0000${userId}`;
}
