import { prepared } from '../db/prepared.js';
import type { DbOrTx } from '../db/schema.js';
import { chunks } from './chunk.js';
import type { EventPushActionRow } from './tables.js';
import type { StatementSink } from '../db/pg-pipeline.js';

const insertOne = prepared((db, p: EventPushActionRow) =>
  db
    .insertInto('event_push_actions')
    .values({
      user_id: p.user_id,
      room_id: p.room_id,
      event_id: p.event_id,
      stream_pos: p.stream_pos,
      notify: p.notify,
      highlight: p.highlight,
      actions: p.actions,
      ts: p.ts,
    })
    .onConflict((oc) => oc.columns(['user_id', 'room_id', 'stream_pos']).doNothing()),
);

/** As insertPushActions, written to a statement sink (the send fast paths). */
export function insertPushActionsVia(tx: StatementSink, rows: EventPushActionRow[]): void {
  for (const row of rows) tx.run(insertOne, row);
}

export async function insertPushActions(db: DbOrTx, rows: EventPushActionRow[]): Promise<void> {
  // One row (a two-member room) is the common case of a send: a prepared statement.
  if (rows.length === 1) {
    await insertOne.execute(db, rows[0]!);
    return;
  }
  for (const part of chunks(rows, 200)) {
    await db
      .insertInto('event_push_actions')
      .values(part)
      .onConflict((oc) => oc.columns(['user_id', 'room_id', 'stream_pos']).doNothing())
      .execute();
  }
}

export interface RoomCounts {
  room_id: string;
  notify: number;
  highlight: number;
}

/** Notifying and highlighting events after the user's read position, per room, in one query per 500 rooms. */
export async function countUnread(db: DbOrTx, userId: string, roomIds: string[]): Promise<RoomCounts[]> {
  const out: RoomCounts[] = [];
  for (const part of chunks(roomIds)) {
    const rows = await db
      .selectFrom('event_push_actions as a')
      .leftJoin('push_read_upto as r', (j) => j.onRef('r.user_id', '=', 'a.user_id').onRef('r.room_id', '=', 'a.room_id'))
      .select(['a.room_id', (eb) => eb.fn.countAll<number>().as('notify'), (eb) => eb.fn.sum<number>('a.highlight').as('highlight')])
      .where('a.user_id', '=', userId)
      .where('a.room_id', 'in', part)
      .where((eb) => eb('a.stream_pos', '>', eb.fn.coalesce('r.stream_pos', eb.lit(0))))
      .groupBy('a.room_id')
      .execute();
    for (const r of rows) out.push({ room_id: r.room_id, notify: Number(r.notify), highlight: Number(r.highlight ?? 0) });
  }
  return out;
}

/** The user's notifications, newest first, with stream position below `before` when given. */
export async function listNotifications(
  db: DbOrTx,
  userId: string,
  opts: { before?: number; limit: number; onlyHighlight: boolean },
): Promise<(EventPushActionRow & { read_upto: number | null })[]> {
  let q = db
    .selectFrom('event_push_actions as a')
    .leftJoin('push_read_upto as r', (j) => j.onRef('r.user_id', '=', 'a.user_id').onRef('r.room_id', '=', 'a.room_id'))
    .selectAll('a')
    .select('r.stream_pos as read_upto')
    .where('a.user_id', '=', userId);
  if (opts.before !== undefined) q = q.where('a.stream_pos', '<', opts.before);
  if (opts.onlyHighlight) q = q.where('a.highlight', '=', 1);
  const rows = await q.orderBy('a.stream_pos', 'desc').limit(opts.limit).execute();
  return rows.map((r) => ({ ...r, stream_pos: Number(r.stream_pos), ts: Number(r.ts), read_upto: r.read_upto === null ? null : Number(r.read_upto) }));
}

const upsertReadUpto = prepared((db, p: { userId: string; roomId: string; streamPos: number }) =>
  db
    .insertInto('push_read_upto')
    .values({ user_id: p.userId, room_id: p.roomId, stream_pos: p.streamPos })
    .onConflict((oc) =>
      oc
        .columns(['user_id', 'room_id'])
        .doUpdateSet((eb) => ({ stream_pos: eb.ref('excluded.stream_pos') }))
        .where((eb) => eb('push_read_upto.stream_pos', '<', eb.ref('excluded.stream_pos'))),
    ),
);

/** As advanceReadUpto, written to a statement sink (the send fast paths). */
export function advanceReadUptoVia(tx: StatementSink, userId: string, roomId: string, streamPos: number): void {
  tx.run(upsertReadUpto, { userId, roomId, streamPos });
}

/** Moves the user's read position in a room forward (never back). Runs on every send: prepared. */
export async function advanceReadUpto(db: DbOrTx, userId: string, roomId: string, streamPos: number): Promise<void> {
  await upsertReadUpto.execute(db, { userId, roomId, streamPos });
}
