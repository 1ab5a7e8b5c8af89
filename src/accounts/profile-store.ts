import { sql } from 'kysely';
import type { DbOrTx } from '../db/schema.js';
import type { ProfileRow } from './tables.js';

export async function insertProfile(db: DbOrTx, row: ProfileRow): Promise<void> {
  await db.insertInto('profiles').values(row).onConflict((oc) => oc.column('user_id').doNothing()).execute();
}

export async function getProfileRow(db: DbOrTx, userId: string): Promise<ProfileRow | undefined> {
  return db.selectFrom('profiles').selectAll().where('user_id', '=', userId).executeTakeFirst();
}

export async function getProfileRows(db: DbOrTx, userIds: string[]): Promise<ProfileRow[]> {
  if (userIds.length === 0) return [];
  return db.selectFrom('profiles').selectAll().where('user_id', 'in', userIds).execute();
}

export async function updateProfileRow(
  db: DbOrTx,
  userId: string,
  set: Partial<Pick<ProfileRow, 'displayname' | 'avatar_url' | 'fields' | 'search_text'>>,
): Promise<void> {
  await db.updateTable('profiles').set(set).where('user_id', '=', userId).execute();
}

export interface DirectoryHit {
  user_id: string;
  displayname: string | null;
  avatar_url: string | null;
}

/**
 * Active users whose search text has every word as a word prefix. `words`
 * hold only letters and digits (see search-text.ts), so they never carry
 * LIKE wildcards.
 */
export async function searchProfiles(db: DbOrTx, words: string[], limit: number, offset = 0): Promise<DirectoryHit[]> {
  let q = db
    .selectFrom('profiles as p')
    .innerJoin('users as u', 'u.user_id', 'p.user_id')
    .select(['p.user_id', 'p.displayname', 'p.avatar_url'])
    .where('u.deactivated', '=', 0);
  for (const w of words) q = q.where(sql<boolean>`${sql.ref('p.search_text')} like ${`% ${w}%`}`);
  return q.orderBy('p.user_id').limit(limit).offset(offset).execute();
}
