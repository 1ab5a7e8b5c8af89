import { sql } from 'kysely';
import type { DbOrTx } from '../db/schema.js';
import { chunks } from './chunk.js';

export interface UnreadSince {
  room_id: string;
  /** The user's read position in the room (0 when never read). */
  read_upto: number;
  /** Events notifying the user after both `after` and the read position. */
  notify: number;
  highlight: number;
  /** Highest stream position among those events, null when there are none. */
  max_pos: number | null;
}

/**
 * Per (user, room): the user's read position, and the events after both it
 * and the `after` bound that notify the user (push-outcomes-store.ts: sent by
 * someone else while the user was joined, the user's exception or else the
 * base at least "notify"), in one statement (so both come from one
 * snapshot). Only the key range after the bound is read, which keeps
 * counting incremental for a user who never reads a busy room.
 */
export async function selectUnreadSinceForUsers(
  db: DbOrTx,
  bounds: { userId: string; roomId: string; after: number }[],
): Promise<Array<UnreadSince & { user_id: string }>> {
  const out: Array<UnreadSince & { user_id: string }> = [];
  for (const part of chunks(bounds, 200)) {
    const values = sql.join(part.map((b) => sql`(${b.roomId}, cast(${b.after} as bigint), ${b.userId})`));
    const res = await sql<{ user_id: string; room_id: string; read_upto: number | null; notify: number | null; highlight: number | null; max_pos: number | null }>`
      select q.column3 as user_id, q.column1 as room_id, r.stream_pos as read_upto,
        sum(case when coalesce(x.level, o.base) >= 1 then 1 else 0 end) as notify,
        sum(case when coalesce(x.level, o.base) >= 2 then 1 else 0 end) as highlight,
        max(case when coalesce(x.level, o.base) >= 1 then o.stream_pos end) as max_pos
      from (values ${values}) as q
      left join push_read_upto r on r.user_id = q.column3 and r.room_id = q.column1
      left join push_outcomes o on o.room_id = q.column1
        and o.stream_pos > q.column2 and o.stream_pos > coalesce(r.stream_pos, 0) and o.sender <> q.column3
        and exists (select 1 from push_member_spans s where s.user_id = q.column3 and s.room_id = o.room_id
          and s.joined_pos < o.stream_pos and (s.left_pos is null or s.left_pos >= o.stream_pos))
      left join push_outcome_exceptions x on x.room_id = o.room_id and x.stream_pos = o.stream_pos and x.user_id = q.column3
      group by q.column3, q.column1, r.stream_pos
    `.execute(db);
    for (const r of res.rows) {
      out.push({
        user_id: r.user_id,
        room_id: r.room_id,
        read_upto: r.read_upto === null ? 0 : Number(r.read_upto),
        notify: Number(r.notify ?? 0),
        highlight: Number(r.highlight ?? 0),
        max_pos: r.max_pos === null ? null : Number(r.max_pos),
      })
    }
  }
  return out;
}

/** selectUnreadSinceForUsers for one user's rooms. */
export async function selectUnreadSince(db: DbOrTx, userId: string, bounds: { roomId: string; after: number }[]): Promise<UnreadSince[]> {
  return selectUnreadSinceForUsers(
    db,
    bounds.map((b) => ({ userId, ...b })),
  );
}
