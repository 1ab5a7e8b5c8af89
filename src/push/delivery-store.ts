/**
 * What the pusher (delivery.ts) reads and writes: its position in the
 * stream of push outcomes, the outcomes after it in stream order, and for
 * one outcome the HTTP pushers of the users it notifies (joined at the event
 * by push_member_spans, or invited by it, not its sender, with a level of at
 * least "notify" from their exception or the base; push-outcomes-store.ts
 * explains the layout).
 */
import { sql } from 'kysely';
import { prepared } from '../db/prepared.js';
import type { DbOrTx } from '../db/schema.js';
import type { PushOutcomeRow, PusherRow } from './tables.js';

export async function selectDeliveryPosition(db: DbOrTx, name: string): Promise<number | null> {
  const row = await db.selectFrom('push_delivery_position').select('stream_pos').where('name', '=', name).executeTakeFirst();
  return row ? Number(row.stream_pos) : null;
}

export async function putDeliveryPosition(db: DbOrTx, name: string, pos: number): Promise<void> {
  await db
    .insertInto('push_delivery_position')
    .values({ name, stream_pos: pos })
    .onConflict((oc) => oc.column('name').doUpdateSet({ stream_pos: pos }))
    .execute();
}

// Built once: push delivery asks both after every burst of events.
const selectAnHttpPusher = prepared((db, _p: Record<string, never>) => db.selectFrom('pushers').select('user_id').where('kind', '=', 'http').limit(1));
const selectNewestPos = prepared((db, _p: Record<string, never>) => db.selectFrom('events').select((eb) => eb.fn.max('stream_pos').as('pos')));

/** Whether any user has an HTTP pusher (while none has, outcomes need no reading). */
export async function anyHttpPusher(db: DbOrTx): Promise<boolean> {
  return (await selectAnHttpPusher.execute(db, {})).rows.length > 0;
}

/** The newest stored event's position (0 when there is none): outcomes are stored with their events. */
export async function selectNewestOutcomePos(db: DbOrTx): Promise<number> {
  const [row] = (await selectNewestPos.execute(db, {})).rows;
  return Number(row?.pos ?? 0);
}

/**
 * Outcomes after `pos` and up to `upTo` in stream order, at most `limit`. They are found through
 * the events' stream index (an outcome has its event's room and position), so push_outcomes needs
 * no index of its own by position.
 */
export async function selectOutcomesAfter(db: DbOrTx, pos: number, upTo: number, limit: number): Promise<PushOutcomeRow[]> {
  const rows = await db
    .selectFrom('events as e')
    .innerJoin('push_outcomes as o', (j) => j.onRef('o.room_id', '=', 'e.room_id').onRef('o.stream_pos', '=', 'e.stream_pos'))
    .selectAll('o')
    .where('e.stream_pos', '>', pos)
    .where('e.stream_pos', '<=', upTo)
    .orderBy('e.stream_pos')
    .limit(limit)
    .execute();
  return rows.map((r) => ({ ...r, stream_pos: Number(r.stream_pos), base: Number(r.base), ts: Number(r.ts) }));
}

export interface PushTarget {
  pusher: PusherRow;
  /** 1 notify, 2 notify and highlight. */
  level: number;
  /** The actions (JSON) of the rule that matched for this user. */
  actions: string;
}

/** The HTTP pushers of every user the outcome notifies. */
export async function selectPushTargets(db: DbOrTx, o: PushOutcomeRow): Promise<PushTarget[]> {
  const rows = await db
    .selectFrom('pushers as p')
    .leftJoin('push_outcome_exceptions as x', (j) =>
      j.on('x.room_id', '=', o.room_id).on('x.stream_pos', '=', o.stream_pos).onRef('x.user_id', '=', 'p.user_id'),
    )
    .selectAll('p')
    .select(['x.level as x_level', 'x.actions as x_actions'])
    .where('p.kind', '=', 'http')
    .where('p.user_id', '<>', o.sender)
    .where(sql<number>`coalesce(x.level, ${o.base})`, '>=', 1)
    .where((eb) =>
      eb.or([
        // The invitee of an invite is not joined: their exception says the outcome is theirs.
        eb('x.invitee', '=', 1),
        eb.exists(
          eb
            .selectFrom('push_member_spans as s')
            .select('s.joined_pos')
            .whereRef('s.user_id', '=', 'p.user_id')
            .where('s.room_id', '=', o.room_id)
            .where('s.joined_pos', '<', o.stream_pos)
            .where((e) => e.or([e('s.left_pos', 'is', null), e('s.left_pos', '>=', o.stream_pos)])),
        ),
      ]),
    )
    .execute();
  return rows.map(({ x_level, x_actions, ...p }) => {
    const own = x_level !== null;
    return {
      pusher: { ...p, ts: Number(p.ts) },
      level: Number(own ? x_level : o.base),
      actions: (own ? x_actions : o.actions) ?? '["notify"]',
    };
  });
}
