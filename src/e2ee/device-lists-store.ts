import type { DbOrTx } from '../db/schema.js';
import { chunks } from './chunk.js';

export async function recordDeviceListChanges(db: DbOrTx, pos: number, userIds: string[]): Promise<void> {
  for (const part of chunks(userIds, 300)) {
    await db
      .insertInto('device_list_changes')
      .values(part.map((user_id) => ({ pos, user_id })))
      .onConflict((oc) => oc.columns(['pos', 'user_id']).doNothing())
      .execute();
  }
}

// Beyond this many candidates, reading the range and filtering here beats a huge IN list.
const MAX_IN_LIST = 500;

/** Users with a device list change in (fromPos, toPos], optionally only among `among`. */
export async function usersWithDeviceListChanges(db: DbOrTx, fromPos: number, toPos: number, among?: Set<string>): Promise<Set<string>> {
  const out = new Set<string>();
  if (toPos <= fromPos || (among && among.size === 0)) return out;
  const base = db
    .selectFrom('device_list_changes')
    .select('user_id')
    .distinct()
    .where('pos', '>', fromPos)
    .where('pos', '<=', toPos);
  if (among && among.size <= MAX_IN_LIST) {
    for (const part of chunks([...among])) {
      for (const r of await base.where('user_id', 'in', part).execute()) out.add(r.user_id);
    }
    return out;
  }
  for (const r of await base.execute()) if (!among || among.has(r.user_id)) out.add(r.user_id);
  return out;
}
