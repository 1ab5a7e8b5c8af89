import { prepared } from '../../db/prepared.js';
import type { DbOrTx } from '../../db/schema.js';
import type { StatementSink } from '../../db/pg-pipeline.js';

const replaceOne = prepared((db, p: { roomId: string; removed: string; added: string }) =>
  db.updateTable('forward_extremities').set({ event_id: p.added }).where('room_id', '=', p.roomId).where('event_id', '=', p.removed),
);

/** One extremity replaced by another (a linear room), written to a statement sink (the send fast paths). */
export function replaceForwardExtremityVia(tx: StatementSink, roomId: string, removed: string, added: string): void {
  tx.run(replaceOne, { roomId, removed, added });
}

export async function replaceForwardExtremities(trx: DbOrTx, roomId: string, removed: string[], added: string[]): Promise<void> {
  // The common case, a linear room: one extremity replaces another in one statement.
  if (removed.length === 1 && added.length === 1) {
    await replaceOne.execute(trx, { roomId, removed: removed[0]!, added: added[0]! });
    return;
  }
  if (removed.length > 0) {
    await trx.deleteFrom('forward_extremities').where('room_id', '=', roomId).where('event_id', 'in', removed).execute();
  }
  if (added.length > 0) {
    await trx
      .insertInto('forward_extremities')
      .values(added.map((eventId) => ({ room_id: roomId, event_id: eventId })))
      .onConflict((oc) => oc.doNothing())
      .execute();
  }
}

/** The room's forward extremities with the depth and state group of each. */
export async function selectForwardExtremities(
  db: DbOrTx,
  roomId: string,
): Promise<{ event_id: string; depth: number; state_group: number | null; stream_pos: number | null }[]> {
  const rows = await db
    .selectFrom('forward_extremities as f')
    .innerJoin('events as e', 'e.event_id', 'f.event_id')
    .select(['f.event_id', 'e.depth', 'e.state_group', 'e.stream_pos'])
    .where('f.room_id', '=', roomId)
    .execute();
  return rows.map((r) => ({
    event_id: r.event_id,
    depth: Number(r.depth),
    state_group: r.state_group === null ? null : Number(r.state_group),
    stream_pos: r.stream_pos === null ? null : Number(r.stream_pos),
  }));
}

export const selectExtremityIds = prepared((db, p: { roomId: string }) =>
  db.selectFrom('forward_extremities').select('event_id').where('room_id', '=', p.roomId),
);

/** Runs in every PostgreSQL write to a room (the stale-head check): prepared. */
export async function selectForwardExtremityIds(db: DbOrTx, roomId: string): Promise<string[]> {
  const { rows } = await selectExtremityIds.execute(db, { roomId });
  return rows.map((r) => r.event_id);
}
