import { prepared } from '../../db/prepared.js';
import type { DbOrTx } from '../../db/schema.js';

/** A room joined with partial state, as the head carries it. */
export interface PartialState {
  joinEventId: string;
  /** The servers in the room when it was joined (`servers_in_room`). */
  servers: readonly string[];
}

function parseServers(json: string): string[] {
  try {
    const v: unknown = JSON.parse(json);
    return Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : [];
  } catch {
    return [];
  }
}

export async function insertPartialStateRoom(trx: DbOrTx, roomId: string, p: PartialState): Promise<void> {
  await trx
    .insertInto('partial_state_rooms')
    .values({ room_id: roomId, join_event_id: p.joinEventId, servers: JSON.stringify(p.servers) })
    .onConflict((oc) => oc.column('room_id').doNothing())
    .execute();
}

export async function selectPartialStateRoom(db: DbOrTx, roomId: string): Promise<PartialState | undefined> {
  const row = await db.selectFrom('partial_state_rooms').selectAll().where('room_id', '=', roomId).executeTakeFirst();
  return row ? { joinEventId: row.join_event_id, servers: parseServers(row.servers) } : undefined;
}

export async function selectPartialStateRoomIds(db: DbOrTx): Promise<string[]> {
  return (await db.selectFrom('partial_state_rooms').select('room_id').execute()).map((r) => r.room_id);
}

/** The room's full state is known: it and its events lose their partial mark. */
export async function deletePartialStateRoom(trx: DbOrTx, roomId: string): Promise<void> {
  await trx.deleteFrom('partial_state_events').where('room_id', '=', roomId).execute();
  await trx.deleteFrom('partial_state_rooms').where('room_id', '=', roomId).execute();
}

/** The room's state was filled in at events stream position `pos` (a later fill replaces it). */
export async function insertPartialStateFill(trx: DbOrTx, roomId: string, pos: number): Promise<void> {
  await trx
    .insertInto('partial_state_fills')
    .values({ room_id: roomId, stream_pos: pos })
    .onConflict((oc) => oc.column('room_id').doUpdateSet({ stream_pos: pos }))
    .execute();
}

// Read by every incremental /sync: prepared.
const selectFillsIn = prepared((db, p: { after: number; upTo: number }) =>
  db.selectFrom('partial_state_fills').select(['room_id', 'stream_pos']).where('stream_pos', '>', p.after).where('stream_pos', '<=', p.upTo),
);

/** Of `roomIds`, those whose state was filled in at a position in (after, upTo], with that position. */
export async function selectFillPositions(db: DbOrTx, roomIds: ReadonlySet<string>, after: number, upTo: number): Promise<Map<string, number>> {
  const { rows } = await selectFillsIn.execute(db, { after, upTo });
  return new Map(rows.filter((r) => roomIds.has(r.room_id)).map((r) => [r.room_id, Number(r.stream_pos)]));
}

/**
 * The fills at positions in (after, upTo], in stream order, each with the users whose membership
 * it changed (its current-state deltas carry its position): the fill read back as the
 * announcement its writer published.
 */
export async function selectFillsBetween(db: DbOrTx, after: number, upTo: number): Promise<{ roomId: string; pos: number; userIds: string[] }[]> {
  const fills = await db.selectFrom('partial_state_fills').select(['room_id', 'stream_pos']).where('stream_pos', '>', after).where('stream_pos', '<=', upTo).orderBy('stream_pos').execute();
  if (fills.length === 0) return [];
  const out = fills.map((f) => ({ roomId: f.room_id, pos: Number(f.stream_pos), userIds: [] as string[] }));
  const byPos = new Map(out.map((f) => [f.pos, f]));
  const members = await db
    .selectFrom('current_state_deltas')
    .select(['stream_pos', 'room_id', 'state_key'])
    .where('stream_pos', 'in', [...byPos.keys()])
    .where('type', '=', 'm.room.member')
    .execute();
  for (const m of members) {
    const f = byPos.get(Number(m.stream_pos));
    if (f && f.roomId === m.room_id) f.userIds.push(m.state_key);
  }
  return out;
}

export async function insertPartialStateEvents(trx: DbOrTx, roomId: string, eventIds: string[]): Promise<void> {
  if (eventIds.length === 0) return;
  await trx
    .insertInto('partial_state_events')
    .values(eventIds.map((event_id) => ({ event_id, room_id: roomId })))
    .onConflict((oc) => oc.column('event_id').doNothing())
    .execute();
}

export async function selectPartialStateEventIds(db: DbOrTx, roomId: string): Promise<string[]> {
  return (await db.selectFrom('partial_state_events').select('event_id').where('room_id', '=', roomId).execute()).map((r) => r.event_id);
}
