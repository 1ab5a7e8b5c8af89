import type { DbOrTx } from '../../db/schema.js';

export async function upsertCurrentState(
  trx: DbOrTx,
  roomId: string,
  entries: Array<[string, string, string]>,
): Promise<void> {
  for (let i = 0; i < entries.length; i += 500) {
    await trx
      .insertInto('current_state')
      .values(entries.slice(i, i + 500).map(([type, stateKey, eventId]) => ({ room_id: roomId, type, state_key: stateKey, event_id: eventId })))
      .onConflict((oc) => oc.columns(['room_id', 'type', 'state_key']).doUpdateSet((eb) => ({ event_id: eb.ref('excluded.event_id') })))
      .execute();
  }
}

export async function deleteCurrentState(trx: DbOrTx, roomId: string, keys: Array<[string, string]>): Promise<void> {
  for (const [type, stateKey] of keys) {
    await trx
      .deleteFrom('current_state')
      .where('room_id', '=', roomId)
      .where('type', '=', type)
      .where('state_key', '=', stateKey)
      .execute();
  }
}

export async function selectCurrentState(db: DbOrTx, roomId: string): Promise<{ type: string; state_key: string; event_id: string }[]> {
  return db.selectFrom('current_state').select(['type', 'state_key', 'event_id']).where('room_id', '=', roomId).execute();
}

/** Current state event ids of some types across rooms (public room summaries). */
export async function selectCurrentStateOfTypes(
  db: DbOrTx,
  roomIds: string[],
  types: string[],
): Promise<{ room_id: string; type: string; state_key: string; event_id: string }[]> {
  if (roomIds.length === 0) return [];
  return db
    .selectFrom('current_state')
    .select(['room_id', 'type', 'state_key', 'event_id'])
    .where('room_id', 'in', roomIds)
    .where('type', 'in', types)
    .where('state_key', '=', '')
    .execute();
}

/** The current event at one state key in each of `roomIds` that has one: [room_id, event_id] rows. */
export async function selectStateKeyInRooms(db: DbOrTx, roomIds: readonly string[], type: string, stateKey: string): Promise<{ room_id: string; event_id: string }[]> {
  const out: { room_id: string; event_id: string }[] = [];
  for (let i = 0; i < roomIds.length; i += 500) {
    const part = roomIds.slice(i, i + 500);
    out.push(...(await db.selectFrom('current_state').select(['room_id', 'event_id']).where('room_id', 'in', part).where('type', '=', type).where('state_key', '=', stateKey).execute()));
  }
  return out;
}
