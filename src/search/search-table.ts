import { sql, type RawBuilder } from 'kysely';
import { prepared } from '../db/prepared.js';
import type { DbOrTx, Dialect } from '../db/schema.js';
import { isSqlite, type SyncTx } from '../db/sqlite-sync.js';
import type { SearchDoc } from './index-rows.js';
import { PG_TEXT_CONFIG } from './migrations.js';

/**
 * event_search (tables.ts): the full-text index, SQLite FTS5 or PostgreSQL
 * tsvector. Queries take the search as words (query-terms.ts) and match
 * events holding all of them.
 */

/** PostgreSQL rows per INSERT: one statement per chunk of a round instead of one per event (7 columns, well under the parameter limit). */
const CHUNK = 200;

export async function insertSearchDocs(trx: DbOrTx, dialect: Dialect, docs: SearchDoc[]): Promise<void> {
  if (dialect === 'sqlite') {
    // Each statement runs at once on SQLite's one connection: a row a statement costs no round trips.
    for (const d of docs) await insertSqliteDoc.execute(trx, d);
    return;
  }
  for (let i = 0; i < docs.length; i += CHUNK) {
    const chunk = docs.slice(i, i + CHUNK);
    await trx
      .insertInto('event_search')
      .values(
        chunk.map(({ value, ...rest }) => ({
          ...rest,
          vector: sql`to_tsvector(${sql.raw(`'${PG_TEXT_CONFIG}'`)}::regconfig, ${value})`,
        })),
      )
      .onConflict((oc) => oc.column('event_id').doNothing())
      .execute();
  }
}

// Built once: the indexer reads it after every burst of events.
const selectState = prepared((db, _p: Record<string, never>) => db.selectFrom('search_index_state').select(['forward_pos', 'backward_pos']).where('id', '=', 1));

export async function selectIndexState(db: DbOrTx): Promise<IndexPositions> {
  const [row] = (await selectState.execute(db, {})).rows;
  if (!row) throw new Error('search_index_state has no row');
  return { forward: Number(row.forward_pos), backward: Number(row.backward_pos) };
}

export interface IndexPositions {
  forward: number;
  backward: number;
}

// Built once: the indexer moves its positions after every burst of events.
const advanceState = prepared((db, p: { fromForward: number; fromBackward: number; toForward: number; toBackward: number }) =>
  db
    .updateTable('search_index_state')
    .set({ forward_pos: p.toForward, backward_pos: p.toBackward })
    .where('id', '=', 1)
    .where('forward_pos', '=', p.fromForward)
    .where('backward_pos', '=', p.fromBackward),
);

function advanceParams(from: IndexPositions, to: IndexPositions) {
  return { fromForward: from.forward, fromBackward: from.backward, toForward: to.forward, toBackward: to.backward };
}

/** Moves the indexer's positions from `from` to `to`; false when another indexer moved them first. */
export async function advanceIndexState(trx: DbOrTx, from: IndexPositions, to: IndexPositions): Promise<boolean> {
  const r = await advanceState.execute(trx, advanceParams(from, to));
  return Number(r.numAffectedRows) === 1;
}

// FTS5 indexes no column but the text: the row id is the event's stream position, so that
// deleteSearchDoc finds the row by key. A row already there (indexed twice) is kept. One row a
// statement, built once: cheaper on SQLite than building a multi-row INSERT for each round.
const insertSqliteDoc = prepared((db, d: SearchDoc) =>
  db
    .insertInto('event_search')
    .values({
      rowid: d.stream_pos,
      event_id: d.event_id,
      room_id: d.room_id,
      sender: d.sender,
      key: d.key,
      value: d.value,
      stream_pos: d.stream_pos,
      origin_server_ts: d.origin_server_ts,
    } as SearchDoc)
    .orIgnore(),
);

/**
 * A round of the indexer on SQLite, in one synchronous transaction: moves the positions and writes
 * the round's rows (as insertSearchDocs does); false, with nothing written, when another indexer
 * moved the positions first.
 */
export function recordRoundSync(tx: SyncTx, from: IndexPositions, to: IndexPositions, docs: SearchDoc[]): boolean {
  if (tx.run(advanceState, advanceParams(from, to)) !== 1) return false;
  for (const d of docs) tx.run(insertSqliteDoc, d);
  return true;
}

/** A redacted event's text is gone: it leaves the index. */
export async function deleteSearchDoc(trx: DbOrTx, eventId: string): Promise<void> {
  if (isSqlite(trx)) {
    // By row id (insertSearchDocs): FTS5 would read every row to match event_id.
    await sql`delete from event_search where rowid = (select stream_pos from events where event_id = ${eventId})`.execute(trx);
    return;
  }
  await trx.deleteFrom('event_search').where('event_id', '=', eventId).execute();
}

export interface SearchQuery {
  words: string[];
  /** Rooms the user is in. */
  roomIds: string[];
  /** Rooms the user has left, each with the stream position of their leaving: nothing after it can be theirs to see. */
  leftRooms: { roomId: string; upTo: number }[];
  keys: string[];
  order: 'rank' | 'recent';
  /** recent: only events below this stream position. */
  beforePos?: number;
  /** rank: matches skipped. */
  offset?: number;
  limit: number;
}

export interface SearchHit {
  event_id: string;
  room_id: string;
  stream_pos: number;
  /** Higher is closer. */
  rank: number;
}

/** FTS5 strings are quoted, with quotes doubled: every word is a literal, never query syntax. */
function fts5Query(words: string[]): string {
  return words.map((w) => `"${w.replaceAll('"', '""')}"`).join(' ');
}

function conditions(dialect: Dialect, q: SearchQuery): RawBuilder<unknown> {
  const parts: RawBuilder<unknown>[] = [
    dialect === 'sqlite' ? sql`event_search match ${fts5Query(q.words)}` : sql`vector @@ query`,
    rooms(q),
    sql`key in (${sql.join(q.keys)})`,
  ];
  if (q.beforePos !== undefined) parts.push(sql`stream_pos < ${q.beforePos}`);
  return sql.join(parts, sql` and `);
}

function rooms(q: Pick<SearchQuery, 'roomIds' | 'leftRooms'>): RawBuilder<unknown> {
  const parts: RawBuilder<unknown>[] = [];
  if (q.roomIds.length > 0) parts.push(sql`room_id in (${sql.join(q.roomIds)})`);
  for (const l of q.leftRooms) parts.push(sql`(room_id = ${l.roomId} and stream_pos <= ${l.upTo})`);
  return sql`(${sql.join(parts, sql` or `)})`;
}

const noRooms = (q: Pick<SearchQuery, 'roomIds' | 'leftRooms'>) => q.roomIds.length === 0 && q.leftRooms.length === 0;

function source(dialect: Dialect, words: string[]): RawBuilder<unknown> {
  if (dialect === 'sqlite') return sql`event_search`;
  // Each word on its own, all required: the same meaning as the FTS5 query.
  return sql`event_search, plainto_tsquery(${sql.lit(PG_TEXT_CONFIG)}::regconfig, ${words.join(' ')}) query`;
}

/** One page of matches in the requested order. */
export async function selectMatches(db: DbOrTx, dialect: Dialect, q: SearchQuery): Promise<SearchHit[]> {
  if (q.words.length === 0 || noRooms(q) || q.keys.length === 0) return [];
  const rank = dialect === 'sqlite' ? sql`-bm25(event_search)` : sql`ts_rank(vector, query)`;
  const order = q.order === 'rank' ? sql`score desc, stream_pos desc` : sql`stream_pos desc`;
  const rows = await sql<{ event_id: string; room_id: string; stream_pos: number | string; score: number | string }>`
    select event_id, room_id, stream_pos, ${rank} as score from ${source(dialect, q.words)}
    where ${conditions(dialect, q)} order by ${order} limit ${q.limit} offset ${q.offset ?? 0}`.execute(db);
  return rows.rows.map((r) => ({ event_id: r.event_id, room_id: r.room_id, stream_pos: Number(r.stream_pos), rank: Number(r.score) }));
}

/** How many events match in all (before visibility is applied: the spec's approximate `count`). */
export async function countMatches(db: DbOrTx, dialect: Dialect, q: Omit<SearchQuery, 'order' | 'limit' | 'offset' | 'beforePos'>): Promise<number> {
  if (q.words.length === 0 || noRooms(q) || q.keys.length === 0) return 0;
  const rows = await sql<{ n: number | string }>`
    select count(*) as n from ${source(dialect, q.words)} where ${conditions(dialect, { ...q, order: 'recent', limit: 0 })}`.execute(db);
  return Number(rows.rows[0]?.n ?? 0);
}
