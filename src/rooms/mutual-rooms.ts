/**
 * GET /_matrix/client/v1/mutual_rooms (mutual_rooms.yaml): the rooms both the caller and another
 * user are joined to, in batches. The batch token is the last room id served (rooms are listed in
 * room id order), so a room joined or left between batches shifts nothing already served.
 */
import { isValidUserId } from '../core/ids.js';
import { invalidParam, missingParam } from '../http/errors.js';
import type { RoomsService } from './service.js';

/** Rooms per batch. */
export const MUTUAL_ROOMS_BATCH = 100;

export async function mutualRooms(
  rooms: RoomsService,
  userId: string,
  q: { user_id?: unknown; from?: unknown },
): Promise<{ joined: string[]; count: number; next_batch?: string }> {
  const other = q.user_id;
  if (other === undefined) throw missingParam('Missing the user_id query parameter');
  if (typeof other !== 'string' || !isValidUserId(other)) throw invalidParam('user_id is not a valid user id');
  if (other === userId) throw invalidParam('user_id is your own user id');
  let after: string | undefined;
  if (q.from !== undefined) {
    after = typeof q.from === 'string' ? Buffer.from(q.from, 'base64url').toString('utf8') : '';
    if (!after.startsWith('!')) throw invalidParam('Unknown pagination token');
  }
  const memberships = await rooms.getMembershipsOfUsers([userId, other]);
  const joined = (u: string) => new Set(memberships.get(u)!.filter((m) => m.membership === 'join').map((m) => m.roomId));
  const theirs = joined(other);
  const shared = [...joined(userId)].filter((r) => theirs.has(r)).sort();
  const rest = after === undefined ? shared : shared.filter((r) => r > after!);
  const batch = rest.slice(0, MUTUAL_ROOMS_BATCH);
  const out: { joined: string[]; count: number; next_batch?: string } = { joined: batch, count: shared.length };
  if (rest.length > batch.length) out.next_batch = Buffer.from(batch[batch.length - 1], 'utf8').toString('base64url');
  return out;
}
