import { prepared } from '../../db/prepared.js';
import type { DbOrTx } from '../../db/schema.js';
import type { CurrentStateDeltaRow } from '../tables.js';

export async function insertStateDeltas(trx: DbOrTx, rows: CurrentStateDeltaRow[]): Promise<void> {
  for (let i = 0; i < rows.length; i += 400) {
    await trx.insertInto('current_state_deltas').values(rows.slice(i, i + 400)).onConflict((oc) => oc.doNothing()).execute();
  }
}

/** A user's membership changes in every room with position in (after, upTo], chronological. */
export async function selectMembershipDeltas(
  db: DbOrTx,
  userId: string,
  range: { after: number; upTo: number },
): Promise<{ room_id: string; event_id: string; membership: string | null; stream_pos: number }[]> {
  const rows = await db
    .selectFrom('current_state_deltas')
    .select(['room_id', 'event_id', 'membership', 'stream_pos'])
    .where('state_key', '=', userId)
    .where('type', '=', 'm.room.member')
    .where('stream_pos', '>', range.after)
    .where('stream_pos', '<=', range.upTo)
    .orderBy('stream_pos', 'asc')
    .execute();
  return rows.map((r) => ({ ...r, stream_pos: Number(r.stream_pos) }));
}

// Built once: the stream's consumers read it after every burst of events.
const selectDeltasPage = prepared((db, p: { after: number; upTo: number; limit: number }) =>
  db.selectFrom('current_state_deltas').selectAll().where('stream_pos', '>', p.after).where('stream_pos', '<=', p.upTo).orderBy('stream_pos', 'asc').limit(p.limit),
);

/**
 * Current-state changes of every room with position in (after, upTo], in stream order, for
 * consumers that follow the stream: about `limit` rows, always every row of the last position
 * returned (a state reset or a partial-state fill writes many rows at one position, and a
 * consumer that stops inside one would lose the rest).
 */
export async function selectStateDeltasAfter(db: DbOrTx, after: number, upTo: number, limit: number): Promise<CurrentStateDeltaRow[]> {
  const { rows: page } = await selectDeltasPage.execute(db, { after, upTo, limit });
  const rows = page.map((r) => ({ ...r, stream_pos: Number(r.stream_pos) }));
  if (rows.length < limit) return rows;
  const last = rows[rows.length - 1]!.stream_pos;
  const rest = await db.selectFrom('current_state_deltas').selectAll().where('stream_pos', '=', last).execute();
  return [...rows.filter((r) => r.stream_pos < last), ...rest.map((r) => ({ ...r, stream_pos: Number(r.stream_pos) }))];
}
