import type { Context } from '../context.js';
import type { JsonObject } from '../core/types.js';
import { lockForUpdate } from '../db/row-lock.js';
import { nextPosition } from '../db/stream-positions.js';
import { selectReceipt, selectReceiptChanges, upsertReceipt } from './receipts-store.js';

export type ReceiptType = 'm.read' | 'm.read.private';

/**
 * Read receipts (spec: "Receipts"): the latest receipt per (room, user,
 * type, thread), each change on the 'receipts' stream. `m.read.private` is
 * only ever shown to its owner.
 */
export class Receipts {
  constructor(private readonly ctx: Context) {}

  /**
   * Stores a receipt unless it would move backwards.
   *
   * A receipt means "read up to and including" its event, and each (user,
   * type, thread) tuple has a single event (spec: client-server "Receipts",
   * and "Events": "must be associated with only a single event_id"). So a
   * receipt for an event at or before the stored one says nothing new and
   * is dropped: of concurrent receipts, the one on the most recent event
   * (the highest stream position) stays, whichever commits last. The
   * receipt's key is locked for the read and the write (lockForUpdate), so
   * the comparison is made against the committed row, and the row's
   * stream position is the one its /sync delta carries.
   */
  async set(r: { roomId: string; userId: string; type: ReceiptType; threadId: string | null; eventId: string; eventPos: number }): Promise<void> {
    const key = { roomId: r.roomId, userId: r.userId, receiptType: r.type, threadId: r.threadId ?? '' };
    const pos = await this.ctx.db.transaction().execute(async (trx) => {
      await lockForUpdate(trx, this.ctx.dialect, 'receipts', JSON.stringify([key.roomId, key.userId, key.receiptType, key.threadId]));
      const old = await selectReceipt(trx, key);
      if (old && (old.event_pos > r.eventPos || old.event_id === r.eventId)) return 0;
      const p = await nextPosition(trx, 'receipts');
      await upsertReceipt(trx, {
        room_id: r.roomId,
        user_id: r.userId,
        receipt_type: r.type,
        thread_id: key.threadId,
        event_id: r.eventId,
        event_pos: r.eventPos,
        ts: this.ctx.now(),
        stream_pos: p,
      });
      return p;
    });
    if (pos === 0) return;
    // A private receipt concerns its owner only; a public one the whole room.
    this.ctx.bus.publish({ stream: 'receipts', pos, userIds: [r.userId], ...(r.type === 'm.read' ? { roomId: r.roomId } : {}) });
  }

  /** One `m.receipt` content per room for receipts changed in (fromPos, toPos]. */
  async changes(roomIds: string[], fromPos: number, toPos: number, viewer: string): Promise<Map<string, JsonObject>> {
    const out = new Map<string, JsonObject>();
    if (fromPos >= toPos || roomIds.length === 0) return out;
    const rows = await selectReceiptChanges(this.ctx.db, roomIds, fromPos, toPos, viewer);
    for (const row of rows) {
      let content = out.get(row.room_id);
      if (!content) out.set(row.room_id, (content = {}));
      const byType = (content[row.event_id] ??= {}) as JsonObject;
      const byUser = (byType[row.receipt_type] ??= {}) as JsonObject;
      const info: JsonObject = { ts: row.ts };
      if (row.thread_id !== '') info.thread_id = row.thread_id;
      byUser[row.user_id] = info;
    }
    return out;
  }
}
