/**
 * push_thread_read_upto: where a user has read up to in one thread of a room
 * (threaded receipts, spec: "Threaded read receipts"; 'main' is the main
 * timeline). Counts for a thread start after both this and the room's
 * unthreaded read position (read-upto-store.ts).
 */
import { sql } from 'kysely';
import type { StatementSink } from '../db/pg-pipeline.js';
import { prepared } from '../db/prepared.js';
import type { DbOrTx } from '../db/schema.js';
import { chunks } from './chunk.js';

const upsertThreadReadUpto = prepared((db, p: { userId: string; roomId: string; threadId: string; streamPos: number }) =>
  db
    .insertInto('push_thread_read_upto')
    .values({ user_id: p.userId, room_id: p.roomId, thread_id: p.threadId, stream_pos: p.streamPos })
    .onConflict((oc) =>
      oc
        .columns(['user_id', 'room_id', 'thread_id'])
        .doUpdateSet((eb) => ({ stream_pos: eb.ref('excluded.stream_pos') }))
        .where((eb) => eb('push_thread_read_upto.stream_pos', '<', eb.ref('excluded.stream_pos'))),
    ),
);

/** Moves the user's read position in a thread forward (never back). */
export async function advanceThreadReadUpto(db: DbOrTx, userId: string, roomId: string, threadId: string, streamPos: number): Promise<void> {
  await upsertThreadReadUpto.execute(db, { userId, roomId, threadId, streamPos });
}

/** As advanceThreadReadUpto, written to a statement sink (the pipeline: a user's own event in a thread). */
export function advanceThreadReadUptoVia(tx: StatementSink, userId: string, roomId: string, threadId: string, streamPos: number): void {
  tx.run(upsertThreadReadUpto, { userId, roomId, threadId, streamPos });
}

// One room (a sync woken by it): prepared.
const selectThreadReadPast = prepared((db, p: { userId: string; roomId: string }) =>
  db
    .selectFrom('push_thread_read_upto as t')
    .leftJoin('push_read_upto as r', (j) => j.onRef('r.user_id', '=', 't.user_id').onRef('r.room_id', '=', 't.room_id'))
    .select('t.room_id')
    .where('t.user_id', '=', p.userId)
    .where('t.room_id', '=', p.roomId)
    .where((eb) => eb('t.stream_pos', '>', eb.fn.coalesce('r.stream_pos', sql<number>`0`)))
    .limit(1),
);

/** The rooms where a threaded receipt of the user reaches past their unthreaded one (only there do threads change a count). */
export async function selectRoomsWithThreadReads(db: DbOrTx, userId: string, roomIds: string[]): Promise<Set<string>> {
  if (roomIds.length === 1) {
    const { rows } = await selectThreadReadPast.execute(db, { userId, roomId: roomIds[0]! });
    return new Set(rows.map((r) => r.room_id));
  }
  const out = new Set<string>();
  for (const part of chunks(roomIds)) {
    const rows = await db
      .selectFrom('push_thread_read_upto as t')
      .leftJoin('push_read_upto as r', (j) => j.onRef('r.user_id', '=', 't.user_id').onRef('r.room_id', '=', 't.room_id'))
      .select('t.room_id')
      .distinct()
      .where('t.user_id', '=', userId)
      .where('t.room_id', 'in', part)
      .where((eb) => eb('t.stream_pos', '>', eb.fn.coalesce('r.stream_pos', sql<number>`0`)))
      .execute();
    for (const r of rows) out.add(r.room_id);
  }
  return out;
}

export interface ThreadUnread {
  room_id: string;
  /** '' for the main timeline, else the thread root. */
  thread: string;
  notify: number;
  highlight: number;
}

/**
 * Per room and thread: the events notifying the user after both the room's
 * unthreaded read position and the thread's own ('main' for events in no
 * thread), with the same rules as unread-counts-store.ts. Threads without
 * anything to count are absent.
 */
export async function selectThreadedUnread(db: DbOrTx, userId: string, roomIds: string[]): Promise<ThreadUnread[]> {
  const out: ThreadUnread[] = [];
  for (const part of chunks(roomIds, 200)) {
    const rooms = sql.join(part.map((r) => sql`${r}`));
    const res = await sql<{ room_id: string; thread: string; notify: number | null; highlight: number | null }>`
      select o.room_id, coalesce(o.thread_id, '') as thread,
        sum(case when coalesce(x.level, o.base) >= 1 then 1 else 0 end) as notify,
        sum(case when coalesce(x.level, o.base) >= 2 then 1 else 0 end) as highlight
      from push_outcomes o
      left join push_read_upto r on r.user_id = ${userId} and r.room_id = o.room_id
      left join push_thread_read_upto t on t.user_id = ${userId} and t.room_id = o.room_id and t.thread_id = coalesce(o.thread_id, 'main')
      left join push_outcome_exceptions x on x.room_id = o.room_id and x.stream_pos = o.stream_pos and x.user_id = ${userId}
      where o.room_id in (${rooms})
        and o.stream_pos > coalesce(r.stream_pos, 0) and o.stream_pos > coalesce(t.stream_pos, 0) and o.sender <> ${userId}
        and exists (select 1 from push_member_spans s where s.user_id = ${userId} and s.room_id = o.room_id
          and s.joined_pos < o.stream_pos and (s.left_pos is null or s.left_pos >= o.stream_pos))
      group by o.room_id, coalesce(o.thread_id, '')
    `.execute(db);
    for (const r of res.rows) {
      const notify = Number(r.notify ?? 0);
      if (notify > 0) out.push({ room_id: r.room_id, thread: r.thread, notify, highlight: Number(r.highlight ?? 0) });
    }
  }
  return out;
}
