import { sql } from 'kysely';
import type { Context } from '../../context.js';
import { splitStateKey } from '../../core/types.js';
import { hashLockKey } from '../../db/migrate.js';
import type { Tx } from '../../db/schema.js';
import type { SyncTx } from '../../db/sqlite-sync.js';
import type { PipelinedTx, StatementSink } from '../../db/pg-pipeline.js';
import { prepared } from '../../db/prepared.js';
import { nextPositions, nextPositionsSync, nextPositionsVia } from '../../db/stream-positions.js';
import type { PushActionRow } from '../../push/service.js';
import { relationRows } from '../../relations/index-rows.js';
import { deleteRelation, insertRelations, insertRelationsVia } from '../../relations/relations-table.js';
import { deleteSearchDoc } from '../../search/search-table.js';
import { deleteCurrentState, upsertCurrentState } from '../store/current-state-table.js';
import { insertEdges, insertEdgesVia, linkToFirstChildSync, updateBackwardExtremities } from '../store/edges-table.js';
import { insertEvents, insertEventsVia, setRedactedBy } from '../store/events-table.js';
import { replaceForwardExtremities, replaceForwardExtremityVia, selectExtremityIds, selectForwardExtremityIds } from '../store/extremities-table.js';
import { clearProfile, membershipRow, upsertMemberships } from '../store/memberships-table.js';
import { insertPartialStateEvents, insertPartialStateRoom } from '../store/partial-state-table.js';
import { insertRoom } from '../store/rooms-table.js';
import { insertStateGroups } from '../store/state-groups-table.js';
import type { CurrentStateDeltaRow, EventRow, RoomMembershipRow } from '../tables.js';
import { insertStateDeltas } from '../store/state-deltas-table.js';
import { groupId, type GroupRef, type MemberInfo, type RoomHead } from '../state/room-head.js';
import type { ChainOverlay } from '../state/auth-chain-index.js';
import type { StoredEvent } from '../events/stored-event.js';
import { memberInfoOf, type AppliedEvent } from './apply-event.js';
import { storePushActions, storePushActionsVia } from './push-actions.js';

/** Another writer (a cluster node) appended to the room since the head was read: rebuild and retry. */
export class StaleHeadError extends Error {
  constructor(roomId: string) {
    super(`forward extremities of ${roomId} changed under the pipeline`);
  }
}

export interface BatchWrite {
  base: RoomHead;
  head: RoomHead;
  events: AppliedEvent[];
  push: PushActionRow[][];
  /** The batch starts a new room: write its `rooms` row. */
  newRoom: boolean;
  /** Profiles to clear because the redacted member event is a user's current one. */
  clearedProfiles: { userId: string; eventId: string }[];
  /** Backward extremities the batch adds (prev events not stored) and fills (events it stores). */
  backward?: { added: string[]; removed: string[] };
  /** Events stored as outliers that the batch stores again as timeline events. */
  upgradedOutliers?: string[];
  /**
   * The state keys (`type\u0000state_key`) whose current value the batch may
   * have changed, so that only they are compared (a join into a big room must
   * not cost a walk over its whole state). Unset: every key is compared.
   */
  touched?: ReadonlySet<string>;
  /** The auth chain index as the batch sees it; the batch's state events are placed on it and written. */
  chains: ChainOverlay;
}

/**
 * The stream position of each event of a batch, by index: `new` events from
 * `first` up, `backfill` events below every position so far (older history
 * further down), null for events clients never see.
 */
export type Positions = (number | null)[];

/** Positions of a batch of `new` events only (the fast paths). */
export function positionsFrom(events: AppliedEvent[], first: number): Positions {
  return events.map((a) => first + a.index);
}

/**
 * Writes a batch of events of one room in one transaction: current state and
 * the members derived from it, forward and backward extremities, then the
 * state group ids and stream positions (last, so commit order is position
 * order), then everything stamped with them (events, edges, state groups,
 * redactions, push actions). Returns each event's position.
 */
export async function persistBatch(ctx: Context, trx: Tx, w: BatchWrite): Promise<Positions> {
  const roomId = w.head.roomId;
  if (ctx.dialect === 'postgres') {
    await sql`select pg_advisory_xact_lock(${hashLockKey(roomId)})`.execute(trx);
    if (!w.newRoom) {
      const now = new Set(await selectForwardExtremityIds(trx, roomId));
      const expected = w.base.extremities;
      if (now.size !== expected.length || expected.some((e) => !now.has(e.eventId))) throw new StaleHeadError(roomId);
    }
  }

  if (w.newRoom) {
    await insertRoom(trx, { room_id: roomId, room_version: w.head.version.id, creator: w.head.creator, created_ts: ctx.now() });
  }

  const changed: Array<[string, string, string]> = [];
  const removed: Array<[string, string]> = [];
  const keys = w.touched ?? new Set([...w.head.state.keys(), ...w.base.state.keys()]);
  for (const k of keys) {
    const id = w.head.state.get(k);
    if (id === w.base.state.get(k)) continue;
    if (id === undefined) removed.push(splitStateKey(k));
    else changed.push([...splitStateKey(k), id]);
  }
  await upsertCurrentState(trx, roomId, changed);
  if (removed.length > 0) await deleteCurrentState(trx, roomId, removed);

  const before = new Set(w.base.extremities.map((e) => e.eventId));
  const after = new Set(w.head.extremities.map((e) => e.eventId));
  await replaceForwardExtremities(
    trx,
    roomId,
    [...before].filter((id) => !after.has(id)),
    [...after].filter((id) => !before.has(id)),
  );
  if (w.backward) await updateBackwardExtremities(trx, roomId, w.backward.added, w.backward.removed);
  if (w.head.partial) {
    // Until the full state is filled in, the state before and after each event from the join on
    // lacks members. Backfilled history is older than the join: its state came whole from the
    // server that sent it.
    if (!w.base.partial) await insertPartialStateRoom(trx, roomId, w.head.partial);
    await insertPartialStateEvents(trx, roomId, w.events.filter((a) => !a.stored.outlier && a.placement !== 'backfill').map((a) => a.stored.eventId));
  }

  // Every state event that may become an auth event gets its place in the auth chain index.
  const indexable = new Map<string, StoredEvent>();
  for (const a of w.events) if (typeof a.stored.pdu.state_key === 'string' && a.stored.rejectedReason === null) indexable.set(a.stored.eventId, a.stored);
  if (indexable.size > 0) await w.chains.place(trx, indexable.keys(), (id) => indexable.get(id));
  if (!(await w.chains.write(trx))) throw new StaleHeadError(roomId);

  // Ids and positions last: the counters' rows stay locked until commit.
  const plans = w.events.flatMap((a) => a.newGroups);
  if (plans.length > 0) {
    const firstGroup = await nextPositions(trx, 'state_groups', plans.length);
    plans.forEach((p, i) => (p.id = firstGroup + i));
  }
  const backfill = w.events.filter((a) => a.placement === 'backfill');
  const fresh = w.events.filter((a) => a.placement === 'new');
  const positions: Positions = w.events.map(() => null);
  if (backfill.length > 0) {
    // Older history further down: the batch is in topological order, so its first event gets the lowest position.
    const deepest = (await nextPositions(trx, 'backfill', backfill.length)) + backfill.length - 1;
    backfill.forEach((a, i) => (positions[a.index] = -(deepest - i)));
  }
  if (fresh.length > 0) {
    const first = await nextPositions(trx, 'events', fresh.length);
    fresh.forEach((a, i) => (positions[a.index] = first + i));
  }
  const lastPos = fresh.length > 0 ? positions[fresh[fresh.length - 1]!.index]! : null;

  const rows = w.events.map((a) => eventRow(w, a, positions[a.index] ?? null));
  if (w.upgradedOutliers && w.upgradedOutliers.length > 0) {
    await trx.deleteFrom('events').where('event_id', 'in', w.upgradedOutliers).where('outlier', '=', 1).execute();
  }
  await insertEvents(trx, rows);
  await insertEdges(trx, w.events.filter((a) => !a.stored.outlier).flatMap((a) => a.prevIds.map((p): [string, string] => [a.stored.eventId, p])));
  await insertStateGroups(
    trx,
    plans.map((p) => ({ id: p.id!, roomId, prevGroup: p.prev === null ? null : groupId(p.prev), deltaDepth: p.deltaDepth, entries: p.entries })),
  );
  const memberships = membershipRows(w, [...changed.map(([t, k]) => [t, k] as const), ...removed], positions, lastPos);
  await upsertMemberships(trx, memberships);
  // Whoever stopped or started being joined, by an event or by resolution: push's spans follow.
  const joinChanges = memberships
    .map((r) => ({ userId: r.user_id, joined: r.membership === 'join', pos: r.stream_pos, was: w.base.members.get(r.user_id)?.membership === 'join' }))
    .filter((c) => c.joined !== c.was);
  if (joinChanges.length > 0) await ctx.services.push.storeMembershipChanges(trx, roomId, joinChanges);
  await insertStateDeltas(trx, stateDeltaRows(w, changed, removed, positions, lastPos));
  await insertRelations(trx, relationRows(w.events, (i) => positions[w.events[i]!.index] ?? null));
  for (const a of w.events) {
    if (a.redactionTarget === undefined) continue;
    await setRedactedBy(trx, a.redactionTarget, a.stored.eventId);
    // A redacted event's relation and text are pruned away: it leaves both indexes (the search indexer skips redacted events).
    await deleteRelation(trx, a.redactionTarget);
    await deleteSearchDoc(trx, a.redactionTarget);
  }
  for (const c of w.clearedProfiles) await clearProfile(trx, roomId, c.userId, c.eventId);
  for (const a of w.events) {
    const push = w.push[a.index];
    const pos = positions[a.index];
    if (push && push.length > 0 && pos != null) await storePushActions(ctx, trx, roomId, a.stored.eventId, pos, push);
  }
  return positions;
}

/**
 * The current-state changes as a stream: one for each event that became the
 * current value at its key as it was applied (so a leave and a rejoin in one
 * batch are two changes), then those the batch's final state holds that no
 * such event explains (state resolution), at the position of the event it
 * chose or of the batch's last event.
 */
function stateDeltaRows(
  w: BatchWrite,
  changed: Array<[string, string, string]>,
  removed: Array<[string, string]>,
  positions: Positions,
  lastPos: number | null,
): CurrentStateDeltaRow[] {
  if (lastPos === null) return [];
  const posOf = new Map<string, number | null>(w.events.map((a) => [a.stored.eventId, positions[a.index] ?? null]));
  const rows: CurrentStateDeltaRow[] = [];
  const roomId = w.head.roomId;
  const lastSetBy = new Map<string, string>();
  for (const a of w.events) {
    const pdu = a.stored.pdu;
    const pos = positions[a.index];
    if (!a.becameCurrent || typeof pdu.state_key !== 'string' || pos == null) continue;
    const membership = pdu.type === 'm.room.member' ? (memberInfoOf(a.stored.eventId, pdu)?.membership ?? null) : null;
    rows.push({ stream_pos: pos, room_id: roomId, type: pdu.type, state_key: pdu.state_key, event_id: a.stored.eventId, membership });
    lastSetBy.set(`${pdu.type}\u0000${pdu.state_key}`, a.stored.eventId);
  }
  for (const [type, stateKey, eventId] of changed) {
    if (lastSetBy.get(`${type}\u0000${stateKey}`) === eventId) continue;
    const pos = posOf.get(eventId) ?? lastPos;
    const membership = type === 'm.room.member' ? (w.head.members.get(stateKey)?.membership ?? null) : null;
    rows.push({ stream_pos: pos, room_id: roomId, type, state_key: stateKey, event_id: eventId, membership });
  }
  for (const [type, stateKey] of removed) {
    rows.push({ stream_pos: lastPos, room_id: roomId, type, state_key: stateKey, event_id: '', membership: type === 'm.room.member' ? 'leave' : null });
  }
  return rows;
}

/**
 * Membership rows for every member whose current membership event changed:
 * an event of this batch, or one that state resolution chose (a state reset).
 * A member that resolution removed altogether keeps a row as `leave`, so the
 * rooms they are listed in and their /sync follow the reset.
 */
function membershipRows(w: BatchWrite, keys: ReadonlyArray<readonly [string, string]>, positions: Positions, lastPos: number | null): RoomMembershipRow[] {
  if (w.head.members === w.base.members) return [];
  const posOf = new Map<string, number | null>(w.events.map((a) => [a.stored.eventId, positions[a.index] ?? null]));
  const rows: RoomMembershipRow[] = [];
  const row = (userId: string, m: MemberInfo, membership: string, pos: number) => membershipRow(w.head.roomId, userId, m, membership, pos);
  for (const [type, userId] of keys) {
    if (type !== 'm.room.member') continue;
    const m = w.head.members.get(userId);
    const old = w.base.members.get(userId);
    if (!m) {
      if (old && lastPos !== null) rows.push(row(userId, old, 'leave', lastPos));
      continue;
    }
    if (old && old.eventId === m.eventId && old.membership === m.membership) continue;
    const pos = posOf.get(m.eventId) ?? lastPos;
    if (pos === null) continue;
    rows.push(row(userId, m, m.membership, pos));
  }
  return rows;
}

function eventRow(w: BatchWrite, a: AppliedEvent, pos: number | null): EventRow {
  const pdu = a.stored.pdu;
  const member = pdu.type === 'm.room.member' && typeof pdu.content?.membership === 'string' ? pdu.content.membership : null;
  return {
    event_id: a.stored.eventId,
    room_id: w.head.roomId,
    stream_pos: pos,
    depth: a.depth,
    type: pdu.type,
    state_key: typeof pdu.state_key === 'string' ? pdu.state_key : null,
    sender: pdu.sender,
    origin_server_ts: pdu.origin_server_ts,
    json: a.json,
    // A rejected event changes nothing: its row points at the state before it.
    state_group: a.stored.rejectedReason !== null ? refId(a.groupBefore) : refId(a.group),
    state_group_before: refId(a.groupBefore),
    replaces_state: a.stored.replacesState,
    membership: member,
    redacts: redactsOfPdu(pdu),
    redacted_by: null,
    outlier: a.stored.outlier ? 1 : 0,
    rejected_reason: a.stored.rejectedReason,
    soft_failed: a.stored.softFailed ? 1 : 0,
    sender_device: a.stored.senderDevice,
    txn_id: a.stored.txnId,
    txn_endpoint: a.stored.txnId === null ? null : (a.txnEndpoint ?? null),
  };
}

function refId(ref: GroupRef | null): number | null {
  return ref === null ? null : groupId(ref);
}

/**
 * Whether the batch only appends new events to a linear room: no state,
 * membership or redaction changes, no new state group, one forward extremity
 * replaced by another, and the room's state is full (events stored meanwhile are marked). The common send, which persistPlainAppendSync writes.
 */
export function isPlainAppend(w: BatchWrite): boolean {
  if (w.newRoom || w.clearedProfiles.length > 0 || w.head.state !== w.base.state || w.head.partial) return false;
  if (w.base.extremities.length !== 1 || w.head.extremities.length !== 1 || w.backward || w.upgradedOutliers) return false;
  for (const a of w.events) {
    if (a.newGroups.length > 0 || a.redactionTarget !== undefined || a.placement !== 'new') return false;
  }
  return w.head.members === w.base.members;
}

/**
 * persistBatch for a plain append (isPlainAppend), as one synchronous SQLite
 * transaction: the same rows, written without a round through Kysely per
 * statement. Returns the first position.
 */
export function persistPlainAppendSync(ctx: Context, tx: SyncTx, w: BatchWrite): number {
  const first = nextPositionsSync(tx, 'events', w.events.length);
  writePlainAppend(ctx, tx, w, first, (edges) => linkToFirstChildSync(tx, edges));
  return first;
}

const roomLock = prepared((db, p: { key: number }) => db.selectNoFrom((eb) => eb.fn('pg_advisory_xact_lock', [eb.val(p.key)]).as('locked')));

/**
 * persistBatch for a plain append on PostgreSQL, in two round trips instead
 * of one per statement: the room lock, the stale-head check and the stream
 * positions go out together; then every row and the COMMIT.
 */
export async function persistPlainAppendPipelined(ctx: Context, tx: PipelinedTx, w: BatchWrite): Promise<number> {
  const roomId = w.head.roomId;
  const [, extremities, first] = await Promise.all([
    tx.all(roomLock, { key: hashLockKey(roomId) }),
    tx.all(selectExtremityIds, { roomId }),
    nextPositionsVia(tx, 'events', w.events.length),
  ]);
  const expected = w.base.extremities[0]!.eventId;
  if (extremities.length !== 1 || extremities[0]!.event_id !== expected) throw new StaleHeadError(roomId);
  writePlainAppend(ctx, tx, w, first, (edges) => insertEdgesVia(tx, edges));
  return first;
}

/** Edges as [event id, prev event id]: written as each backend writes them cheapest (see edges-table.ts). */
type EdgeWriter = (edges: Array<[string, string]>) => void;

function writePlainAppend(ctx: Context, tx: StatementSink, w: BatchWrite, first: number, writeEdges: EdgeWriter): void {
  const roomId = w.head.roomId;
  replaceForwardExtremityVia(tx, roomId, w.base.extremities[0]!.eventId, w.head.extremities[0]!.eventId);
  insertEventsVia(tx, w.events.map((a) => eventRow(w, a, first + a.index)));
  writeEdges(w.events.flatMap((a) => a.prevIds.map((p): [string, string] => [a.stored.eventId, p])));
  insertRelationsVia(tx, relationRows(w.events, (i) => first + w.events[i]!.index));
  for (const a of w.events) {
    const push = w.push[a.index];
    if (push && push.length > 0) storePushActionsVia(ctx, tx, roomId, a.stored.eventId, first + a.index, push);
  }
}

function redactsOfPdu(pdu: { type: string; redacts?: unknown; content?: Record<string, unknown> }): string | null {
  if (pdu.type !== 'm.room.redaction') return null;
  const r = typeof pdu.redacts === 'string' ? pdu.redacts : pdu.content?.redacts;
  return typeof r === 'string' ? r : null;
}
