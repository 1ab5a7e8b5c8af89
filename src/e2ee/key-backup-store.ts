/**
 * SQL for server-side key backups: the backup versions of each user and the encrypted room keys
 * stored in them. The only code that touches `key_backup_versions` and `key_backup_keys`.
 *
 * Writers of one user's backups are serialised by `lockUserBackups` (taken first in the
 * transaction): the version number, the key count and the etag are read, changed in code and
 * written back, and two concurrent uploads must not lose a key or an etag step.
 */
import { sql } from 'kysely';
import { hashLockKey } from '../db/migrate.js';
import type { Dialect, DbOrTx, Tx } from '../db/schema.js';
import { chunks } from './chunk.js';

declare module '../db/schema.js' {
  interface Tables {
    key_backup_versions: KeyBackupVersionRow;
    key_backup_keys: KeyBackupKeyRow;
  }
}

/** One backup version. Deleted versions stay (flagged) so that their numbers are never reused. */
export interface KeyBackupVersionRow {
  user_id: string;
  /** Numbered from 1 per user; sent to clients as a string. */
  version: number;
  algorithm: string;
  /** JSON. */
  auth_data: string;
  /** Bumped on every change to the keys; sent to clients as a string. */
  etag: number;
  /** The number of keys stored, kept in step with `key_backup_keys`. */
  key_count: number;
  deleted: number;
}

export interface KeyBackupKeyRow {
  user_id: string;
  version: number;
  room_id: string;
  session_id: string;
  first_message_index: number;
  forwarded_count: number;
  is_verified: number;
  /** JSON, opaque to the server. */
  session_data: string;
}

/** Serialises the writers of one user's backups until the transaction ends (SQLite: one connection already does). */
export async function lockUserBackups(trx: Tx, dialect: Dialect, userId: string): Promise<void> {
  if (dialect !== 'postgres') return;
  await sql`select pg_advisory_xact_lock(${hashLockKey('key_backup')}::int4, ${hashLockKey(userId)}::int4)`.execute(trx);
}

/** The newest version that is not deleted. */
export async function getCurrentVersion(db: DbOrTx, userId: string): Promise<KeyBackupVersionRow | undefined> {
  return db
    .selectFrom('key_backup_versions')
    .selectAll()
    .where('user_id', '=', userId)
    .where('deleted', '=', 0)
    .orderBy('version', 'desc')
    .limit(1)
    .executeTakeFirst();
}

/** A version, deleted or not. */
export async function getVersion(db: DbOrTx, userId: string, version: number): Promise<KeyBackupVersionRow | undefined> {
  return db
    .selectFrom('key_backup_versions')
    .selectAll()
    .where('user_id', '=', userId)
    .where('version', '=', version)
    .executeTakeFirst();
}

/** The highest version number the user ever had, deleted ones included; 0 if none. */
export async function maxVersion(db: DbOrTx, userId: string): Promise<number> {
  const row = await db
    .selectFrom('key_backup_versions')
    .select((eb) => eb.fn.max('version').as('v'))
    .where('user_id', '=', userId)
    .executeTakeFirst();
  return Number(row?.v ?? 0);
}

export async function insertVersion(db: DbOrTx, row: KeyBackupVersionRow): Promise<void> {
  await db.insertInto('key_backup_versions').values(row).execute();
}

export async function updateAuthData(db: DbOrTx, userId: string, version: number, authData: string): Promise<void> {
  await db
    .updateTable('key_backup_versions')
    .set({ auth_data: authData })
    .where('user_id', '=', userId)
    .where('version', '=', version)
    .execute();
}

export async function setCountAndEtag(db: DbOrTx, userId: string, version: number, keyCount: number, etag: number): Promise<void> {
  await db
    .updateTable('key_backup_versions')
    .set({ key_count: keyCount, etag })
    .where('user_id', '=', userId)
    .where('version', '=', version)
    .execute();
}

/** Flags the version deleted and drops its keys. */
export async function markVersionDeleted(db: DbOrTx, userId: string, version: number): Promise<void> {
  await db.deleteFrom('key_backup_keys').where('user_id', '=', userId).where('version', '=', version).execute();
  await db
    .updateTable('key_backup_versions')
    .set({ deleted: 1, key_count: 0 })
    .where('user_id', '=', userId)
    .where('version', '=', version)
    .execute();
}

/** Which keys of the version to read or delete: all, one room's, or one session's. */
export interface KeyScope {
  roomId?: string;
  sessionId?: string;
}

export async function getKeys(db: DbOrTx, userId: string, version: number, scope: KeyScope = {}): Promise<KeyBackupKeyRow[]> {
  let q = db.selectFrom('key_backup_keys').selectAll().where('user_id', '=', userId).where('version', '=', version);
  if (scope.roomId !== undefined) q = q.where('room_id', '=', scope.roomId);
  if (scope.sessionId !== undefined) q = q.where('session_id', '=', scope.sessionId);
  return q.orderBy('room_id').orderBy('session_id').execute();
}

/** The stored keys among `sessions` (room id and session id pairs) of one version. */
export async function findKeys(
  db: DbOrTx,
  userId: string,
  version: number,
  sessions: { roomId: string; sessionId: string }[],
): Promise<KeyBackupKeyRow[]> {
  const byRoom = new Map<string, string[]>();
  for (const s of sessions) {
    const list = byRoom.get(s.roomId) ?? [];
    list.push(s.sessionId);
    byRoom.set(s.roomId, list);
  }
  const out: KeyBackupKeyRow[] = [];
  for (const [roomId, ids] of byRoom) {
    for (const part of chunks(ids)) {
      out.push(
        ...(await db
          .selectFrom('key_backup_keys')
          .selectAll()
          .where('user_id', '=', userId)
          .where('version', '=', version)
          .where('room_id', '=', roomId)
          .where('session_id', 'in', part)
          .execute()),
      );
    }
  }
  return out;
}

/** Inserts or replaces keys (the caller has decided that each one wins over what is stored). */
export async function upsertKeys(db: DbOrTx, rows: KeyBackupKeyRow[]): Promise<void> {
  // 8 columns a row: 100 rows stay far below both drivers' parameter limits.
  for (const part of chunks(rows, 100)) {
    await db
      .insertInto('key_backup_keys')
      .values(part)
      .onConflict((oc) =>
        oc.columns(['user_id', 'version', 'room_id', 'session_id']).doUpdateSet((eb) => ({
          first_message_index: eb.ref('excluded.first_message_index'),
          forwarded_count: eb.ref('excluded.forwarded_count'),
          is_verified: eb.ref('excluded.is_verified'),
          session_data: eb.ref('excluded.session_data'),
        })),
      )
      .execute();
  }
}

/** Deletes the keys in scope; returns how many were deleted. */
export async function deleteKeys(db: DbOrTx, userId: string, version: number, scope: KeyScope = {}): Promise<number> {
  let q = db.deleteFrom('key_backup_keys').where('user_id', '=', userId).where('version', '=', version);
  if (scope.roomId !== undefined) q = q.where('room_id', '=', scope.roomId);
  if (scope.sessionId !== undefined) q = q.where('session_id', '=', scope.sessionId);
  const r = await q.executeTakeFirst();
  return Number(r.numDeletedRows ?? 0);
}
