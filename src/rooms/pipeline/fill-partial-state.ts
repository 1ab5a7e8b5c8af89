/**
 * The end of a partial-state join: the full state before the join (fetched from a resident
 * server, its events stored as outliers) replaces the partial one. A key missing from a partial
 * state is a member the resident server left out; from the join on, every change to the room's
 * state went through this server, so the full state before or after any event stored meanwhile
 * is its partial state with the omitted members added from the state before the join, and the
 * same holds for the current state. (A fork resolved while the state was partial was resolved
 * without the omitted members; the result is kept, as Synapse keeps it.)
 *
 * Events stored meanwhile were checked against state that lacked members, so each is checked
 * again, oldest first, as it would have been with the full state (MSC3902): one its full state
 * before does not allow is rejected, and a state event rejected so leaves every later state (its
 * key takes the value before it); one allowed by that state but not by the room's state when it
 * came (the state at the stream position before it) is soft-failed. Either leaves the stream, so
 * clients no longer see it (and the sync after the fill resets their timeline of the room), and
 * stops being a forward extremity (its prev events take its place). A redaction that leaves so
 * stops redacting its target (withdrawn-redactions.ts).
 *
 * In one transaction, under the room's lock like every write: new state groups (the full state
 * before the join as a snapshot, each other state as a delta on it), the stored events pointed
 * at them and given their new status, the current state and memberships completed, the partial
 * marks removed. The state learnt takes a position of its own on the events stream, like any
 * change of the room: its current-state deltas and membership rows carry it, and /sync renders
 * the room whole when a token's range holds it (like a room joined since).
 */
import { sql } from 'kysely';
import type { Context } from '../../context.js';
import { authEventSelection, authStateFromEvents, checkAuth, prevEventIds } from '../../core/auth-rules.js';
import { splitStateKey, stateKey, type StateMap } from '../../core/types.js';
import { hashLockKey } from '../../db/migrate.js';
import type { Tx } from '../../db/schema.js';
import { nextPositions } from '../../db/stream-positions.js';
import { relationRows } from '../../relations/index-rows.js';
import { deleteRelation, insertRelations } from '../../relations/relations-table.js';
import { searchRows } from '../../search/index-rows.js';
import { deleteSearchDoc, insertSearchDocs, selectIndexState } from '../../search/search-table.js';
import type { EventStore } from '../events/event-store.js';
import type { StoredEvent } from '../events/stored-event.js';
import { groupId, HEAD_CACHE, type Extremity, type GroupRef, type MemberInfo, type NewGroupPlan, type RoomHead } from '../state/room-head.js';
import type { StateGroups } from '../state/state-groups.js';
import { deleteCurrentState, upsertCurrentState } from '../store/current-state-table.js';
import { selectIdsWithLiveChildren } from '../store/edges-table.js';
import { replaceRedactedBy, updateEventStateGroups, withdrawEvents } from '../store/events-table.js';
import { replaceForwardExtremities, selectForwardExtremityIds } from '../store/extremities-table.js';
import { membershipRow, upsertMemberships } from '../store/memberships-table.js';
import { deletePartialStateRoom, insertPartialStateFill, selectPartialStateEventIds } from '../store/partial-state-table.js';
import { insertStateDeltas } from '../store/state-deltas-table.js';
import { insertStateGroups } from '../store/state-groups-table.js';
import type { CurrentStateDeltaRow, RoomMembershipRow } from '../tables.js';
import { memberInfoOf, planGroup } from './apply-event.js';
import { StaleHeadError } from './persist-batch.js';
import { EVENT_ROW_CACHE } from './pipeline.js';
import { undoneRedactions, type Unredaction } from './withdrawn-redactions.js';

const CREATE_KEY = stateKey('m.room.create', '');

/** An event stored meanwhile that the full state does not allow. */
export interface FailedRecheck {
  eventId: string;
  reason: string;
  /** Rejected: its state before does not allow it. Soft-failed: the room's state when it came does not. */
  outcome: 'rejected' | 'soft_failed';
}

export interface StateFill {
  base: RoomHead;
  head: RoomHead;
  plans: NewGroupPlan[];
  /** Each event stored meanwhile with its new groups, and its new status when the re-check failed it. */
  regrouped: { stored: StoredEvent; group: GroupRef | null; groupBefore: GroupRef | null; failed?: FailedRecheck }[];
  /** Current-state changes: [type, state_key, event_id] set, [type, state_key] removed. */
  changed: Array<[string, string, string]>;
  removed: Array<[string, string]>;
  /** Forward extremities that failed the re-check, and the prev events that take their place. */
  extremities: { removed: string[]; added: string[] };
  failing: FailedRecheck[];
  /** Targets of the failed redactions: marked redacted by a standing one, or not at all. */
  unredacted: Unredaction[];
}

type Deps = { ctx: Context; events: EventStore; groups: StateGroups };

/** The fill for `base`, a head with partial state; `full` is the state before the join, every event of it stored. */
export async function planStateFill(deps: Deps, base: RoomHead, full: StateMap): Promise<StateFill> {
  const { ctx, events, groups } = deps;
  /** Rejected state events: the value their key had before them (null: none). */
  const withdrawn = new Map<string, string | null>();
  const complete = (partial: StateMap): StateMap => {
    const out = new Map(partial);
    for (const [k, id] of full) if (!out.has(k)) out.set(k, id);
    if (withdrawn.size > 0) {
      for (const [k, id] of out) {
        if (!withdrawn.has(id)) continue;
        const prior = withdrawn.get(id)!;
        if (prior === null) out.delete(k);
        else out.set(k, prior);
      }
    }
    return out;
  };
  const root = planGroup(full, null);
  const plans: NewGroupPlan[] = [root];
  // A group holding a withdrawn event is only ever read after it was withdrawn (by its descendants).
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
  const createId = full.get(CREATE_KEY);
  const create = createId !== undefined ? await events.get(createId) : undefined;
  const allows = async (ev: StoredEvent, state: StateMap) => {
    const selection = authEventSelection(ev.pdu, base.version).map(([t, k]) => state.get(stateKey(t, k)));
    const authIds = [...new Set([...selection, createId].filter((id): id is string => id !== undefined))];
    return checkAuth({ eventId: ev.eventId, pdu: ev.pdu }, authStateFromEvents((await events.getMany(authIds)).values()), base.version, create);
  };

  const ids = await selectPartialStateEventIds(ctx.db, base.roomId);
  const stored = [...(await events.getMany(ids)).values()]
    .filter((e) => !e.outlier)
    .sort((a, b) => a.pdu.depth - b.pdu.depth || (a.streamPos ?? 0) - (b.streamPos ?? 0));
  const regrouped: StateFill['regrouped'] = [];
  const failing: FailedRecheck[] = [];
  /** Soft-failed state events: the value their key had before them, for the current state. */
  const softFailed = new Map<string, string | null>();
  // The room's state when the next event came: after the last one placed in the stream.
  let current: StateMap | null = null;
  for (const ev of stored) {
    const before = await regroup(ev.stateGroupBefore);
    let failed: FailedRecheck | undefined;
    if (before && ev.rejectedReason === null && !ev.softFailed) {
      const res = await allows(ev, before.state);
      if (!res.allowed) failed = { eventId: ev.eventId, reason: res.reason, outcome: 'rejected' };
      else if (current !== null && ev.streamPos !== null) {
        const now = await allows(ev, current);
        if (!now.allowed) failed = { eventId: ev.eventId, reason: now.reason, outcome: 'soft_failed' };
      }
    }
    const key = typeof ev.pdu.state_key === 'string' ? stateKey(ev.pdu.type, ev.pdu.state_key) : undefined;
    if (failed) {
      failing.push(failed);
      if (key !== undefined) (failed.outcome === 'rejected' ? withdrawn : softFailed).set(ev.eventId, before?.state.get(key) ?? null);
    }
    const after = failed?.outcome === 'rejected' ? before : await regroup(ev.stateGroup);
    regrouped.push({ stored: ev, group: after?.ref ?? null, groupBefore: before?.ref ?? null, ...(failed ? { failed } : {}) });
    if (!failed && ev.streamPos !== null && ev.rejectedReason === null && !ev.softFailed && after) current = after.state;
  }

  const state = complete(base.state);
  for (const [k, id] of state) {
    if (!softFailed.has(id)) continue;
    const prior = softFailed.get(id)!;
    if (prior === null) state.delete(k);
    else state.set(k, prior);
  }
  const changed: StateFill['changed'] = [];
  const removed: StateFill['removed'] = [];
  for (const [k, id] of state) if (base.state.get(k) !== id) changed.push([...splitStateKey(k), id]);
  for (const k of base.state.keys()) if (!state.has(k)) removed.push(splitStateKey(k));
  const members = new Map(base.members);
  const memberEvents = await events.getMany(changed.filter(([t]) => t === 'm.room.member').map(([, , id]) => id));
  for (const [t, userId, id] of changed) {
    if (t !== 'm.room.member') continue;
    const ev = memberEvents.get(id);
    const info = ev ? memberInfoOf(id, ev.pdu) : undefined;
    if (info) members.set(userId, info);
  }
  for (const [t, userId] of removed) if (t === 'm.room.member') members.delete(userId);

  const extremities = await replacedExtremities(deps, base.extremities, failing);
  const old = base.group !== null && 'id' in base.group ? byOld.get(base.group.id) : undefined;
  const headGroup = old && sameState(old.state, state) ? old.ref : null;
  const head: RoomHead = {
    ...base,
    partial: null,
    state,
    members,
    group: headGroup,
    groupDepth: headGroup === null ? 0 : 'plan' in headGroup ? headGroup.plan.deltaDepth : 0,
    extremities: extremities.list,
  };
  const failed = new Set(failing.map((x) => x.eventId));
  const unredacted = await undoneRedactions(ctx.db, events, head, stored.filter((ev) => failed.has(ev.eventId)));
  return { base, head, plans, regrouped, changed, removed, extremities: { removed: extremities.removed, added: extremities.added }, failing, unredacted };
}

/**
 * The forward extremities once the failed events leave them: each one failed gives way to its
 * prev events that are stored with state, not failed, and have no other child that stands.
 */
async function replacedExtremities(deps: Deps, list: readonly Extremity[], failing: FailedRecheck[]): Promise<{ list: Extremity[]; removed: string[]; added: string[] }> {
  const failed = new Set(failing.map((f) => f.eventId));
  const removed = list.filter((e) => failed.has(e.eventId)).map((e) => e.eventId);
  if (removed.length === 0) return { list: [...list], removed, added: [] };
  const gone = await deps.events.getMany(removed);
  const prevIds = [...new Set([...gone.values()].flatMap((ev) => prevEventIds(ev.pdu)))].filter((id) => !failed.has(id) && !list.some((e) => e.eventId === id));
  const prevs = await deps.events.getMany(prevIds);
  const withChildren = await selectIdsWithLiveChildren(deps.ctx.db, prevIds, [...failed]);
  const added: Extremity[] = [];
  for (const id of prevIds) {
    const p = prevs.get(id);
    if (!p || p.outlier || p.stateGroup === null || p.rejectedReason !== null || p.softFailed || withChildren.has(id)) continue;
    added.push({ eventId: id, depth: p.pdu.depth });
  }
  return { list: [...list.filter((e) => !failed.has(e.eventId)), ...added], removed, added: added.map((e) => e.eventId) };
}

function sameState(a: StateMap, b: StateMap): boolean {
  if (a.size !== b.size) return false;
  for (const [k, id] of a) if (b.get(k) !== id) return false;
  return true;
}

/**
 * Writes a fill (see the module comment); `fence` checks, in the transaction, that the caller
 * still owns the work. Returns the events stream position the fill took.
 */
export async function persistStateFill(ctx: Context, trx: Tx, f: StateFill, fence?: (trx: Tx) => Promise<void>): Promise<number> {
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
  await updateEventStateGroups(trx, f.regrouped.map((r) => ({ eventId: r.stored.eventId, stateGroup: refId(groupAfter(r)), stateGroupBefore: refId(r.groupBefore) })));
  await withdrawEvents(trx, f.failing.map((x) => ({ eventId: x.eventId, rejectedReason: x.outcome === 'rejected' ? x.reason : null, softFailed: x.outcome === 'soft_failed' })));
  for (const x of f.failing) {
    await deleteRelation(trx, x.eventId);
    await deleteSearchDoc(trx, x.eventId);
  }
  const failed = new Set(f.failing.map((x) => x.eventId));
  await ctx.services.push.forgetOutcomes(trx, roomId, f.regrouped.filter((r) => failed.has(r.stored.eventId) && r.stored.streamPos !== null).map((r) => r.stored.streamPos!));
  await restoreUnredacted(ctx, trx, f.unredacted, failed);
  await replaceForwardExtremities(trx, roomId, f.extremities.removed, f.extremities.added);
  await upsertCurrentState(trx, roomId, f.changed);
  if (f.removed.length > 0) await deleteCurrentState(trx, roomId, f.removed);
  await deletePartialStateRoom(trx, roomId);

  // Position last: the counter's row stays locked until commit.
  const pos = await nextPositions(trx, 'events', 1);
  const rows: RoomMembershipRow[] = [];
  const deltas: CurrentStateDeltaRow[] = [];
  const memberRow = (userId: string, m: MemberInfo, membership: string) => membershipRow(roomId, userId, m, membership, pos);
  for (const [type, key, eventId] of f.changed) {
    const m = type === 'm.room.member' ? f.head.members.get(key) : undefined;
    if (m) rows.push(memberRow(key, m, m.membership));
    deltas.push({ stream_pos: pos, room_id: roomId, type, state_key: key, event_id: eventId, membership: m?.membership ?? null });
  }
  for (const [type, key] of f.removed) {
    const m = type === 'm.room.member' ? f.base.members.get(key) : undefined;
    if (m) rows.push(memberRow(key, m, 'leave'));
    deltas.push({ stream_pos: pos, room_id: roomId, type, state_key: key, event_id: '', membership: type === 'm.room.member' ? 'leave' : null });
  }
  await upsertMemberships(trx, rows);
  await insertStateDeltas(trx, deltas);
  await insertPartialStateFill(trx, roomId, pos);
  await ctx.bus.invalidateIn(trx, [{ cache: HEAD_CACHE, key: roomId }, ...changedEvents(f).map((key) => ({ cache: EVENT_ROW_CACHE, key }))]);
  return pos;
}

/**
 * Targets of withdrawn redactions take their new mark; one no longer redacted goes back into the
 * indexes its redaction took it out of (persist-batch): its relation, and its text when the search
 * indexer has passed it (else the indexer reaches it unredacted). An indexer round under way that
 * read it while it was still redacted leaves it out of search, as it was while redacted.
 */
async function restoreUnredacted(ctx: Context, trx: Tx, unredacted: readonly Unredaction[], failed: ReadonlySet<string>): Promise<void> {
  const back: StoredEvent[] = [];
  for (const u of unredacted) {
    await replaceRedactedBy(trx, u.target.eventId, u.by);
    if (u.by === null && u.target.streamPos !== null && !failed.has(u.target.eventId)) back.push({ ...u.target, redactedBy: null });
  }
  if (back.length === 0) return;
  await insertRelations(trx, relationRows(back.map((stored) => ({ stored, depth: stored.pdu.depth })), (i) => back[i]!.streamPos));
  const indexed = (await selectIndexState(trx)).forward;
  const docs = searchRows(back.filter((ev) => ev.streamPos! <= indexed));
  if (docs.length > 0) await insertSearchDocs(trx, ctx.dialect, docs);
}

/**
 * After commit: other nodes drop what they hold (the poke; the rows written with the fill
 * repair a lost one), then this node's caches take the filled state, and the fill's position
 * is announced to the room's syncs. Returns the head to cache.
 */
export function afterStateFill(ctx: Context, deps: { events: EventStore; groups: StateGroups }, f: StateFill, pos: number): RoomHead {
  const roomId = f.base.roomId;
  ctx.bus.invalidate({ cache: HEAD_CACHE, key: roomId });
  for (const p of f.plans) deps.groups.put(p.id!, p.state);
  if (f.failing.length > 0) ctx.services.push.outcomesForgotten(roomId);
  const marks = new Map(f.unredacted.map((u) => [u.target.eventId, u.by]));
  for (const id of marks.keys()) ctx.bus.invalidate({ cache: EVENT_ROW_CACHE, key: id });
  for (const r of f.regrouped) {
    ctx.bus.invalidate({ cache: EVENT_ROW_CACHE, key: r.stored.eventId });
    const status = r.failed ? { rejectedReason: r.failed.outcome === 'rejected' ? r.failed.reason : null, softFailed: r.failed.outcome === 'soft_failed', streamPos: null } : {};
    const redactedBy = marks.has(r.stored.eventId) ? marks.get(r.stored.eventId)! : r.stored.redactedBy;
    deps.events.put({ ...r.stored, ...status, redactedBy, stateGroup: refId(groupAfter(r)), stateGroupBefore: refId(r.groupBefore) });
  }
  const userIds = [...f.changed, ...f.removed].filter(([t]) => t === 'm.room.member').map(([, k]) => k);
  ctx.bus.publish({ stream: 'events', pos, roomId, userIds });
  return { ...f.head, group: f.head.group === null ? null : { id: groupId(f.head.group) }, lastPos: Math.max(f.head.lastPos, pos) };
}

/** The events whose rows the fill changes: those regrouped, and the targets of withdrawn redactions. */
function changedEvents(f: StateFill): string[] {
  return [...new Set([...f.regrouped.map((r) => r.stored.eventId), ...f.unredacted.map((u) => u.target.eventId)])];
}

/** The group an event's row points at: the state before it when it is rejected (it changes nothing). */
function groupAfter(r: StateFill['regrouped'][number]): GroupRef | null {
  return r.stored.rejectedReason !== null || r.failed?.outcome === 'rejected' ? r.groupBefore : r.group;
}

function refId(ref: GroupRef | null): number | null {
  return ref === null ? null : groupId(ref);
}
