import type { DbOrTx } from '../../db/schema.js';
import type { MemberInfo } from '../state/room-head.js';
import type { RoomMembershipRow } from '../tables.js';

export async function upsertMemberships(trx: DbOrTx, rows: RoomMembershipRow[]): Promise<void> {
  for (let i = 0; i < rows.length; i += 500) {
    await trx
      .insertInto('room_memberships')
      .values(rows.slice(i, i + 500))
      .onConflict((oc) =>
        oc.columns(['room_id', 'user_id']).doUpdateSet((eb) => ({
          membership: eb.ref('excluded.membership'),
          event_id: eb.ref('excluded.event_id'),
          stream_pos: eb.ref('excluded.stream_pos'),
          sender: eb.ref('excluded.sender'),
          display_name: eb.ref('excluded.display_name'),
          avatar_url: eb.ref('excluded.avatar_url'),
          // A new membership event (re-join, invite, knock) brings a forgotten room back.
          forgotten: eb.ref('excluded.forgotten'),
        })),
      )
      .execute();
  }
}

export async function selectRoomMembers(db: DbOrTx, roomId: string): Promise<RoomMembershipRow[]> {
  return db.selectFrom('room_memberships').selectAll().where('room_id', '=', roomId).execute();
}

export async function selectUserMemberships(db: DbOrTx, userId: string): Promise<RoomMembershipRow[]> {
  return db.selectFrom('room_memberships').selectAll().where('user_id', '=', userId).execute();
}

export async function selectMembership(db: DbOrTx, roomId: string, userId: string): Promise<RoomMembershipRow | undefined> {
  return db
    .selectFrom('room_memberships')
    .selectAll()
    .where('room_id', '=', roomId)
    .where('user_id', '=', userId)
    .executeTakeFirst();
}

export async function setForgotten(db: DbOrTx, roomId: string, userId: string): Promise<void> {
  await db
    .updateTable('room_memberships')
    .set({ forgotten: 1 })
    .where('room_id', '=', roomId)
    .where('user_id', '=', userId)
    .execute();
}

export async function clearProfile(trx: DbOrTx, roomId: string, userId: string, eventId: string): Promise<void> {
  await trx
    .updateTable('room_memberships')
    .set({ display_name: null, avatar_url: null })
    .where('room_id', '=', roomId)
    .where('user_id', '=', userId)
    .where('event_id', '=', eventId)
    .execute();
}

/** Joined member counts per room, in one grouped query. */
export async function countJoined(db: DbOrTx, roomIds: string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  if (roomIds.length === 0) return out;
  const rows = await db
    .selectFrom('room_memberships')
    .select(['room_id', (eb) => eb.fn.countAll().as('n')])
    .where('room_id', 'in', roomIds)
    .where('membership', '=', 'join')
    .groupBy('room_id')
    .execute();
  for (const r of rows) out.set(r.room_id, Number(r.n));
  return out;
}

/** Users joined to any room the user is joined to. */
export async function selectUsersSharingRooms(db: DbOrTx, userId: string): Promise<string[]> {
  const rows = await db
    .selectFrom('room_memberships as mine')
    .innerJoin('room_memberships as other', 'other.room_id', 'mine.room_id')
    .select('other.user_id')
    .distinct()
    .where('mine.user_id', '=', userId)
    .where('mine.membership', '=', 'join')
    .where('other.membership', '=', 'join')
    .execute();
  return rows.map((r) => r.user_id);
}

/** The memberships row of a member as a room head holds it, at `pos`, with `membership` (a leave for a member gone). */
export function membershipRow(roomId: string, userId: string, m: MemberInfo, membership: string, pos: number): RoomMembershipRow {
  return {
    room_id: roomId,
    user_id: userId,
    membership,
    event_id: m.eventId,
    stream_pos: pos,
    sender: m.sender,
    display_name: m.displayName,
    avatar_url: m.avatarUrl,
    forgotten: 0,
  };
}
