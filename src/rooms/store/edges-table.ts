import { prepared } from '../../db/prepared.js';
import type { StatementSink } from '../../db/pg-pipeline.js';
import type { DbOrTx } from '../../db/schema.js';
import type { SyncTx } from '../../db/sqlite-sync.js';

/**
 * prev_events edges and backward extremities: the room graph beyond the events themselves.
 *
 * The children of an event are the event_edges rows naming it and, on SQLite, the event's own
 * `first_child`. An edge row is keyed by the prev event's id, a hash, so it lands on a random page;
 * the SQLite send path instead records a message in its prev event's row, which is the room's newest
 * event and so usually on the page the message's own row goes to (linkToFirstChildSync). On
 * PostgreSQL an update writes a whole new row version, so every path there writes edge rows.
 * Readers take both.
 */

const insertEdge = prepared((db, p: { eventId: string; prevId: string }) =>
  db.insertInto('event_edges').values({ event_id: p.eventId, prev_event_id: p.prevId }).onConflict((oc) => oc.doNothing()),
);

/** The edges of a plain append, written to a statement sink (the send fast paths). */
export function insertEdgesVia(tx: StatementSink, edges: Array<[string, string]>): void {
  for (const [eventId, prevId] of edges) tx.run(insertEdge, { eventId, prevId });
}

const setFirstChild = prepared((db, p: { eventId: string; prevId: string }) =>
  db.updateTable('events').set({ first_child: p.eventId }).where('event_id', '=', p.prevId).where('first_child', 'is', null),
);

/**
 * The edges of a plain append on SQLite: each prev event without a first child takes the new event
 * as its first; a prev event that has one (it was a fork point) gets an edge row.
 */
export function linkToFirstChildSync(tx: SyncTx, edges: Array<[string, string]>): void {
  for (const [eventId, prevId] of edges) {
    if (tx.run(setFirstChild, { eventId, prevId }) === 0) tx.run(insertEdge, { eventId, prevId });
  }
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
  const firsts = await db.selectFrom('events').select('event_id').where('event_id', 'in', ids).where('first_child', 'is not', null).execute();
  return new Set([...rows.map((r) => r.prev_event_id), ...firsts.map((r) => r.event_id)]);
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
  let firsts = db
    .selectFrom('events as p')
    .innerJoin('events as c', 'c.event_id', 'p.first_child')
    .select('p.event_id')
    .where('p.event_id', 'in', ids)
    .where('c.rejected_reason', 'is', null)
    .where('c.soft_failed', '=', 0);
  if (excluded.length > 0) firsts = firsts.where('c.event_id', 'not in', excluded);
  return new Set([...(await q.execute()).map((r) => r.prev_event_id), ...(await firsts.execute()).map((r) => r.event_id)]);
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
