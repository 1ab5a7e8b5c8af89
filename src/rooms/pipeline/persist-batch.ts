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
import { upsertCurrentState } from '../store/current-state-table.js';
import { insertEvents, insertEventsVia, setRedactedBy } from '../store/events-table.js';
import { replaceForwardExtremities, replaceForwardExtremityVia, selectExtremityIds, selectForwardExtremityIds } from '../store/extremities-table.js';
import { clearProfile, upsertMemberships } from '../store/memberships-table.js';
import { insertRoom } from '../store/rooms-table.js';
import { insertStateGroups, type NewStateGroup } from '../store/state-groups-table.js';
import type { EventRow, RoomMembershipRow } from '../tables.js';
import type { GroupRef, RoomHead } from '../state/room-head.js';
import type { AppliedEvent } from './apply-event.js';
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
}

export function resolveGroup(ref: GroupRef, firstPos: number): number {
  return 'id' in ref ? ref.id : firstPos + ref.batchIndex;
}

/**
 * Writes a batch of events of one room in one transaction: current state,
 * forward extremities, then the stream positions, then everything stamped
 * with them (events, state groups, memberships, redactions, push actions).
 * Returns the first position; event i has position first + i.
 */
export async function persistBatch(ctx: Context, trx: Tx, w: BatchWrite): Promise<number> {
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
  for (const [k, id] of w.head.state) {
    if (w.base.state.get(k) !== id) {
      const [t, sk] = splitStateKey(k);
      changed.push([t, sk, id]);
    }
  }
  await upsertCurrentState(trx, roomId, changed);

  const before = new Set(w.base.extremities.map((e) => e.eventId));
  const after = new Set(w.head.extremities.map((e) => e.eventId));
  await replaceForwardExtremities(
    trx,
    roomId,
    [...before].filter((id) => !after.has(id)),
    [...after].filter((id) => !before.has(id)),
  );

  const first = await nextPositions(trx, 'events', w.events.length);

  const rows: EventRow[] = [];
  const groups: NewStateGroup[] = [];
  const members = new Map<string, RoomMembershipRow>();
  for (const a of w.events) {
    const pos = first + a.index;
    const group = resolveGroup(a.group, first);
    rows.push(eventRow(w, a, first));
    if (a.newGroup) {
      groups.push({
        id: group,
        roomId,
        prevGroup: a.newGroup.prev === null ? null : resolveGroup(a.newGroup.prev, first),
        deltaDepth: a.newGroup.deltaDepth,
        entries: a.newGroup.entries,
      });
    }
    if (a.member) {
      members.set(a.member.userId, {
        room_id: roomId,
        user_id: a.member.userId,
        membership: a.member.membership,
        event_id: a.stored.eventId,
        stream_pos: pos,
        sender: a.member.sender,
        display_name: a.member.displayName,
        avatar_url: a.member.avatarUrl,
        forgotten: 0,
      });
    }
  }
  await insertEvents(trx, rows);
  await insertStateGroups(trx, groups);
  await upsertMemberships(trx, [...members.values()]);
  for (const a of w.events) {
    if (a.redactionTarget !== undefined) await setRedactedBy(trx, a.redactionTarget, a.stored.eventId);
  }
  for (const c of w.clearedProfiles) await clearProfile(trx, roomId, c.userId, c.eventId);
  for (const a of w.events) {
    const push = w.push[a.index];
    if (push && push.length > 0) await storePushActions(ctx, trx, roomId, a.stored.eventId, first + a.index, push);
  }
  return first;
}

function eventRow(w: BatchWrite, a: AppliedEvent, first: number): EventRow {
  const pdu = a.stored.pdu;
  return {
    event_id: a.stored.eventId,
    room_id: w.head.roomId,
    stream_pos: first + a.index,
    depth: a.depth,
    type: pdu.type,
    state_key: typeof pdu.state_key === 'string' ? pdu.state_key : null,
    sender: pdu.sender,
    origin_server_ts: pdu.origin_server_ts,
    json: a.json,
    state_group: resolveGroup(a.group, first),
    replaces_state: a.stored.replacesState,
    membership: a.member?.membership ?? null,
    redacts: redactsOfPdu(pdu),
    redacted_by: null,
    outlier: 0,
    rejected_reason: null,
    soft_failed: 0,
    sender_device: a.stored.senderDevice,
    txn_id: a.stored.txnId,
  };
}

/**
 * Whether the batch only appends to a linear room: no state, membership or
 * redaction changes, no new state group, one forward extremity replaced by
 * another. The common send, which persistPlainAppendSync writes.
 */
export function isPlainAppend(w: BatchWrite): boolean {
  if (w.newRoom || w.clearedProfiles.length > 0 || w.head.state !== w.base.state) return false;
  if (w.base.extremities.length !== 1 || w.head.extremities.length !== 1) return false;
  for (const a of w.events) {
    if (a.newGroup || a.member || a.redactionTarget !== undefined) return false;
  }
  return true;
}

/**
 * persistBatch for a plain append (isPlainAppend), as one synchronous SQLite
 * transaction: the same rows, written without a round through Kysely per
 * statement. Returns the first position.
 */
export function persistPlainAppendSync(ctx: Context, tx: SyncTx, w: BatchWrite): number {
  const first = nextPositionsSync(tx, 'events', w.events.length);
  writePlainAppend(ctx, tx, w, first);
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
  writePlainAppend(ctx, tx, w, first);
  return first;
}

function writePlainAppend(ctx: Context, tx: StatementSink, w: BatchWrite, first: number): void {
  const roomId = w.head.roomId;
  replaceForwardExtremityVia(tx, roomId, w.base.extremities[0]!.eventId, w.head.extremities[0]!.eventId);
  insertEventsVia(tx, w.events.map((a) => eventRow(w, a, first)));
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
