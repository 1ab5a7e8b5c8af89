/**
 * push_member_spans: the stream positions during which a local user was
 * joined to a room, so an event's push outcome (push-outcomes-store.ts)
 * applies to its members without a row per member. A span covers the events
 * after `joined_pos` up to and including `left_pos` (open while null).
 * Written in the transaction of the event that opens or closes it; spans of
 * one user may overlap (two nodes opening one at once), which only means
 * "joined" twice.
 */
import { prepared } from '../db/prepared.js';
import type { DbOrTx } from '../db/schema.js';
import type { StatementSink } from '../db/pg-pipeline.js';

const openSpan = prepared((db, p: { userId: string; roomId: string; joinedPos: number }) =>
  db
    .insertInto('push_member_spans')
    .values({ user_id: p.userId, room_id: p.roomId, joined_pos: p.joinedPos, left_pos: null })
    .onConflict((oc) => oc.columns(['user_id', 'room_id', 'joined_pos']).doNothing()),
);

const closeSpans = prepared((db, p: { userId: string; roomId: string; leftPos: number }) =>
  db
    .updateTable('push_member_spans')
    .set({ left_pos: p.leftPos })
    .where('user_id', '=', p.userId)
    .where('room_id', '=', p.roomId)
    .where('left_pos', 'is', null),
);

/** The user is joined for the events after `joinedPos`. */
export function openSpanVia(tx: StatementSink, userId: string, roomId: string, joinedPos: number): void {
  tx.run(openSpan, { userId, roomId, joinedPos });
}

/** The user's membership ended with the event at `leftPos` (they were joined before it). */
export function closeSpansVia(tx: StatementSink, userId: string, roomId: string, leftPos: number): void {
  tx.run(closeSpans, { userId, roomId, leftPos });
}

/** The users with an open span in the room. */
export async function selectOpenMembers(db: DbOrTx, roomId: string): Promise<string[]> {
  const rows = await db.selectFrom('push_member_spans').select('user_id').where('room_id', '=', roomId).where('left_pos', 'is', null).execute();
  return rows.map((r) => r.user_id);
}

/** The rooms the user has been joined to since spans are kept. */
export async function selectSpanRooms(db: DbOrTx, userId: string): Promise<string[]> {
  const rows = await db.selectFrom('push_member_spans').select('room_id').distinct().where('user_id', '=', userId).execute();
  return rows.map((r) => r.room_id);
}

/** The rooms the user is joined to now, as far as spans tell. */
export async function selectOpenSpanRooms(db: DbOrTx, userId: string): Promise<string[]> {
  const rows = await db.selectFrom('push_member_spans').select('room_id').distinct().where('user_id', '=', userId).where('left_pos', 'is', null).execute();
  return rows.map((r) => r.room_id);
}
