/**
 * The end of a partial-state join: the full state before the join (fetched from a resident
 * server, its events stored as outliers) replaces the partial one. A key missing from a partial
 * state is a member the resident server left out; from the join on, every change to the room's
 * state went through this server, so the full state before or after any event stored meanwhile
 * is its partial state with the omitted members added from the state before the join, and the
 * same holds for the current state. (A fork resolved while the state was partial was resolved
 * without the omitted members; the result is kept, as Synapse keeps it.)
 *
 * In one transaction, under the room's lock like every write: new state groups (the full state
 * before the join as a snapshot, each other state as a delta on it), the stored events pointed
 * at them, the current state and memberships completed, the partial marks removed. Events stored
 * meanwhile are checked again against their full state; one that fails is logged, not retracted:
 * clients have seen it, and the resident servers accepted it.
 */
import { sql } from 'kysely';
import type { Context } from '../../context.js';
import { authEventSelection, authStateFromEvents, checkAuth } from '../../core/auth-rules.js';
import { splitStateKey, stateKey, type StateMap } from '../../core/types.js';
import { hashLockKey } from '../../db/migrate.js';
import type { Tx } from '../../db/schema.js';
import { nextPositions } from '../../db/stream-positions.js';
import type { EventStore } from '../events/event-store.js';
import type { StoredEvent } from '../events/stored-event.js';
import { groupId, HEAD_CACHE, type GroupRef, type MemberInfo, type NewGroupPlan, type RoomHead } from '../state/room-head.js';
import type { StateGroups } from '../state/state-groups.js';
import { upsertCurrentState } from '../store/current-state-table.js';
import { updateEventStateGroups } from '../store/events-table.js';
import { selectForwardExtremityIds } from '../store/extremities-table.js';
import { upsertMemberships } from '../store/memberships-table.js';
import { deletePartialStateRoom, selectPartialStateEventIds } from '../store/partial-state-table.js';
import { insertStateGroups } from '../store/state-groups-table.js';
import type { RoomMembershipRow } from '../tables.js';
import { memberInfoOf, planGroup } from './apply-event.js';
import { StaleHeadError } from './persist-batch.js';
import { EVENT_CACHE } from './pipeline.js';

const CREATE_KEY = stateKey('m.room.create', '');

export interface StateFill {
  base: RoomHead;
  head: RoomHead;
  plans: NewGroupPlan[];
  /** Each event stored meanwhile with its new groups. */
  regrouped: { stored: StoredEvent; group: GroupRef | null; groupBefore: GroupRef | null }[];
  /** Current-state keys the fill adds: [type, state_key, event_id]. */
  added: Array<[string, string, string]>;
  /** Events stored meanwhile that their full state does not allow. */
  failing: { eventId: string; reason: string }[];
}

/** The fill for `base`, a head with partial state; `full` is the state before the join, every event of it stored. */
export async function planStateFill(deps: { ctx: Context; events: EventStore; groups: StateGroups }, base: RoomHead, full: StateMap): Promise<StateFill> {
  const { ctx, events, groups } = deps;
  const complete = (partial: StateMap): StateMap => {
    const out = new Map(partial);
    for (const [k, id] of full) if (!out.has(k)) out.set(k, id);
    return out;
  };
  const root = planGroup(full, null);
  const plans: NewGroupPlan[] = [root];
  const byOld = new Map<number, { ref: GroupRef; state: StateMap }>();
  const regroup = async (old: number | null): Promise<{ ref: GroupRef; state: StateMap } | null> => {
    if (old === null) return null;
    let hit = byOld.get(old);
    if (!hit) {
      const state = complete(await groups.load(old));
      const plan = planGroup(state, { ref: { plan: root }, depth: 0, state: full });
      let ref: GroupRef = { plan: root };
      if (plan.entries.length > 0) {
        plans.push(plan);
        ref = { plan };
      }
      hit = { ref, state };
      byOld.set(old, hit);
    }
    return hit;
  };

  const ids = await selectPartialStateEventIds(ctx.db, base.roomId);
  const stored = [...(await events.getMany(ids)).values()].filter((e) => !e.outlier).sort((a, b) => a.pdu.depth - b.pdu.depth);
  const regrouped: StateFill['regrouped'] = [];
  const failing: StateFill['failing'] = [];
  const createId = full.get(CREATE_KEY);
  const create = createId !== undefined ? await events.get(createId) : undefined;
  for (const ev of stored) {
    const before = await regroup(ev.stateGroupBefore);
    const after = await regroup(ev.stateGroup);
    regrouped.push({ stored: ev, group: after?.ref ?? null, groupBefore: before?.ref ?? null });
    if (before && ev.rejectedReason === null) {
      const selection = authEventSelection(ev.pdu, base.version).map(([t, k]) => before.state.get(stateKey(t, k)));
      const authIds = [...new Set([...selection, createId].filter((id): id is string => id !== undefined))];
      const res = checkAuth({ eventId: ev.eventId, pdu: ev.pdu }, authStateFromEvents((await events.getMany(authIds)).values()), base.version, create);
      if (!res.allowed) failing.push({ eventId: ev.eventId, reason: res.reason });
    }
  }

  const state = complete(base.state);
  const added: StateFill['added'] = [];
  const members = new Map(base.members);
  const newMembers = await events.getMany([...full].filter(([k]) => !base.state.has(k)).map(([, id]) => id));
  for (const [k, id] of full) {
    if (base.state.has(k)) continue;
    added.push([...splitStateKey(k), id]);
    const ev = newMembers.get(id);
    const info = ev ? memberInfoOf(id, ev.pdu) : undefined;
    if (ev && info) members.set(ev.pdu.state_key!, info);
  }
  const headGroup = base.group !== null && 'id' in base.group ? (byOld.get(base.group.id)?.ref ?? null) : null;
  const head: RoomHead = { ...base, partial: null, state, members, group: headGroup, groupDepth: headGroup === null ? 0 : 'plan' in headGroup ? headGroup.plan.deltaDepth : 0 };
  return { base, head, plans, regrouped, added, failing };
}

/** Writes a fill (see the module comment); `fence` checks, in the transaction, that the caller still owns the work. */
export async function persistStateFill(ctx: Context, trx: Tx, f: StateFill, fence?: (trx: Tx) => Promise<void>): Promise<void> {
  const roomId = f.base.roomId;
  if (ctx.dialect === 'postgres') await sql`select pg_advisory_xact_lock(${hashLockKey(roomId)})`.execute(trx);
  const now = new Set(await selectForwardExtremityIds(trx, roomId));
  if (now.size !== f.base.extremities.length || f.base.extremities.some((e) => !now.has(e.eventId))) throw new StaleHeadError(roomId);
  if (fence) await fence(trx);

  const first = await nextPositions(trx, 'state_groups', f.plans.length);
  f.plans.forEach((p, i) => (p.id = first + i));
  await insertStateGroups(
    trx,
    f.plans.map((p) => ({ id: p.id!, roomId, prevGroup: p.prev === null ? null : groupId(p.prev), deltaDepth: p.deltaDepth, entries: p.entries })),
  );
  await updateEventStateGroups(
    trx,
    f.regrouped.map((r) => ({ eventId: r.stored.eventId, stateGroup: refId(r.stored.rejectedReason !== null ? r.groupBefore : r.group), stateGroupBefore: refId(r.groupBefore) })),
  );
  await upsertCurrentState(trx, roomId, f.added);
  // The members learnt now changed no membership at any position: their rows take the room's last one.
  const rows: RoomMembershipRow[] = [];
  for (const [type, userId] of f.added) {
    const m: MemberInfo | undefined = type === 'm.room.member' ? f.head.members.get(userId) : undefined;
    if (!m) continue;
    rows.push({ room_id: roomId, user_id: userId, membership: m.membership, event_id: m.eventId, stream_pos: f.base.lastPos, sender: m.sender, display_name: m.displayName, avatar_url: m.avatarUrl, forgotten: 0 });
  }
  await upsertMemberships(trx, rows);
  await deletePartialStateRoom(trx, roomId);
  await ctx.bus.invalidateIn(trx, [{ cache: HEAD_CACHE, key: roomId }, ...f.regrouped.map((r) => ({ cache: EVENT_CACHE, key: r.stored.eventId }))]);
}

/**
 * After commit: other nodes drop what they hold (the poke; the rows written with the fill
 * repair a lost one), then this node's caches take the filled state. Returns the head to cache.
 */
export function afterStateFill(ctx: Context, deps: { events: EventStore; groups: StateGroups }, f: StateFill): RoomHead {
  ctx.bus.invalidate({ cache: HEAD_CACHE, key: f.base.roomId });
  for (const p of f.plans) deps.groups.put(p.id!, p.state);
  for (const r of f.regrouped) {
    ctx.bus.invalidate({ cache: EVENT_CACHE, key: r.stored.eventId });
    deps.events.put({ ...r.stored, stateGroup: refId(r.stored.rejectedReason !== null ? r.groupBefore : r.group), stateGroupBefore: refId(r.groupBefore) });
  }
  return { ...f.head, group: f.head.group === null ? null : { id: groupId(f.head.group) } };
}

function refId(ref: GroupRef | null): number | null {
  return ref === null ? null : groupId(ref);
}
