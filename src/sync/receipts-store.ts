import type { DbOrTx } from '../db/schema.js';
import type { ReceiptRow } from './tables.js';

/** sync_receipts: the latest receipt per (room, user, type, thread). */

export async function selectReceipt(
  db: DbOrTx,
  key: { roomId: string; userId: string; receiptType: string; threadId: string },
): Promise<ReceiptRow | undefined> {
  return db
    .selectFrom('sync_receipts')
    .selectAll()
    .where('room_id', '=', key.roomId)
    .where('user_id', '=', key.userId)
    .where('receipt_type', '=', key.receiptType)
    .where('thread_id', '=', key.threadId)
    .executeTakeFirst();
}

export async function upsertReceipt(db: DbOrTx, row: ReceiptRow): Promise<void> {
  await db
    .insertInto('sync_receipts')
    .values(row)
    .onConflict((oc) =>
      oc.columns(['room_id', 'user_id', 'receipt_type', 'thread_id']).doUpdateSet({
        event_id: row.event_id,
        event_pos: row.event_pos,
        ts: row.ts,
        stream_pos: row.stream_pos,
      }),
    )
    .execute();
}

/**
 * Receipts in the given rooms changed in (fromPos, toPos]. Private receipts
 * are only returned for `viewer`.
 */
export async function selectReceiptChanges(
  db: DbOrTx,
  roomIds: string[],
  fromPos: number,
  toPos: number,
  viewer: string,
): Promise<ReceiptRow[]> {
  if (roomIds.length === 0) return [];
  const out: ReceiptRow[] = [];
  for (const chunk of chunks(roomIds, 500)) {
    const rows = await db
      .selectFrom('sync_receipts')
      .selectAll()
      .where('room_id', 'in', chunk)
      .where('stream_pos', '>', fromPos)
      .where('stream_pos', '<=', toPos)
      .where((eb) => eb.or([eb('receipt_type', '!=', 'm.read.private'), eb('user_id', '=', viewer)]))
      .execute();
    out.push(...rows);
  }
  return out;
}

export function chunks<T>(list: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
}
