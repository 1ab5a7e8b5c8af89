/**
 * push_read_upto: where a user has read up to in a room (their furthest
 * m.read / m.read.private receipt, or their own latest event). Unread counts
 * start after it; GET /notifications marks what is at or before it as read.
 */
import { prepared } from '../db/prepared.js';
import type { DbOrTx } from '../db/schema.js';
import type { StatementSink } from '../db/pg-pipeline.js';
import { chunks } from './chunk.js';

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

/** As advanceReadUpto, written to a statement sink (the pipeline). */
export function advanceReadUptoVia(tx: StatementSink, userId: string, roomId: string, streamPos: number): void {
  tx.run(upsertReadUpto, { userId, roomId, streamPos });
}

/** Moves the user's read position in a room forward (never back). Runs on every send: prepared. */
export async function advanceReadUpto(db: DbOrTx, userId: string, roomId: string, streamPos: number): Promise<void> {
  await upsertReadUpto.execute(db, { userId, roomId, streamPos });
}

/** The user's read positions in the rooms (rooms never read are absent). */
export async function selectReadUpto(db: DbOrTx, userId: string, roomIds: string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const part of chunks(roomIds)) {
    const rows = await db.selectFrom('push_read_upto').select(['room_id', 'stream_pos']).where('user_id', '=', userId).where('room_id', 'in', part).execute();
    for (const r of rows) out.set(r.room_id, Number(r.stream_pos));
  }
  return out;
}
