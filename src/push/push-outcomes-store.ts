/**
 * What push rules gave for each event, stored per room and stream position.
 *
 * Layout. One row per notifying event in push_outcomes, keyed (room,
 * position): the outcome for every local member with the server-default
 * rules whom the event does not name (`base`: nothing, notify, or notify and
 * highlight, with its actions), and one row in push_outcome_exceptions,
 * keyed (room, position, user), for each member whose outcome differs (a
 * mention, a muted room, rules of their own). Which members an outcome
 * applies to is recorded once per membership, not once per event:
 * push_member_spans (member-spans-store.ts) holds, per local user and room,
 * the stream positions during which the user was joined. A user's outcome for
 * an event is therefore: nothing if they sent it or were not joined then,
 * else their exception if they have one, else the base.
 *
 * Why. The earlier layout stored a row per notified member, keyed by user:
 * a message into a room of 500 members wrote 500 rows on as many B-tree pages
 * (11 MB of WAL per message, 34 MB at 1,500 members). Here a message writes
 * one row, plus a row per exception, all under the same (room, position)
 * prefix: adjacent in the key order of both tables, so the commit touches a
 * handful of pages whatever the room's size. Measured with bench/big-rooms.ts
 * (a room of 1,000 local members, default rules): per message, SQLite wrote
 * 23.6 MB before and 72-78 KB after (a two-member room: 73-80 KB, the rest of
 * the event's rows); PostgreSQL's WAL 760-980 KB before, 3 KB after.
 *
 * Alternatives weighed: a list of notified users per event (one row, but ~25
 * bytes per member per message, 25 KB at 1,000 members) and counters per
 * (user, room) kept incrementally (a write per member per message again).
 *
 * Reads. Unread counts (unread-counts-store.ts) read a room's outcomes after
 * the user's read position and probe the user's exception and span for each;
 * PushService keeps the counts per user and room and reads only the rows
 * after the last count, so a user who never reads a busy room costs a scan
 * once, not on every /sync. GET /notifications reads, per room the user has a
 * span in, the newest outcomes that notify the user, and merges them.
 *
 * Rows are written in the event's transaction and never changed: a row, its
 * exceptions and the spans that cover it are committed together (a span is
 * opened at the latest by the first stored event after the join), so what a
 * count saw at position N stays true.
 */
import { prepared } from '../db/prepared.js';
import type { DbOrTx } from '../db/schema.js';
import type { StatementSink } from '../db/pg-pipeline.js';
import type { PushOutcomeExceptionRow, PushOutcomeRow } from './tables.js';

/** An outcome to write; `thread_id` absent means the main timeline. */
export type NewOutcome = Omit<PushOutcomeRow, 'thread_id'> & { thread_id?: string | null };

export const insertOutcome = prepared((db, p: PushOutcomeRow) =>
  db
    .insertInto('push_outcomes')
    .values({ room_id: p.room_id, stream_pos: p.stream_pos, event_id: p.event_id, sender: p.sender, base: p.base, actions: p.actions, ts: p.ts, thread_id: p.thread_id })
    .onConflict((oc) => oc.columns(['room_id', 'stream_pos']).doNothing()),
);

/** An exception to write; `invitee` absent means a member. */
export type NewException = Omit<PushOutcomeExceptionRow, 'invitee'> & { invitee?: number };

export const insertException = prepared((db, p: PushOutcomeExceptionRow) =>
  db
    .insertInto('push_outcome_exceptions')
    .values({ room_id: p.room_id, stream_pos: p.stream_pos, user_id: p.user_id, level: p.level, actions: p.actions, invitee: p.invitee })
    .onConflict((oc) => oc.columns(['room_id', 'stream_pos', 'user_id']).doNothing()),
);

/** An event's outcome and its exceptions, written to a statement sink (all paths of the pipeline). */
export function insertOutcomeVia(tx: StatementSink, row: NewOutcome, exceptions: NewException[]): void {
  // Prepared statements bind parameters as given: the optional columns get their defaults here.
  tx.run(insertOutcome, { ...row, thread_id: row.thread_id ?? null });
  for (const x of exceptions) tx.run(insertException, { ...x, invitee: x.invitee ?? 0 });
}

export interface NotificationRow {
  room_id: string;
  stream_pos: number;
  event_id: string;
  /** 1 notify, 2 notify and highlight. */
  level: number;
  actions: string;
  ts: number;
}

/**
 * The user's notifications in one room, newest first, below `before`: the
 * outcomes of events others sent while the user was joined whose level for
 * the user is at least `minLevel`.
 */
export async function selectRoomNotifications(
  db: DbOrTx,
  userId: string,
  roomId: string,
  opts: { before: number; limit: number; minLevel: number },
): Promise<NotificationRow[]> {
  const rows = await db
    .selectFrom('push_outcomes as o')
    .leftJoin('push_outcome_exceptions as x', (j) =>
      j.onRef('x.room_id', '=', 'o.room_id').onRef('x.stream_pos', '=', 'o.stream_pos').on('x.user_id', '=', userId),
    )
    .select(['o.room_id', 'o.stream_pos', 'o.event_id', 'o.ts', 'x.level as x_level', 'x.actions as x_actions', 'o.base', 'o.actions'])
    .where('o.room_id', '=', roomId)
    .where('o.stream_pos', '<', opts.before)
    .where('o.sender', '<>', userId)
    .where((eb) => eb(eb.fn.coalesce('x.level', 'o.base'), '>=', opts.minLevel))
    .where((eb) =>
      eb.exists(
        eb
          .selectFrom('push_member_spans as s')
          .select('s.joined_pos')
          .where('s.user_id', '=', userId)
          .whereRef('s.room_id', '=', 'o.room_id')
          .whereRef('s.joined_pos', '<', 'o.stream_pos')
          .where((e) => e.or([e('s.left_pos', 'is', null), e('s.left_pos', '>=', e.ref('o.stream_pos'))])),
      ),
    )
    .orderBy('o.stream_pos', 'desc')
    .limit(opts.limit)
    .execute();
  return rows.map((r) => {
    const own = r.x_level !== null;
    return {
      room_id: r.room_id,
      stream_pos: Number(r.stream_pos),
      event_id: r.event_id,
      level: Number(own ? r.x_level : r.base),
      actions: (own ? r.x_actions : r.actions) ?? '["notify"]',
      ts: Number(r.ts),
    };
  });
}

/** Drops the outcomes of the events at `positions` of the room, and their exceptions (events withdrawn after they were stored). */
export async function deleteOutcomesAt(db: DbOrTx, roomId: string, positions: readonly number[]): Promise<void> {
  if (positions.length === 0) return;
  await db.deleteFrom('push_outcome_exceptions').where('room_id', '=', roomId).where('stream_pos', 'in', [...positions]).execute();
  await db.deleteFrom('push_outcomes').where('room_id', '=', roomId).where('stream_pos', 'in', [...positions]).execute();
}
