import { sql } from 'kysely';
import type { StatementSink } from '../db/pg-pipeline.js';
import { prepared } from '../db/prepared.js';
import type { Db, DbOrTx } from '../db/schema.js';
import { placeholders, sqliteSync, type SyncTx } from '../db/sqlite-sync.js';
import type { EventRelationRow } from './tables.js';

/** event_relations: the children of each parent event (see tables.ts). */

/** A place in a room's topological order: depth, then stream position (rooms/tokens.ts TopoPoint). */
export interface Point {
  depth: number;
  stream: number;
}

const insertOne = prepared((db, p: EventRelationRow) =>
  db
    .insertInto('event_relations')
    .values({
      event_id: p.event_id,
      relates_to: p.relates_to,
      room_id: p.room_id,
      rel_type: p.rel_type,
      type: p.type,
      sender: p.sender,
      aggregation_key: p.aggregation_key,
      depth: p.depth,
      stream_pos: p.stream_pos,
      origin_server_ts: p.origin_server_ts,
    })
    .onConflict((oc) => oc.column('event_id').doNothing()),
);

export async function insertRelations(trx: DbOrTx, rows: EventRelationRow[]): Promise<void> {
  for (const row of rows) await insertOne.execute(trx, row);
}

/** As insertRelations, written to a statement sink (the send fast paths). */
export function insertRelationsVia(tx: StatementSink, rows: EventRelationRow[]): void {
  for (const row of rows) tx.run(insertOne, row);
}

/** A redacted child loses its `m.relates_to`, so it leaves the index. */
export async function deleteRelation(trx: DbOrTx, eventId: string): Promise<void> {
  await trx.deleteFrom('event_relations').where('event_id', '=', eventId).execute();
}

export type RelationRow = EventRelationRow;

/** Children of `parents` with one of `relTypes`, oldest first (topologically); callers check the rooms. */
export async function selectChildren(db: DbOrTx, parents: string[], relTypes: string[]): Promise<RelationRow[]> {
  if (parents.length === 0 || relTypes.length === 0) return [];
  const fast = db.isTransaction ? undefined : sqliteSync(db as Db);
  if (fast) return fast.read((tx) => childrenSqlite(tx, parents, relTypes));
  const out: RelationRow[] = [];
  for (let i = 0; i < parents.length; i += CHILDREN_CHUNK) {
    const rows = await db
      .selectFrom('event_relations')
      .selectAll()
      .where('relates_to', 'in', parents.slice(i, i + CHILDREN_CHUNK))
      .where('rel_type', 'in', relTypes)
      .orderBy('depth')
      .orderBy('stream_pos')
      .execute();
    out.push(...rows);
  }
  return out.map(numeric);
}

const CHILDREN_CHUNK = 1000;

/**
 * selectChildren on SQLite, as one statement per chunk whose text depends
 * only on the chunk's length (so the statement cache holds it), rows read as
 * arrays: a /sync asks for the children of every event of its timelines, a
 * thousand parents for a hundred rooms, most often finding none, and Kysely
 * would build and compile that query, a value node per parent, every time.
 */
function childrenSqlite(tx: SyncTx, parents: string[], relTypes: string[]): RelationRow[] {
  const out: RelationRow[] = [];
  const types = placeholders(relTypes.length);
  for (let i = 0; i < parents.length; i += CHILDREN_CHUNK) {
    const chunk = parents.slice(i, i + CHILDREN_CHUNK);
    const text = `select event_id, relates_to, room_id, rel_type, type, sender, aggregation_key, depth, stream_pos, origin_server_ts
      from event_relations where relates_to in (${placeholders(chunk.length)}) and rel_type in (${types})
      order by depth, stream_pos`;
    for (const r of tx.rawRows(text, [...chunk, ...relTypes])) {
      out.push({
        event_id: r[0] as string,
        relates_to: r[1] as string,
        room_id: r[2] as string,
        rel_type: r[3] as string,
        type: r[4] as string,
        sender: r[5] as string,
        aggregation_key: r[6] as string | null,
        depth: Number(r[7]),
        stream_pos: Number(r[8]),
        origin_server_ts: Number(r[9]),
      });
    }
  }
  // As the Kysely path: a parent's children all come from its own chunk, in order.
  return out;
}

/** Ids of the children of `parents` in the room, of any relation type (one level of /relations' recursion). */
export async function selectChildIds(db: DbOrTx, roomId: string, parents: string[]): Promise<string[]> {
  if (parents.length === 0) return [];
  const rows = await db
    .selectFrom('event_relations')
    .select('event_id')
    .where('relates_to', 'in', parents)
    .where('room_id', '=', roomId)
    .execute();
  return rows.map((r) => r.event_id);
}

export interface RelationPageQuery {
  roomId: string;
  parents: string[];
  relType?: string;
  type?: string;
  /** Children at or before this point. */
  upTo?: Point;
  /** Children strictly after this point. */
  after?: Point;
  order: 'asc' | 'desc';
  limit: number;
}

/** One page of children in topological order. */
export async function selectRelationPage(db: DbOrTx, q: RelationPageQuery): Promise<RelationRow[]> {
  if (q.parents.length === 0 || q.limit <= 0) return [];
  let query = db.selectFrom('event_relations').selectAll().where('relates_to', 'in', q.parents).where('room_id', '=', q.roomId);
  if (q.relType !== undefined) query = query.where('rel_type', '=', q.relType);
  if (q.type !== undefined) query = query.where('type', '=', q.type);
  const upTo = q.upTo;
  if (upTo) query = query.where((eb) => eb.or([eb('depth', '<', upTo.depth), eb.and([eb('depth', '=', upTo.depth), eb('stream_pos', '<=', upTo.stream)])]));
  const after = q.after;
  if (after) query = query.where((eb) => eb.or([eb('depth', '>', after.depth), eb.and([eb('depth', '=', after.depth), eb('stream_pos', '>', after.stream)])]));
  const rows = await query.orderBy('depth', q.order).orderBy('stream_pos', q.order).limit(q.limit).execute();
  return rows.map(numeric);
}

/** Thread roots of a room by their latest reply's stream position, newest first, below `beforePos` when given. */
export async function selectThreadRoots(db: DbOrTx, roomId: string, beforePos: number | null, limit: number): Promise<{ root: string; latest: number }[]> {
  let query = db
    .selectFrom('event_relations')
    .select((eb) => ['relates_to', eb.fn.max('stream_pos').as('latest')])
    .where('room_id', '=', roomId)
    .where('rel_type', '=', 'm.thread')
    .groupBy('relates_to');
  if (beforePos !== null) query = query.having((eb) => eb.fn.max('stream_pos'), '<', beforePos);
  const rows = await query.orderBy(sql`max(stream_pos)`, 'desc').orderBy('relates_to', 'desc').limit(limit).execute();
  return rows.map((r) => ({ root: r.relates_to, latest: Number(r.latest) }));
}

export interface ThreadWindowRow {
  roomId: string;
  root: string;
  /** Stream positions of the newest and oldest reply in the window. */
  latest: number;
  oldest: number;
  /** Replies in the window. */
  count: number;
}

/**
 * Threads of `roomIds` with replies in (after, upTo], by their newest reply
 * there, newest first; only those whose newest reply there is below
 * `before` when given (the next page).
 */
export async function selectThreadWindow(
  db: DbOrTx,
  roomIds: string[],
  after: number,
  upTo: number,
  before: number | null,
  limit: number,
): Promise<ThreadWindowRow[]> {
  const out: ThreadWindowRow[] = [];
  for (let i = 0; i < roomIds.length; i += 1000) {
    let query = db
      .selectFrom('event_relations')
      .select((eb) => ['room_id', 'relates_to', eb.fn.max('stream_pos').as('latest'), eb.fn.min('stream_pos').as('oldest'), eb.fn.countAll().as('n')])
      .where('room_id', 'in', roomIds.slice(i, i + 1000))
      .where('rel_type', '=', 'm.thread')
      .where('stream_pos', '>', after)
      .where('stream_pos', '<=', upTo)
      .groupBy(['room_id', 'relates_to']);
    if (before !== null) query = query.having((eb) => eb.fn.max('stream_pos'), '<', before);
    const rows = await query.orderBy(sql`max(stream_pos)`, 'desc').limit(limit).execute();
    for (const r of rows) out.push({ roomId: r.room_id, root: r.relates_to, latest: Number(r.latest), oldest: Number(r.oldest), count: Number(r.n) });
  }
  // Stream positions are unique, so the order is total.
  return out.sort((a, b) => b.latest - a.latest).slice(0, limit);
}

/** The thread replies of `roomIds` at these stream positions. */
export async function selectThreadRepliesAt(db: DbOrTx, roomIds: string[], positions: number[]): Promise<RelationRow[]> {
  if (positions.length === 0) return [];
  const rows = await db
    .selectFrom('event_relations')
    .selectAll()
    .where('room_id', 'in', [...new Set(roomIds)])
    .where('rel_type', '=', 'm.thread')
    .where('stream_pos', 'in', positions)
    .execute();
  return rows.map(numeric);
}

/** Of `roots`, those with a thread reply sent by `userId`. */
export async function selectRootsRepliedBy(db: DbOrTx, roomId: string, roots: string[], userId: string): Promise<Set<string>> {
  if (roots.length === 0) return new Set();
  const rows = await db
    .selectFrom('event_relations')
    .select('relates_to')
    .distinct()
    .where('relates_to', 'in', roots)
    .where('room_id', '=', roomId)
    .where('rel_type', '=', 'm.thread')
    .where('sender', '=', userId)
    .execute();
  return new Set(rows.map((r) => r.relates_to));
}

/** Whether `sender` already annotated `parent` with an event of `type` and this key. */
export async function hasAnnotation(db: DbOrTx, parent: string, type: string, key: string, sender: string): Promise<boolean> {
  const row = await db
    .selectFrom('event_relations')
    .select('event_id')
    .where('relates_to', '=', parent)
    .where('rel_type', '=', 'm.annotation')
    .where('type', '=', type)
    .where('aggregation_key', '=', key)
    .where('sender', '=', sender)
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}

function numeric(r: RelationRow): RelationRow {
  return { ...r, depth: Number(r.depth), stream_pos: Number(r.stream_pos), origin_server_ts: Number(r.origin_server_ts) };
}
