import type { DbOrTx } from '../db/schema.js';
import type { UserRow } from './tables.js';

/** Inserts a user; false when the user id is taken. */
export async function insertUser(db: DbOrTx, row: UserRow): Promise<boolean> {
  const r = await db.insertInto('users').values(row).onConflict((oc) => oc.column('user_id').doNothing()).returning('user_id').executeTakeFirst();
  return r !== undefined;
}

export async function getUser(db: DbOrTx, userId: string): Promise<UserRow | undefined> {
  return db.selectFrom('users').selectAll().where('user_id', '=', userId).executeTakeFirst();
}

export async function setPasswordHash(db: DbOrTx, userId: string, hash: string | null): Promise<void> {
  await db.updateTable('users').set({ password_hash: hash }).where('user_id', '=', userId).execute();
}

/** Marks the user deactivated and forgets the password, so nobody can log in as them again. */
export async function markDeactivated(db: DbOrTx, userId: string): Promise<void> {
  await db.updateTable('users').set({ deactivated: 1, password_hash: null }).where('user_id', '=', userId).execute();
}

/** Turns a guest account into a full one with a password (spec: modules/guest_access); false when it was no guest. */
export async function upgradeGuest(db: DbOrTx, userId: string, passwordHash: string): Promise<boolean> {
  const r = await db
    .updateTable('users')
    .set({ is_guest: 0, password_hash: passwordHash })
    .where('user_id', '=', userId)
    .where('is_guest', '=', 1)
    .where('deactivated', '=', 0)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

/** The guest accounts among the users (one query per few hundred). */
export async function selectGuests(db: DbOrTx, userIds: string[]): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < userIds.length; i += 500) {
    const part = userIds.slice(i, i + 500);
    const rows = await db.selectFrom('users').select('user_id').where('user_id', 'in', part).where('is_guest', '=', 1).execute();
    for (const r of rows) out.push(r.user_id);
  }
  return out;
}
