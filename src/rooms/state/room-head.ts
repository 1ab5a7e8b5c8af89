import type { LRUCache } from 'lru-cache';
import { boundedCache } from '../../bounded-cache.js';
import { ALL_KEYS } from '../../cluster/bus.js';
import type { Context } from '../../context.js';
import type { DbOrTx } from '../../db/schema.js';
import { serverNameOf } from '../../core/ids.js';
import { getRoomVersion, type RoomVersion } from '../../core/room-versions.js';
import { stateKey, type StateMap } from '../../core/types.js';
import { selectCurrentState } from '../store/current-state-table.js';
import { selectForwardExtremities } from '../store/extremities-table.js';
import { selectRoomMembers } from '../store/memberships-table.js';
import { selectPartialStateRoom, type PartialState } from '../store/partial-state-table.js';
import { selectRoom } from '../store/rooms-table.js';
import { selectGroupDepth } from '../store/state-groups-table.js';
import type { Membership } from '../service.js';

/**
 * A state group that exists, or one the batch being persisted creates: its id
 * is taken from the state group counter inside the writing transaction.
 */
export type GroupRef = { id: number } | { plan: NewGroupPlan };

export interface NewGroupPlan {
  prev: GroupRef | null;
  deltaDepth: number;
  /** [type, state_key, event_id] rows: the full state for a snapshot, the change for a delta ('' removes a key). */
  entries: Array<[string, string, string]>;
  /** The full state the group represents (cached after commit). */
  state: StateMap;
  /** Set when the writing transaction allocates the id. */
  id?: number;
}

export function groupId(ref: GroupRef): number {
  if ('id' in ref) return ref.id;
  if (ref.plan.id === undefined) throw new Error('state group id not allocated yet');
  return ref.plan.id;
}

export interface Extremity {
  eventId: string;
  depth: number;
}

export interface MemberInfo {
  membership: Membership;
  eventId: string;
  sender: string;
  displayName: string | null;
  avatarUrl: string | null;
}

/**
 * The servers with a joined member among `members`, in the order the members are listed. A user
 * named in `except` does not count (a join's answer goes to the servers already in the room).
 */
export function joinedServers(members: ReadonlyMap<string, MemberInfo>, except?: string): Set<string> {
  const servers = new Set<string>();
  for (const [userId, m] of members) {
    if (m.membership !== 'join' || userId === except) continue;
    const server = serverNameOf(userId);
    if (server !== undefined) servers.add(server);
  }
  return servers;
}

/**
 * What the pipeline needs to append to a room: its version, current state,
 * forward extremities and members. Maps are replaced, never mutated, so a
 * head can be forked cheaply while a batch is built and dropped if it fails.
 */
export interface RoomHead {
  roomId: string;
  version: RoomVersion;
  creator: string;
  state: StateMap;
  /** A state group equal to `state`, when one exists. */
  group: GroupRef | null;
  /** Deltas between `group` and its full snapshot. */
  groupDepth: number;
  extremities: Extremity[];
  members: ReadonlyMap<string, MemberInfo>;
  /** Stream position of the latest event this head includes; a bus message past it means another writer. */
  lastPos: number;
  /**
   * Set while the room was joined with partial state and its full state is not filled in yet:
   * `state` and `members` then lack most members (see federation/membership/partial-state.ts).
   */
  partial: PartialState | null;
}

/** Bus cache name for room heads changed without a new event (a partial state filled in). */
export const HEAD_CACHE = 'rooms.head';

export function emptyHead(roomId: string, version: RoomVersion, creator: string): RoomHead {
  return { roomId, version, creator, state: new Map(), group: null, groupDepth: 0, extremities: [], members: new Map(), lastPos: 0, partial: null };
}

/** Current heads of recently used rooms (bounded by `caches.room_states`). */
export class RoomHeads {
  private readonly cache: LRUCache<string, RoomHead>;
  private readonly loading = new Map<string, Promise<RoomHead | null>>();
  /**
   * Rooms announced or invalidated while a load of their head was reading: the load may have read
   * the state before that change, and the announcement has found nothing cached to drop, so that
   * load's head is answered but not cached.
   */
  private readonly changedWhileLoading = new Set<string>();

  constructor(private readonly ctx: Context) {
    this.cache = boundedCache(Math.max(10, ctx.config.caches.room_states), {}, { owner: ctx, name: 'room_heads' });
    // Our own writes update the cache before they are announced; an announcement past the
    // cached head comes from another writer (a cluster node), so the head is stale.
    ctx.bus.onAdvance((msg) => {
      if (msg.stream !== 'events' || msg.roomId === undefined) return;
      if (this.loading.has(msg.roomId)) this.changedWhileLoading.add(msg.roomId);
      const head = this.cache.peek(msg.roomId);
      if (head && msg.pos > head.lastPos) this.cache.delete(msg.roomId);
    });
    ctx.bus.onInvalidate((msg) => {
      if (msg.cache === HEAD_CACHE || msg.cache === ALL_KEYS) {
        if (msg.key === ALL_KEYS) {
          this.cache.clear();
          for (const roomId of this.loading.keys()) this.changedWhileLoading.add(roomId);
        } else {
          this.cache.delete(msg.key);
          if (this.loading.has(msg.key)) this.changedWhileLoading.add(msg.key);
        }
      }
    });
  }

  /** The room's head, or null when the room is unknown here. */
  async get(roomId: string): Promise<RoomHead | null> {
    const hit = this.cache.get(roomId);
    if (hit) return hit;
    let p = this.loading.get(roomId);
    if (!p) {
      p = this.load(roomId).finally(() => this.loading.delete(roomId));
      this.loading.set(roomId, p);
    }
    return p;
  }

  /**
   * The cached head, if any, for a caller that only wants what is at hand (a room's version):
   * neither counted as a lookup nor made more recent, so reads of many rooms (a sync) neither
   * push out the heads that sends use nor show in the cache's figures as misses.
   */
  peek(roomId: string): RoomHead | undefined {
    return this.cache.peek(roomId);
  }

  set(head: RoomHead): void {
    this.cache.set(head.roomId, head);
  }

  invalidate(roomId: string): void {
    this.cache.delete(roomId);
    if (this.loading.has(roomId)) this.changedWhileLoading.add(roomId);
  }

  private async load(roomId: string): Promise<RoomHead | null> {
    this.changedWhileLoading.delete(roomId);
    const snapshot = await readHeadRows(this.ctx, roomId);
    if (!snapshot) return null;
    const { room, stateRows, extremities, memberRows, groupDepth: depthOfGroup, partial } = snapshot;
    const version = getRoomVersion(room.room_version);
    if (!version) throw new Error(`room ${roomId} has unsupported version ${room.room_version}`);
    const state: StateMap = new Map();
    for (const r of stateRows) state.set(stateKey(r.type, r.state_key), r.event_id);
    const members = new Map<string, MemberInfo>();
    for (const m of memberRows) {
      members.set(m.user_id, {
        membership: m.membership as Membership,
        eventId: m.event_id,
        sender: m.sender,
        displayName: m.display_name,
        avatarUrl: m.avatar_url,
      });
    }
    let group: GroupRef | null = null;
    let groupDepth = 0;
    if (extremities.length === 1 && extremities[0]!.state_group !== null) {
      group = { id: extremities[0]!.state_group };
      groupDepth = depthOfGroup ?? 0;
    }
    const head: RoomHead = {
      roomId,
      version,
      creator: room.creator,
      state,
      group,
      groupDepth,
      extremities: extremities.map((e) => ({ eventId: e.event_id, depth: e.depth })),
      members,
      lastPos: Math.max(0, ...extremities.map((e) => e.stream_pos ?? 0)),
      partial: partial ?? null,
    };
    // A commit that landed while this load was reading wins: its head is newer.
    const newer = this.cache.get(roomId);
    if (newer) return newer;
    if (this.changedWhileLoading.delete(roomId)) return head;
    this.cache.set(roomId, head);
    return head;
  }
}

/**
 * The rows a head is made of, read in one snapshot: current state,
 * extremities and members must be of the same moment, or an event could be
 * checked against state older than the extremities it extends (a ban
 * committed by another node between two reads would go unseen).
 */
export async function readHeadRows(ctx: Pick<Context, 'db' | 'dialect'>, roomId: string) {
  const read = async (db: DbOrTx) => {
    const room = await selectRoom(db, roomId);
    if (!room) return null;
    const stateRows = await selectCurrentState(db, roomId);
    const extremities = await selectForwardExtremities(db, roomId);
    const memberRows = await selectRoomMembers(db, roomId);
    const only = extremities.length === 1 ? extremities[0]!.state_group : null;
    const groupDepth = only !== null ? await selectGroupDepth(db, only) : null;
    const partial = await selectPartialStateRoom(db, roomId);
    return { room, stateRows, extremities, memberRows, groupDepth, partial };
  };
  // SQLite's transaction holds its one connection, so no write lands between the reads.
  const tx = ctx.db.transaction();
  return (ctx.dialect === 'postgres' ? tx.setIsolationLevel('repeatable read') : tx).execute(read);
}
