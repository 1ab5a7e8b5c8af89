import { createHash } from 'node:crypto';
import type { DbOrTx } from '../../db/schema.js';
import { nextPositions } from '../../db/stream-positions.js';
import type { JsonObject } from '../../core/types.js';
import type { Edu } from './destination-queue.js';

/** A stored EDU read back for sending. */
export interface StoredEdu {
  pos: number;
  edu: Edu;
}

/** The same EDU for the same server has the same key, whichever node writes it. */
export function dedupeKeyOf(edu: Edu): string {
  return createHash('sha256').update(edu.edu_type).update('\0').update(JSON.stringify(edu.content)).digest('base64url');
}

/**
 * What makes an older stored EDU for the same server old news, or null when nothing does. A read
 * receipt of one user in one room and thread: the server needs only the newest (a receipt says
 * "read up to here"). Other stored types are never superseded: each to-device message is its
 * own, and device-list updates form a chain (`prev_id`) the receiver checks.
 */
export function supersedeKeyOf(edu: Edu): string | null {
  if (edu.edu_type !== 'm.receipt') return null;
  const rooms = Object.entries(edu.content);
  if (rooms.length !== 1) return null;
  const [roomId, byType] = rooms[0]!;
  const types = typeof byType === 'object' && byType !== null && !Array.isArray(byType) ? Object.entries(byType) : [];
  if (types.length !== 1 || types[0]![0] !== 'm.read') return null;
  const read = types[0]![1];
  const users = typeof read === 'object' && read !== null && !Array.isArray(read) ? Object.entries(read) : [];
  if (users.length !== 1) return null;
  const [userId, receipt] = users[0]!;
  const threadId = (receipt as { data?: { thread_id?: unknown } } | null)?.data?.thread_id;
  const key = JSON.stringify(['m.receipt', roomId, userId, typeof threadId === 'string' ? threadId : null]);
  return createHash('sha256').update(key).digest('base64url');
}

/**
 * Stores `edu` for each of `destinations`, in the caller's transaction. The positions are taken
 * from the federation_edus counter, whose row stays locked until commit: a queue that read the
 * table up to some position never sees a row below it commit afterwards. An EDU already stored
 * for a server (same dedupe key) is not stored again.
 */
export async function insertOutboundEdus(trx: DbOrTx, items: { destination: string; edu: Edu }[], now: number): Promise<void> {
  if (items.length === 0) return;
  const first = await nextPositions(trx, 'federation_edus', items.length);
  await trx
    .insertInto('federation_outbound_edus')
    .values(
      items.map((it, i) => ({
        destination: it.destination,
        pos: first + i,
        edu_type: it.edu.edu_type,
        content_json: JSON.stringify(it.edu.content),
        dedupe_key: dedupeKeyOf(it.edu),
        supersede_key: supersedeKeyOf(it.edu),
        created_ts: now,
      })),
    )
    .onConflict((oc) => oc.columns(['destination', 'dedupe_key']).doNothing())
    .execute();
}

/** The stored EDUs for `destination` after `after`, in order, at most `limit`. */
export async function selectOutboundEdus(db: DbOrTx, destination: string, after: number, limit: number): Promise<StoredEdu[]> {
  const rows = await db
    .selectFrom('federation_outbound_edus')
    .select(['pos', 'edu_type', 'content_json'])
    .where('destination', '=', destination)
    .where('pos', '>', after)
    .orderBy('pos')
    .limit(limit)
    .execute();
  return rows.map((r) => ({ pos: Number(r.pos), edu: { edu_type: r.edu_type, content: JSON.parse(r.content_json) as JsonObject } }));
}

/** Drops what `destination` took: its EDUs up to `upTo`. */
export async function deleteOutboundEdus(db: DbOrTx, destination: string, upTo: number): Promise<void> {
  await db.deleteFrom('federation_outbound_edus').where('destination', '=', destination).where('pos', '<=', upTo).execute();
}

/** The servers with stored EDUs waiting. */
export async function selectEduDestinations(db: DbOrTx): Promise<string[]> {
  const rows = await db.selectFrom('federation_outbound_edus').select('destination').distinct().execute();
  return rows.map((r) => r.destination);
}

/** Drops stored EDUs that a newer one for the same server and with the same supersede key repeats. */
export async function deleteSupersededEdus(db: DbOrTx): Promise<number> {
  const r = await db
    .deleteFrom('federation_outbound_edus as o')
    .where('o.supersede_key', 'is not', null)
    .where((eb) =>
      eb.exists(
        eb
          .selectFrom('federation_outbound_edus as n')
          .select('n.pos')
          .whereRef('n.destination', '=', 'o.destination')
          .whereRef('n.supersede_key', '=', 'o.supersede_key')
          .whereRef('n.pos', '>', 'o.pos'),
      ),
    )
    .executeTakeFirst();
  return Number(r.numDeletedRows);
}

/** Drops stored EDUs stored before `beforeTs`, whatever their server. */
export async function deleteEdusStoredBefore(db: DbOrTx, beforeTs: number): Promise<number> {
  const r = await db.deleteFrom('federation_outbound_edus').where('created_ts', '<', beforeTs).executeTakeFirst();
  return Number(r.numDeletedRows);
}
