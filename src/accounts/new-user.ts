import type { Tx } from '../db/schema.js';
import { userInUse } from '../http/errors.js';
import { insertProfile } from './profile-store.js';
import { searchText } from './search-text.js';
import { insertUser } from './user-store.js';

export interface NewUser {
  userId: string;
  passwordHash: string | null;
  admin: boolean;
  /** A guest account (spec: modules/guest_access). */
  guest?: boolean;
  /** Defaults to the localpart, so clients have a name to show from the start. */
  displayName?: string;
  now: number;
}

/** Writes a new user and their profile in the caller's transaction; M_USER_IN_USE when the id is taken. */
export async function insertNewUser(trx: Tx, u: NewUser): Promise<void> {
  const inserted = await insertUser(trx, {
    user_id: u.userId,
    password_hash: u.passwordHash,
    is_admin: u.admin ? 1 : 0,
    deactivated: 0,
    locked: 0,
    suspended: 0,
    created_ts: u.now,
    is_guest: u.guest === true ? 1 : 0,
  });
  if (!inserted) throw userInUse();
  const displayname = u.displayName ?? u.userId.slice(1, u.userId.indexOf(':'));
  await insertProfile(trx, {
    user_id: u.userId,
    displayname,
    avatar_url: null,
    fields: null,
    search_text: searchText(u.userId, displayname),
  });
}
