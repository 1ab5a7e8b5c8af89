import type { DbOrTx } from '../db/schema.js';
import type { DelayedEventRow, DelayedStatus } from './tables.js';
import './tables.js';

/** delayed_events: scheduled and finalised delayed events (MSC4140). */

function row(r: DelayedEventRow): DelayedEventRow {
  return {
    ...r,
    delay_ms: Number(r.delay_ms),
    running_since: Number(r.running_since),
    send_ts: Number(r.send_ts),
    finalised_ts: r.finalised_ts === null ? null : Number(r.finalised_ts),
  };
}

export async function insertDelayedEvent(db: DbOrTx, r: DelayedEventRow): Promise<void> {
  await db.insertInto('delayed_events').values(r).execute();
}

export async function selectDelayedEvent(db: DbOrTx, delayId: string): Promise<DelayedEventRow | undefined> {
  const r = await db.selectFrom('delayed_events').selectAll().where('delay_id', '=', delayId).executeTakeFirst();
  return r ? row(r) : undefined;
}

export async function selectByTxn(db: DbOrTx, userId: string, deviceId: string, txnId: string): Promise<DelayedEventRow | undefined> {
  const r = await db
    .selectFrom('delayed_events')
    .selectAll()
    .where('user_id', '=', userId)
    .where('device_id', '=', deviceId)
    .where('txn_id', '=', txnId)
    .executeTakeFirst();
  return r ? row(r) : undefined;
}

export async function countScheduled(db: DbOrTx, userId: string): Promise<{ count: number; nextSend: number | null }> {
  const r = await db
    .selectFrom('delayed_events')
    .select((eb) => [eb.fn.countAll<number>().as('n'), eb.fn.min('send_ts').as('next')])
    .where('user_id', '=', userId)
    .where('status', '=', 'scheduled')
    .executeTakeFirst();
  return { count: Number(r?.n ?? 0), nextSend: r?.next === null || r?.next === undefined ? null : Number(r.next) };
}

export async function selectOfUser(db: DbOrTx, userId: string, statuses: DelayedStatus[], limit: number): Promise<DelayedEventRow[]> {
  const rows = await db
    .selectFrom('delayed_events')
    .selectAll()
    .where('user_id', '=', userId)
    .where('status', 'in', statuses)
    .orderBy('send_ts')
    .orderBy('delay_id')
    .limit(limit)
    .execute();
  return rows.map(row);
}

/** Moves a scheduled event's timer; false when it is no longer scheduled. */
export async function restartTimer(db: DbOrTx, delayId: string, now: number): Promise<boolean> {
  const r = await db
    .updateTable('delayed_events')
    .set((eb) => ({ running_since: now, send_ts: eb('delay_ms', '+', now) }))
    .where('delay_id', '=', delayId)
    .where('status', '=', 'scheduled')
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

/** Moves the event from one status to another; false when it was not in `from`. */
export async function moveStatus(
  db: DbOrTx,
  delayId: string,
  from: DelayedStatus[],
  to: DelayedStatus,
  extra: { event_id?: string | null; error?: string | null; finalised_ts?: number | null } = {},
): Promise<boolean> {
  const r = await db
    .updateTable('delayed_events')
    .set({ status: to, ...extra })
    .where('delay_id', '=', delayId)
    .where('status', 'in', from)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

/** Events due at `now`: scheduled ones past their time, and ones a crashed sender left half sent. */
export async function selectDue(db: DbOrTx, now: number, limit: number): Promise<DelayedEventRow[]> {
  const rows = await db
    .selectFrom('delayed_events')
    .selectAll()
    .where('status', 'in', ['scheduled', 'sending'])
    .where('send_ts', '<=', now)
    .orderBy('send_ts')
    .limit(limit)
    .execute();
  return rows.map(row);
}

/** When the next scheduled event is due, if any. */
export async function selectNextDue(db: DbOrTx): Promise<number | null> {
  const r = await db
    .selectFrom('delayed_events')
    .select((eb) => eb.fn.min('send_ts').as('next'))
    .where('status', 'in', ['scheduled', 'sending'])
    .executeTakeFirst();
  return r?.next === null || r?.next === undefined ? null : Number(r.next);
}

/** Finalised events older than `before` are forgotten. */
export async function deleteFinalisedBefore(db: DbOrTx, before: number): Promise<void> {
  await db.deleteFrom('delayed_events').where('status', 'in', ['sent', 'cancelled', 'error']).where('finalised_ts', '<', before).execute();
}
