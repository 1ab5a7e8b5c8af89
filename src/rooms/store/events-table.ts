import { sql } from 'kysely';
import { prepared } from '../../db/prepared.js';
import type { Db, DbOrTx, Dialect } from '../../db/schema.js';
import { placeholders, sqliteSync, type SyncTx } from '../../db/sqlite-sync.js';
import { EVENT_COLUMNS, type EventColumnsRow } from '../events/stored-event.js';
import type { EventRow } from '../tables.js';
import type { TopoPoint } from '../tokens.js';
import type { StatementSink } from '../../db/pg-pipeline.js';

/** SQLite allows 32766 bound parameters; stay far below for multi-row inserts. */
const INSERT_CHUNK = 400;

// Every column, so a one-row insert is one fixed statement (checked complete by the type).
const EVENT_ROW_KEYS = Object.keys({
  event_id: 1, room_id: 1, stream_pos: 1, depth: 1, type: 1, state_key: 1, sender: 1, origin_server_ts: 1, json: 1,
  state_group: 1, state_group_before: 1, replaces_state: 1, membership: 1, redacts: 1, redacted_by: 1, outlier: 1, rejected_reason: 1,
  soft_failed: 1, sender_device: 1, txn_id: 1, txn_endpoint: 1,
} satisfies Record<keyof EventRow, 1>) as (keyof EventRow)[];

const insertOneEvent = prepared((db, p: EventRow) => {
  const row: Record<string, unknown> = {};
  for (const k of EVENT_ROW_KEYS) row[k] = p[k];
  return db.insertInto('events').values(row as unknown as EventRow);
});

/** As insertEvents, written to a statement sink (the send fast paths). */
export function insertEventsVia(tx: StatementSink, rows: EventRow[]): void {
  for (const row of rows) tx.run(insertOneEvent, row);
}

export async function insertEvents(trx: DbOrTx, rows: EventRow[]): Promise<void> {
  if (rows.length === 1) {
    await insertOneEvent.execute(trx, rows[0]!);
    return;
  }
  for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
    await trx.insertInto('events').values(rows.slice(i, i + INSERT_CHUNK)).execute();
  }
}

/** What selectEventViewsByIds reads of an event: its columns, and the PDU's content, parsed. */
export interface EventViewRow {
  event_id: string;
  room_id: string;
  stream_pos: number | string | null;
  sender: string;
  type: string;
  state_key: string | null;
  origin_server_ts: number | string;
  redacts: string | null;
  /** Null when the PDU has none. */
  content: Record<string, unknown> | null;
  state_group: number | string | null;
  state_group_before: number | string | null;
  replaces_state: string | null;
  redacted_by: string | null;
  rejected_reason: string | null;
  outlier: number | boolean;
  soft_failed: number | boolean;
  sender_device: string | null;
  txn_id: string | null;
  txn_endpoint: string | null;
}

/**
 * The events' client-facing parts (EventView): the columns, and only the
 * content of the stored PDU, taken out by the database, so that the
 * signatures, hashes and graph edges, most of an event's JSON, are neither
 * sent over nor parsed.
 */
export async function selectEventViewsByIds(db: DbOrTx, dialect: Dialect, ids: string[]): Promise<EventViewRow[]> {
  if (ids.length === 0) return [];
  const fast = dialect === 'sqlite' && !db.isTransaction ? sqliteSync(db as Db) : undefined;
  if (fast) return fast.read((tx) => eventViewRowsSqlite(tx, ids));
  const content = dialect === 'postgres' ? sql`(json::json -> 'content')::text` : sql`json -> '$.content'`;
  const out: EventViewRow[] = [];
  for (let i = 0; i < ids.length; i += VIEW_CHUNK) {
    const res = await sql<Omit<EventViewRow, 'content'> & { content: string | null }>`select event_id, room_id, stream_pos, sender, type, state_key, origin_server_ts, redacts,
        ${content} as content, state_group, state_group_before, replaces_state, redacted_by, rejected_reason, outlier, soft_failed,
        sender_device, txn_id, txn_endpoint
      from events where event_id in (${sql.join(ids.slice(i, i + VIEW_CHUNK))})`.execute(db);
    for (const r of res.rows) out.push({ ...r, content: r.content === null ? null : (JSON.parse(r.content) as Record<string, unknown>) });
  }
  return out;
}

const VIEW_CHUNK = 5000;

/** The columns of EventViewRow in the order of eventViewRowsSqlite's array. */
const VIEW_ARRAY = `json_array(event_id, room_id, stream_pos, sender, type, state_key, origin_server_ts, redacts,
  json -> '$.content', state_group, state_group_before, replaces_state, redacted_by, rejected_reason, outlier, soft_failed,
  sender_device, txn_id, txn_endpoint)`;

/**
 * selectEventViewsByIds on SQLite. Each row comes as one JSON array made by
 * SQLite, content included, and is parsed once: an initial sync reads tens
 * of thousands of these, and handing over 19 columns a value at a time, then
 * parsing the content on its own, cost about a sixth more than one parse of
 * the whole row.
 */
function eventViewRowsSqlite(tx: SyncTx, ids: string[]): EventViewRow[] {
  const out: EventViewRow[] = [];
  for (let i = 0; i < ids.length; i += VIEW_CHUNK) {
    const chunk = ids.slice(i, i + VIEW_CHUNK);
    const text = `select ${VIEW_ARRAY} from events where event_id in (${placeholders(chunk.length)})`;
    for (const [json] of tx.rawRows(text, chunk)) {
      const r = JSON.parse(json as string) as unknown[];
      out.push({
        event_id: r[0] as string,
        room_id: r[1] as string,
        stream_pos: r[2] as number | null,
        sender: r[3] as string,
        type: r[4] as string,
        state_key: r[5] as string | null,
        origin_server_ts: r[6] as number,
        redacts: r[7] as string | null,
        content: r[8] as Record<string, unknown> | null,
        state_group: r[9] as number | null,
        state_group_before: r[10] as number | null,
        replaces_state: r[11] as string | null,
        redacted_by: r[12] as string | null,
        rejected_reason: r[13] as string | null,
        outlier: r[14] as number,
        soft_failed: r[15] as number,
        sender_device: r[16] as string | null,
        txn_id: r[17] as string | null,
        txn_endpoint: r[18] as string | null,
      });
    }
  }
  return out;
}

export async function selectEventsByIds(db: DbOrTx, ids: string[]): Promise<EventColumnsRow[]> {
  if (ids.length === 0) return [];
  const out: EventColumnsRow[] = [];
  for (let i = 0; i < ids.length; i += 5000) {
    const rows = await db
      .selectFrom('events')
      .select(EVENT_COLUMNS)
      .where('event_id', 'in', ids.slice(i, i + 5000))
      .execute();
    out.push(...rows);
  }
  return out;
}

export async function setRedactedBy(trx: DbOrTx, eventId: string, redactionId: string): Promise<void> {
  await trx
    .updateTable('events')
    .set({ redacted_by: redactionId })
    .where('event_id', '=', eventId)
    .where('redacted_by', 'is', null)
    .execute();
}

/**
 * A redaction of the event was withdrawn (a partial state filled in): it is marked redacted by
 * `redactionId`, another redaction that stands, or by none.
 */
export async function replaceRedactedBy(trx: DbOrTx, eventId: string, redactionId: string | null): Promise<void> {
  await trx.updateTable('events').set({ redacted_by: redactionId }).where('event_id', '=', eventId).execute();
}

/** The redactions of any of `targets` stored here, whatever their status. */
export async function selectRedactionIdsOf(db: DbOrTx, targets: string[]): Promise<{ event_id: string; redacts: string }[]> {
  if (targets.length === 0) return [];
  const rows = await db.selectFrom('events').select(['event_id', 'redacts']).where('redacts', 'in', targets).execute();
  return rows.filter((r): r is { event_id: string; redacts: string } => r.redacts !== null);
}

type TxnRow = { event_id: string; sender: string; sender_device: string | null; txn_id: string | null; txn_endpoint: string | null; stream_pos: number | null };

const TXN_COLUMNS = ['event_id', 'sender', 'sender_device', 'txn_id', 'txn_endpoint', 'stream_pos'] as const;

// Every column of events_txn_uq is bound, so the lookup is one index probe however long the room is.
const selectOneTxn = prepared((db, p: TxnKey & { roomId: string }) =>
  db
    .selectFrom('events')
    .select(TXN_COLUMNS)
    .where('room_id', '=', p.roomId)
    .where('sender', '=', p.sender)
    .where('sender_device', '=', p.deviceId)
    .where('txn_id', '=', p.txnId)
    .where('txn_endpoint', '=', p.endpoint),
);

/**
 * Whether `e` is a write refused by events_txn_uq: an event with the same transaction (room,
 * sender, device, transaction id, endpoint) is stored already. better-sqlite3 names the index's
 * columns, postgres.js the index.
 */
export function isTxnConflict(e: unknown): boolean {
  if (typeof e !== 'object' || e === null) return false;
  const err = e as { code?: unknown; message?: unknown; constraint_name?: unknown };
  if (err.code === 'SQLITE_CONSTRAINT_UNIQUE') return typeof err.message === 'string' && err.message.includes('events.txn_id');
  return err.code === '23505' && err.constraint_name === 'events_txn_uq';
}

/** A client's transaction: ids are scoped per device and per endpoint (spec: client-server API, "Transaction identifiers"). */
export interface TxnKey {
  sender: string;
  deviceId: string;
  txnId: string;
  endpoint: TxnEndpoint;
}
/** `delayed`: a delayed event (MSC4140) sent for its owner; the transaction id is its delay id. */
export type TxnEndpoint = 'send' | 'redact' | 'delayed';

/** As selectByTxnIds for one key, on SQLite's synchronous path (a retried send's lookup, before it is built again). */
export function selectOneTxnSync(tx: SyncTx, roomId: string, k: TxnKey): TxnRow[] {
  return tx.all(selectOneTxn, { roomId, ...k });
}

/** Events a device already sent with these transaction ids (send idempotency). */
export async function selectByTxnIds(
  db: DbOrTx,
  roomId: string,
  keys: TxnKey[],
): Promise<TxnRow[]> {
  if (keys.length === 0) return [];
  if (keys.length === 1) return (await selectOneTxn.execute(db, { roomId, ...keys[0]! })).rows;
  const byDevice = new Map<string, { sender: string; deviceId: string; endpoint: string; txnIds: Set<string> }>();
  for (const k of keys) {
    const dk = `${k.sender}\u0000${k.deviceId}\u0000${k.endpoint}`;
    let g = byDevice.get(dk);
    if (!g) byDevice.set(dk, (g = { sender: k.sender, deviceId: k.deviceId, endpoint: k.endpoint, txnIds: new Set() }));
    g.txnIds.add(k.txnId);
  }
  // room_id inside every OR term lets SQLite probe the index once per term.
  return db
    .selectFrom('events')
    .select(TXN_COLUMNS)
    .where((eb) =>
      eb.or(
        [...byDevice.values()].map((g) =>
          eb.and([
            eb('room_id', '=', roomId),
            eb('sender', '=', g.sender),
            eb('sender_device', '=', g.deviceId),
            eb('txn_id', 'in', [...g.txnIds]),
            eb('txn_endpoint', '=', g.endpoint),
          ]),
        ),
      ),
    )
    .execute();
}

export async function selectStreamPos(db: DbOrTx, eventId: string): Promise<number | null> {
  const row = await db.selectFrom('events').select('stream_pos').where('event_id', '=', eventId).executeTakeFirst();
  return row?.stream_pos == null ? null : Number(row.stream_pos);
}

/** Servable events of a room with stream positions in a range, with optional SQL-side type/sender filters. */
export interface RangeQuery {
  roomId: string;
  /** Exclusive lower bound. */
  after?: number;
  /** Inclusive upper bound. */
  upTo?: number;
  /** Topological bounds (exclusive after, inclusive up to), for /messages and /context. */
  topoAfter?: TopoPoint;
  topoUpTo?: TopoPoint;
  /** Order by (depth, stream position) instead of stream position. */
  topological?: boolean;
  order: 'asc' | 'desc';
  limit: number;
  types?: string[];
  notTypes?: string[];
  senders?: string[];
  notSenders?: string[];
}

/** Matrix filter globs (`*` wildcard) as SQL LIKE patterns. */
function likePattern(glob: string): string {
  return glob.replace(/[\\%_]/g, (c) => `\\${c}`).replace(/\*/g, '%');
}

export async function selectEventRange(db: DbOrTx, q: RangeQuery): Promise<(EventColumnsRow & { stream_pos: number; depth: number })[]> {
  let query = db
    .selectFrom('events')
    .select([...EVENT_COLUMNS, 'depth'])
    .where('room_id', '=', q.roomId)
    .where('stream_pos', 'is not', null)
    .where('rejected_reason', 'is', null)
    .where('soft_failed', '=', 0);
  if (q.after !== undefined) query = query.where('stream_pos', '>', q.after);
  if (q.upTo !== undefined) query = query.where('stream_pos', '<=', q.upTo);
  // Topological bounds: (depth, stream_pos) compared as a pair.
  const after = q.topoAfter;
  if (after) query = query.where((eb) => eb.or([eb('depth', '>', after.depth), eb.and([eb('depth', '=', after.depth), eb('stream_pos', '>', after.stream)])]));
  const upTo = q.topoUpTo;
  if (upTo) query = query.where((eb) => eb.or([eb('depth', '<', upTo.depth), eb.and([eb('depth', '=', upTo.depth), eb('stream_pos', '<=', upTo.stream)])]));
  if (q.types !== undefined) {
    const types = q.types;
    if (types.length === 0) return [];
    query = query.where((eb) =>
      eb.or(types.map((t) => (t.includes('*') ? eb('type', 'like', sql<string>`${likePattern(t)} escape '\\'`) : eb('type', '=', t)))),
    );
  }
  if (q.notTypes !== undefined && q.notTypes.length > 0) {
    for (const t of q.notTypes) {
      query = t.includes('*')
        ? query.where('type', 'not like', sql<string>`${likePattern(t)} escape '\\'`)
        : query.where('type', '!=', t);
    }
  }
  if (q.senders !== undefined) {
    if (q.senders.length === 0) return [];
    query = query.where('sender', 'in', q.senders);
  }
  if (q.notSenders !== undefined && q.notSenders.length > 0) query = query.where('sender', 'not in', q.notSenders);
  const ordered = q.topological ? query.orderBy('depth', q.order).orderBy('stream_pos', q.order) : query.orderBy('stream_pos', q.order);
  const rows = await ordered.limit(q.limit).execute();
  return rows.map((r) => ({ ...r, depth: Number(r.depth) })) as (EventColumnsRow & { stream_pos: number; depth: number })[];
}

/** The deepest servable event of the room at or before a stream position: where a stream token falls in topological order. */
export async function selectMaxDepthUpTo(db: DbOrTx, roomId: string, pos: number): Promise<number | null> {
  const row = await db
    .selectFrom('events')
    .select((eb) => eb.fn.max('depth').as('d'))
    .where('room_id', '=', roomId)
    .where('stream_pos', 'is not', null)
    .where('stream_pos', '<=', pos)
    .executeTakeFirst();
  return row?.d == null ? null : Number(row.d);
}

/** Rooms among `roomIds` with a servable event in (after, upTo]. */
export async function selectRoomsWithEvents(db: DbOrTx, roomIds: string[], after: number, upTo: number): Promise<string[]> {
  if (roomIds.length === 0 || upTo <= after) return [];
  const out: string[] = [];
  for (let i = 0; i < roomIds.length; i += 5000) {
    const rows = await db
      .selectFrom('events')
      .select('room_id')
      .distinct()
      .where('room_id', 'in', roomIds.slice(i, i + 5000))
      .where('stream_pos', '>', after)
      .where('stream_pos', '<=', upTo)
      .execute();
    for (const r of rows) out.push(r.room_id);
  }
  return out;
}

/** A user's membership events (any room, or one room), chronological. */
export async function selectMembershipEvents(
  db: DbOrTx,
  userId: string,
  opts: { roomId?: string; after?: number; upTo?: number },
): Promise<{ room_id: string; event_id: string; membership: string | null; stream_pos: number }[]> {
  let q = db
    .selectFrom('events')
    .select(['room_id', 'event_id', 'membership', 'stream_pos'])
    .where('type', '=', 'm.room.member')
    .where('state_key', '=', userId)
    .where('stream_pos', 'is not', null)
    .where('rejected_reason', 'is', null)
    .where('soft_failed', '=', 0);
  if (opts.roomId !== undefined) q = q.where('room_id', '=', opts.roomId);
  if (opts.after !== undefined) q = q.where('stream_pos', '>', opts.after);
  if (opts.upTo !== undefined) q = q.where('stream_pos', '<=', opts.upTo);
  const rows = await q.orderBy('stream_pos', 'asc').execute();
  return rows as { room_id: string; event_id: string; membership: string | null; stream_pos: number }[];
}

/** State group of the last event at or before `pos`. */
export async function selectStateGroupAt(db: DbOrTx, roomId: string, pos: number): Promise<number | null> {
  const row = await db
    .selectFrom('events')
    .select('state_group')
    .where('room_id', '=', roomId)
    .where('stream_pos', '<=', pos)
    .where('state_group', 'is not', null)
    .orderBy('stream_pos', 'desc')
    .limit(1)
    .executeTakeFirst();
  return row?.state_group == null ? null : Number(row.state_group);
}

export async function selectMaxStreamPos(db: DbOrTx, roomId: string): Promise<number> {
  const row = await db
    .selectFrom('events')
    .select((eb) => eb.fn.max('stream_pos').as('m'))
    .where('room_id', '=', roomId)
    .executeTakeFirst();
  return row?.m == null ? 0 : Number(row.m);
}

/**
 * Servable events of a room nearest a timestamp in one direction: at or before `ts` newest first
 * (`b`), or at or after it oldest first (`f`); ties by event id. `skip` pages past candidates the
 * viewer may not see. The candidates come from the covering (room, stream position) index (it
 * holds the timestamp), so only the rows returned are read.
 */
export async function selectEventsNearTimestamp(
  db: DbOrTx,
  q: { roomId: string; ts: number; dir: 'f' | 'b'; skip: number; limit: number },
): Promise<EventColumnsRow[]> {
  const order = q.dir === 'b' ? 'desc' : 'asc';
  const ids = await db
    .selectFrom('events')
    .select('event_id')
    .where('room_id', '=', q.roomId)
    .where('stream_pos', 'is not', null)
    .where('origin_server_ts', q.dir === 'b' ? '<=' : '>=', q.ts)
    .orderBy('origin_server_ts', order)
    .orderBy('event_id', order)
    .offset(q.skip)
    .limit(q.limit)
    .execute();
  if (ids.length === 0) return [];
  const rows = await db
    .selectFrom('events')
    .select(EVENT_COLUMNS)
    .where(
      'event_id',
      'in',
      ids.map((r) => r.event_id),
    )
    .execute();
  const byId = new Map(rows.map((r) => [r.event_id, r]));
  return ids.flatMap((r) => byId.get(r.event_id) ?? []);
}

/** The state groups before and after stored events, replaced (a partial state filled in). */
export async function updateEventStateGroups(trx: DbOrTx, rows: { eventId: string; stateGroup: number | null; stateGroupBefore: number | null }[]): Promise<void> {
  for (const r of rows) {
    await trx.updateTable('events').set({ state_group: r.stateGroup, state_group_before: r.stateGroupBefore }).where('event_id', '=', r.eventId).execute();
  }
}

/**
 * Events found, after they were stored, to be rejected or soft-failed (a partial state filled
 * in): they take that status and leave the stream, so no timeline serves them any more.
 */
export async function withdrawEvents(trx: DbOrTx, rows: { eventId: string; rejectedReason: string | null; softFailed: boolean }[]): Promise<void> {
  for (const r of rows) {
    await trx
      .updateTable('events')
      .set({ rejected_reason: r.rejectedReason, soft_failed: r.softFailed ? 1 : 0, stream_pos: null })
      .where('event_id', '=', r.eventId)
      .execute();
  }
}
