import { sql, type RawBuilder } from 'kysely';
import type { Db, DbOrTx } from '../../db/schema.js';
import { placeholders, sqliteSync, type SqliteSync } from '../../db/sqlite-sync.js';
import type { RoomMembershipRow } from '../tables.js';
import { chainJoin } from './state-groups-table.js';

/**
 * Reads for /sync that cover many rooms in one statement. They are written
 * as SQL templates rather than with the query builder: building and
 * compiling a query costs several times what SQLite takes to run these, and
 * /sync runs them on every wake-up.
 *
 * Per-room "latest N" reads are a UNION ALL of one LIMITed subquery per room:
 * each walks the (room_id, stream_pos) index backwards and stops after N
 * rows, however long the room's history (a window function over the rooms
 * would rank every event of every room before keeping N).
 *
 * On SQLite the unfiltered ones skip Kysely altogether: their text depends
 * only on the number of rooms (kept per count), and their rows come as
 * arrays. Building a template of a few hundred fragments and compiling it
 * cost more than SQLite's own work on them, on every batch of every sync.
 */

/** The synchronous SQLite path for `db`, when it is the root SQLite database (not a transaction). */
function sqliteRoot(db: DbOrTx): SqliteSync | undefined {
  return db.isTransaction ? undefined : sqliteSync(db as Db);
}

/**
 * A statement's text per number of rooms, kept for the few counts in use (a
 * sync's batches are mostly full, and one is the rest): a text for hundreds
 * of rooms is tens of KB, too much to keep for every count.
 */
function textsByCount(make: (n: number) => string): (n: number) => string {
  const texts = new Map<number, string>();
  return (n) => {
    let text = texts.get(n);
    if (text === undefined) {
      if (texts.size >= 8) texts.clear();
      texts.set(n, (text = make(n)));
    }
    return text;
  };
}

/** `one(i)` for each of `n` rooms as a UNION ALL (each term in parentheses for its ORDER BY and LIMIT). */
function unionOf(n: number, one: (i: number) => string): string {
  if (n === 1) return one(0);
  const terms: string[] = [];
  for (let i = 0; i < n; i++) terms.push(`select * from (${one(i)}) as t${i}`);
  return terms.join(' union all ');
}

const latestEventsText = textsByCount((n) =>
  unionOf(
    n,
    () => `select event_id, room_id, stream_pos, redacted_by from events
        where room_id = ? and stream_pos > ? and stream_pos <= ?
          and rejected_reason is null and soft_failed = 0
        order by stream_pos desc limit ?`,
  ),
);

const stateGroupsAtText = textsByCount((n) =>
  unionOf(n, (i) => `select ${i} as k, state_group from events where room_id = ? and stream_pos <= ? and state_group is not null order by stream_pos desc limit 1`),
);

/** SQLite caps a compound SELECT at 500 terms; stay well below, and below the bound-parameter limits. */
const ROOMS_PER_STATEMENT = 200;

function chunks<T>(list: readonly T[], size = ROOMS_PER_STATEMENT): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
}

/** Matrix filter globs (`*` wildcard) as SQL LIKE patterns (the same as the /messages filter). */
function likePattern(glob: string): string {
  return glob.replace(/[\\%_]/g, (c) => `\\${c}`).replace(/\*/g, '%');
}

export interface EventTypeFilter {
  types?: string[];
  notTypes?: string[];
  senders?: string[];
  notSenders?: string[];
}

/** The filter as SQL conditions, or null when it matches nothing. */
function filterConditions(f: EventTypeFilter): RawBuilder<unknown>[] | null {
  const out: RawBuilder<unknown>[] = [];
  if (f.types !== undefined) {
    if (f.types.length === 0) return null;
    const alts = f.types.map((t) => (t.includes('*') ? sql`type like ${likePattern(t)} escape '\\'` : sql`type = ${t}`));
    out.push(sql`(${sql.join(alts, sql` or `)})`);
  }
  for (const t of f.notTypes ?? []) out.push(t.includes('*') ? sql`type not like ${likePattern(t)} escape '\\'` : sql`type != ${t}`);
  if (f.senders !== undefined) {
    if (f.senders.length === 0) return null;
    out.push(sql`sender in (${sql.join(f.senders)})`);
  }
  if (f.notSenders !== undefined && f.notSenders.length > 0) out.push(sql`sender not in (${sql.join(f.notSenders)})`);
  return out;
}

export interface RoomRange {
  roomId: string;
  /** Exclusive lower bound. */
  after: number;
  /** Inclusive upper bound. */
  upTo: number;
  limit: number;
}

/** What selectLatestEvents reads of an event: the caller takes the event itself from the event cache. */
export interface LatestEventRow {
  event_id: string;
  room_id: string;
  stream_pos: number;
  redacted_by: string | null;
}

/**
 * The newest `limit` servable events of each room in its range, filtered
 * like selectEventRange; newest first within a room. Only ids and the
 * mutable column are read: the events themselves are usually cached, and
 * reading their JSON costs more than the rest of the query.
 */
export async function selectLatestEvents(db: DbOrTx, ranges: RoomRange[], filter: EventTypeFilter): Promise<LatestEventRow[]> {
  const extra = filterConditions(filter);
  if (extra === null) return [];
  const parts = chunks(ranges.filter((r) => r.limit > 0 && r.upTo > r.after));
  const fast = extra.length === 0 ? sqliteRoot(db) : undefined;
  if (fast) {
    return fast.read((tx) => {
      const out: LatestEventRow[] = [];
      for (const part of parts) {
        const params: unknown[] = [];
        for (const r of part) params.push(r.roomId, r.after, r.upTo, r.limit);
        for (const row of tx.rawRows(latestEventsText(part.length), params)) {
          out.push({ event_id: row[0] as string, room_id: row[1] as string, stream_pos: Number(row[2]), redacted_by: row[3] as string | null });
        }
      }
      return out;
    });
  }
  const cond = extra.length > 0 ? sql` and ${sql.join(extra, sql` and `)}` : sql``;
  const out: LatestEventRow[] = [];
  for (const part of parts) {
    const branches = part.map((r, i) => {
      const one = sql`select event_id, room_id, stream_pos, redacted_by from events
        where room_id = ${r.roomId} and stream_pos > ${r.after} and stream_pos <= ${r.upTo}
          and rejected_reason is null and soft_failed = 0${cond}
        order by stream_pos desc limit ${r.limit}`;
      return part.length === 1 ? one : sql`select * from (${one}) as ${sql.raw(`t${i}`)}`;
    });
    const res = await sql<LatestEventRow>`${sql.join(branches, sql` union all `)}`.execute(db);
    // In place: the rows are this read's own, and a copy of each was an object per event per sync.
    for (const r of res.rows) {
      r.stream_pos = Number(r.stream_pos);
      out.push(r);
    }
  }
  return out;
}

/** State group of the last event at or before each position, per item (null when there is none). */
export async function selectStateGroupsAt(db: DbOrTx, items: { roomId: string; pos: number }[]): Promise<(number | null)[]> {
  const out: (number | null)[] = items.map(() => null);
  const fast = sqliteRoot(db);
  if (fast) {
    await fast.read((tx) => {
      for (let start = 0; start < items.length; start += ROOMS_PER_STATEMENT) {
        const part = items.slice(start, start + ROOMS_PER_STATEMENT);
        const params: unknown[] = [];
        for (const it of part) params.push(it.roomId, it.pos);
        for (const row of tx.rawRows(stateGroupsAtText(part.length), params)) out[start + Number(row[0])] = Number(row[1]);
      }
    });
  } else {
    for (let start = 0; start < items.length; start += ROOMS_PER_STATEMENT) {
      const part = items.slice(start, start + ROOMS_PER_STATEMENT);
      const branches = part.map((it, i) => {
        const one = sql`select ${sql.lit(start + i)} as k, state_group from events
          where room_id = ${it.roomId} and stream_pos <= ${it.pos} and state_group is not null
          order by stream_pos desc limit 1`;
        return part.length === 1 ? one : sql`select * from (${one}) as ${sql.raw(`t${i}`)}`;
      });
      const res = await sql<{ k: number; state_group: number }>`${sql.join(branches, sql` union all `)}`.execute(db);
      for (const r of res.rows) out[Number(r.k)] = Number(r.state_group);
    }
  }
  // No event of the room at or before `pos` with a state: either the room did not exist yet (its
  // first event, the create, has no state before it), or it was joined through another server and
  // its earlier history is not in the stream: the state then is the one before its first event after `pos`.
  for (let i = 0; i < items.length; i++) {
    if (out[i] !== null) continue;
    const it = items[i]!;
    const res = await sql<{ state_group_before: number | null }>`select state_group_before from events
      where room_id = ${it.roomId} and stream_pos > ${it.pos} order by stream_pos limit 1`.execute(db);
    const before = res.rows[0]?.state_group_before;
    if (before !== null && before !== undefined) out[i] = Number(before);
  }
  return out;
}

/** Rooms among `roomIds` with any event whose stream position is in (after, upTo]. */
export async function selectActiveRooms(db: DbOrTx, roomIds: string[], after: number, upTo: number): Promise<string[]> {
  if (roomIds.length === 0 || upTo <= after) return [];
  const out: string[] = [];
  for (const part of chunks(roomIds, 5000)) {
    const res = await sql<{ room_id: string }>`select distinct room_id from events
      where room_id in (${sql.join(part)}) and stream_pos > ${after} and stream_pos <= ${upTo}`.execute(db);
    for (const r of res.rows) out.push(r.room_id);
  }
  return out;
}

export async function selectMembershipsOfUser(db: DbOrTx, userId: string): Promise<RoomMembershipRow[]> {
  // In stream order: /sync lists rooms in this order, and without an order PostgreSQL returns rows as updates moved them.
  const res = await sql<RoomMembershipRow>`select * from room_memberships where user_id = ${userId} order by stream_pos`.execute(db);
  return res.rows;
}

/** selectMembershipsOfUser for several users in one statement. */
export async function selectMembershipsOfUsers(db: DbOrTx, userIds: string[]): Promise<RoomMembershipRow[]> {
  const out: RoomMembershipRow[] = [];
  for (const part of chunks(userIds, 500)) {
    const res = await sql<RoomMembershipRow>`select * from room_memberships where user_id in (${sql.join(part)}) order by stream_pos`.execute(db);
    out.push(...res.rows);
  }
  return out;
}

/** The user's membership events in each room, in stream order. */
export async function selectMembershipHistoryOfRooms(
  db: DbOrTx,
  userId: string,
  roomIds: string[],
): Promise<{ room_id: string; stream_pos: number; membership: string | null }[]> {
  const out: { room_id: string; stream_pos: number; membership: string | null }[] = [];
  for (const part of chunks(roomIds, 5000)) {
    const res = await sql<{ room_id: string; stream_pos: number; membership: string | null }>`select room_id, stream_pos, membership from events
      where type = 'm.room.member' and state_key = ${userId} and room_id in (${sql.join(part)})
        and stream_pos is not null and rejected_reason is null and soft_failed = 0
      order by stream_pos`.execute(db);
    out.push(...res.rows);
  }
  return out;
}

export interface GroupChainsRow {
  /** The group whose state this row belongs to. */
  root: number;
  /** Distance from `root` (apply highest first). */
  n: number;
  type: string;
  state_key: string;
  event_id: string;
}

// SQLite only: a CROSS JOIN keeps the chain first (see chainJoin).
const groupChainsText = textsByCount(
  (n) => `with recursive chain(root, id, prev_group, n) as (
        select id, id, prev_group, 0 from state_groups where id in (${placeholders(n)})
        union all
        select chain.root, g.id, g.prev_group, chain.n + 1 from state_groups g join chain on g.id = chain.prev_group
      )
      select chain.root as root, chain.n as n, d.type as type, d.state_key as state_key, d.event_id as event_id
      from chain cross join state_group_deltas d on d.state_group = chain.id`,
);

/**
 * Every delta on the chains from each group down to its full snapshot, in one
 * recursive query; with `keys`, only the entries at those (type, state_key)
 * pairs (what history visibility reads of the state at many events, without
 * reading whole room states).
 */
export async function selectGroupChains(db: DbOrTx, groupIds: number[], keys?: Array<[string, string]>): Promise<GroupChainsRow[]> {
  const out: GroupChainsRow[] = [];
  if (keys !== undefined && keys.length === 0) return out;
  const fast = keys === undefined ? sqliteRoot(db) : undefined;
  if (fast) {
    return fast.read((tx) => {
      for (const part of chunks(groupIds, 1000)) {
        for (const r of tx.rawRows(groupChainsText(part.length), part)) {
          out.push({ root: Number(r[0]), n: Number(r[1]), type: r[2] as string, state_key: r[3] as string, event_id: r[4] as string });
        }
      }
      return out;
    });
  }
  const only = keys ? sql`where ${sql.join(keys.map(([t, k]) => sql`(d.type = ${t} and d.state_key = ${k})`), sql` or `)}` : sql``;
  for (const part of chunks(groupIds, 1000)) {
    const res = await sql<GroupChainsRow>`
      with recursive chain(root, id, prev_group, n) as (
        select id, id, prev_group, 0 from state_groups where id in (${sql.join(part)})
        union all
        select chain.root, g.id, g.prev_group, chain.n + 1 from state_groups g join chain on g.id = chain.prev_group
      )
      select chain.root as root, chain.n as n, d.type as type, d.state_key as state_key, d.event_id as event_id
      from chain ${chainJoin(db)} state_group_deltas d on d.state_group = chain.id
      ${only}
    `.execute(db);
    for (const r of res.rows) out.push({ ...r, root: Number(r.root), n: Number(r.n) });
  }
  return out;
}
