import { prepared } from '../../db/prepared.js';
import type { StatementSink } from '../../db/pg-pipeline.js';
import type { DbOrTx } from '../../db/schema.js';

/** prev_events edges and backward extremities: the room graph beyond the events themselves. */

const insertEdge = prepared((db, p: { eventId: string; prevId: string }) =>
  db.insertInto('event_edges').values({ event_id: p.eventId, prev_event_id: p.prevId }).onConflict((oc) => oc.doNothing()),
);

/** The edges of a plain append, written to a statement sink (the send fast paths). */
export function insertEdgesVia(tx: StatementSink, edges: Array<[string, string]>): void {
  for (const [eventId, prevId] of edges) tx.run(insertEdge, { eventId, prevId });
}

export async function insertEdges(trx: DbOrTx, edges: Array<[string, string]>): Promise<void> {
  for (let i = 0; i < edges.length; i += 400) {
    await trx
      .insertInto('event_edges')
      .values(edges.slice(i, i + 400).map(([eventId, prevId]) => ({ event_id: eventId, prev_event_id: prevId })))
      .onConflict((oc) => oc.doNothing())
      .execute();
  }
}

/** Of `ids`, those some stored event names as a prev event (they have children already). */
export async function selectIdsWithChildren(db: DbOrTx, ids: string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const rows = await db.selectFrom('event_edges').select('prev_event_id').distinct().where('prev_event_id', 'in', ids).execute();
  return new Set(rows.map((r) => r.prev_event_id));
}

/** Of `ids`, those with a child that stands: stored, neither rejected nor soft-failed, and not among `excluded`. */
export async function selectIdsWithLiveChildren(db: DbOrTx, ids: string[], excluded: string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  let q = db
    .selectFrom('event_edges')
    .innerJoin('events', 'events.event_id', 'event_edges.event_id')
    .select('event_edges.prev_event_id')
    .distinct()
    .where('event_edges.prev_event_id', 'in', ids)
    .where('events.rejected_reason', 'is', null)
    .where('events.soft_failed', '=', 0);
  if (excluded.length > 0) q = q.where('event_edges.event_id', 'not in', excluded);
  return new Set((await q.execute()).map((r) => r.prev_event_id));
}

export async function updateBackwardExtremities(trx: DbOrTx, roomId: string, added: string[], removed: string[]): Promise<void> {
  if (removed.length > 0) {
    await trx.deleteFrom('backward_extremities').where('room_id', '=', roomId).where('event_id', 'in', removed).execute();
  }
  if (added.length > 0) {
    await trx
      .insertInto('backward_extremities')
      .values(added.map((eventId) => ({ room_id: roomId, event_id: eventId })))
      .onConflict((oc) => oc.doNothing())
      .execute();
  }
}

export async function selectBackwardExtremities(db: DbOrTx, roomId: string): Promise<string[]> {
  const rows = await db.selectFrom('backward_extremities').select('event_id').where('room_id', '=', roomId).execute();
  return rows.map((r) => r.event_id);
}
