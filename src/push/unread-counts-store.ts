import { sql } from 'kysely';
import type { DbOrTx } from '../db/schema.js';
import { chunks } from './chunk.js';

export interface UnreadSince {
  room_id: string;
  /** The user's read position in the room (0 when never read). */
  read_upto: number;
  /** Notifying rows after both `after` and the read position. */
  notify: number;
  highlight: number;
  /** Highest stream position among those rows, null when there are none. */
  max_pos: number | null;
}

/**
 * Per room: the user's read position, and the push actions after both it and
 * the room's `after` bound, in one statement (so both come from one
 * snapshot). Only the index range after the bound is read, which keeps
 * counting incremental for a user who never reads a busy room.
 */
export async function selectUnreadSince(
  db: DbOrTx,
  userId: string,
  bounds: { roomId: string; after: number }[],
): Promise<UnreadSince[]> {
  const out: UnreadSince[] = [];
  for (const part of chunks(bounds, 200)) {
    const values = sql.join(part.map((b) => sql`(${b.roomId}, cast(${b.after} as bigint))`));
    const res = await sql<{ room_id: string; read_upto: number | null; notify: number; highlight: number | null; max_pos: number | null }>`
      select q.column1 as room_id, r.stream_pos as read_upto, count(a.event_id) as notify,
        sum(a.highlight) as highlight, max(a.stream_pos) as max_pos
      from (values ${values}) as q
      left join push_read_upto r on r.user_id = ${userId} and r.room_id = q.column1
      left join event_push_actions a on a.user_id = ${userId} and a.room_id = q.column1
        and a.stream_pos > q.column2 and a.stream_pos > coalesce(r.stream_pos, 0)
      group by q.column1, r.stream_pos
    `.execute(db);
    for (const r of res.rows) {
      out.push({
        room_id: r.room_id,
        read_upto: r.read_upto === null ? 0 : Number(r.read_upto),
        notify: Number(r.notify),
        highlight: Number(r.highlight ?? 0),
        max_pos: r.max_pos === null ? null : Number(r.max_pos),
      });
    }
  }
  return out;
}
