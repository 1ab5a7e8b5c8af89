/**
 * Server-side key backups (spec: client-server-api, end_to_end_encryption.md "Server-side key
 * backups"; key_backup.yaml). A user has numbered backup versions; keys are written only to the
 * newest one that is not deleted (the current one), read from any live one. Each version counts
 * its keys and carries an etag that changes whenever its keys change, so that a client can tell
 * whether another device added keys since it last looked.
 *
 * The room keys are encrypted by the client; the server keeps, for each session, the one copy
 * the spec's rules call best (`isBetterKey`). Every write to one user's backups runs in one
 * transaction under that user's lock, so concurrent uploads lose no key and no etag step.
 */
import type { JsonObject } from '../core/types.js';
import type { Db, DbOrTx, Dialect } from '../db/schema.js';
import {
  deleteKeys,
  findKeys,
  getCurrentVersion,
  getKeys,
  getVersion,
  insertVersion,
  lockUserBackups,
  markVersionDeleted,
  maxVersion,
  setCountAndEtag,
  updateAuthData,
  upsertKeys,
  type KeyBackupKeyRow,
  type KeyBackupVersionRow,
  type KeyScope,
} from './key-backup-store.js';

export const MEGOLM_BACKUP_V1 = 'm.megolm_backup.v1.curve25519-aes-sha2';
/** The backup algorithms the spec defines; a backup of another algorithm could not be used by any client. */
export const BACKUP_ALGORITHMS = [MEGOLM_BACKUP_V1];

export type KeyBackupErrorKind =
  /** The user has no backup version at all (writing keys, or asking for the current version). */
  | 'no_backup'
  /** The named version does not exist or was deleted. */
  | 'unknown_version'
  /** Keys were written to a version that is not the current one. */
  | 'wrong_version'
  /** The asked-for key is not in the backup. */
  | 'no_key'
  /** A PUT of a version contradicts the stored one. */
  | 'invalid';

export class KeyBackupError extends Error {
  constructor(
    readonly kind: KeyBackupErrorKind,
    message: string,
    /** For 'wrong_version': the version keys may be written to. */
    readonly currentVersion?: string,
  ) {
    super(message);
  }
}

/** KeyBackupData (definitions/key_backup_data.yaml). */
export interface KeyBackupData {
  first_message_index: number;
  forwarded_count: number;
  is_verified: boolean;
  session_data: JsonObject;
}

/** room id -> session id -> key. */
export type RoomKeys = Record<string, Record<string, KeyBackupData>>;

export interface BackupVersionInfo {
  algorithm: string;
  auth_data: JsonObject;
  count: number;
  etag: string;
  version: string;
}

/** RoomKeysUpdateResponse. */
export interface RoomKeysUpdate {
  etag: string;
  count: number;
}

/**
 * Whether `candidate` should replace the `stored` key of the same session: a verified key wins
 * over an unverified one; then the one that decrypts from an earlier message (lower
 * first_message_index); then the one forwarded fewer times. On a tie the stored key stays.
 */
export function isBetterKey(candidate: KeyBackupData, stored: KeyBackupData): boolean {
  if (candidate.is_verified !== stored.is_verified) return candidate.is_verified;
  if (candidate.first_message_index !== stored.first_message_index) {
    return candidate.first_message_index < stored.first_message_index;
  }
  return candidate.forwarded_count < stored.forwarded_count;
}

/** Version ids are decimal numbers from 1; anything else names no version. */
function parseVersion(version: string): number | undefined {
  return /^[1-9][0-9]{0,14}$/.test(version) ? Number(version) : undefined;
}

function keyOfRow(row: KeyBackupKeyRow): KeyBackupData {
  return {
    first_message_index: Number(row.first_message_index),
    forwarded_count: Number(row.forwarded_count),
    is_verified: Number(row.is_verified) === 1,
    session_data: JSON.parse(row.session_data) as JsonObject,
  };
}

function infoOfRow(row: KeyBackupVersionRow): BackupVersionInfo {
  return {
    algorithm: row.algorithm,
    auth_data: JSON.parse(row.auth_data) as JsonObject,
    count: Number(row.key_count),
    etag: String(row.etag),
    version: String(row.version),
  };
}

export class KeyBackupService {
  constructor(
    private readonly db: Db,
    private readonly dialect: Dialect,
  ) {}

  // ---- versions ----

  /** POST /room_keys/version: a new backup, which becomes the current one. Returns its version. */
  async createVersion(userId: string, algorithm: string, authData: JsonObject): Promise<string> {
    return this.db.transaction().execute(async (trx) => {
      await lockUserBackups(trx, this.dialect, userId);
      // Numbers of deleted versions are not reused: a client still holding one must not write into a stranger.
      const version = (await maxVersion(trx, userId)) + 1;
      await insertVersion(trx, {
        user_id: userId,
        version,
        algorithm,
        auth_data: JSON.stringify(authData),
        etag: 0,
        key_count: 0,
        deleted: 0,
      });
      return String(version);
    });
  }

  /** GET /room_keys/version[/{version}]: the current version when `version` is undefined. */
  async getVersionInfo(userId: string, version?: string): Promise<BackupVersionInfo> {
    if (version === undefined) {
      const row = await getCurrentVersion(this.db, userId);
      if (!row) throw new KeyBackupError('no_backup', 'No current backup version');
      return infoOfRow(row);
    }
    return infoOfRow(await this.liveVersion(this.db, userId, version));
  }

  /**
   * PUT /room_keys/version/{version}: only `auth_data` may change (a client adds signatures to
   * it). The algorithm, the version and the backup's public key must stay: keys already stored
   * were encrypted for them.
   */
  async updateVersion(
    userId: string,
    version: string,
    body: { algorithm: string; auth_data: JsonObject; version?: string },
  ): Promise<void> {
    if (body.version !== undefined && body.version !== version) {
      throw new KeyBackupError('invalid', 'The version in the body does not match the version in the path');
    }
    await this.db.transaction().execute(async (trx) => {
      await lockUserBackups(trx, this.dialect, userId);
      const row = await this.liveVersion(trx, userId, version);
      if (body.algorithm !== row.algorithm) throw new KeyBackupError('invalid', 'Algorithm does not match');
      const stored = JSON.parse(row.auth_data) as JsonObject;
      if (
        row.algorithm === MEGOLM_BACKUP_V1 &&
        stored.public_key !== undefined &&
        body.auth_data.public_key !== stored.public_key
      ) {
        throw new KeyBackupError('invalid', 'auth_data.public_key does not match the backup; create a new version instead');
      }
      await updateAuthData(trx, userId, row.version, JSON.stringify(body.auth_data));
    });
  }

  /** DELETE /room_keys/version/{version}: the version and its keys. Deleting it again succeeds. */
  async deleteVersion(userId: string, version: string): Promise<void> {
    const v = parseVersion(version);
    if (v === undefined) throw new KeyBackupError('unknown_version', 'Unknown backup version');
    await this.db.transaction().execute(async (trx) => {
      await lockUserBackups(trx, this.dialect, userId);
      const row = await getVersion(trx, userId, v);
      if (!row) throw new KeyBackupError('unknown_version', 'Unknown backup version');
      if (Number(row.deleted) === 0) await markVersionDeleted(trx, userId, v);
    });
  }

  // ---- keys ----

  /** PUT /room_keys/keys[/{roomId}[/{sessionId}]]: stores each key unless the stored one is better. */
  async uploadKeys(userId: string, version: string, rooms: RoomKeys): Promise<RoomKeysUpdate> {
    const uploaded: { roomId: string; sessionId: string; key: KeyBackupData }[] = [];
    for (const [roomId, sessions] of Object.entries(rooms)) {
      for (const [sessionId, key] of Object.entries(sessions)) uploaded.push({ roomId, sessionId, key });
    }
    return this.db.transaction().execute(async (trx) => {
      await lockUserBackups(trx, this.dialect, userId);
      const current = await getCurrentVersion(trx, userId);
      if (!current) throw new KeyBackupError('no_backup', 'No current backup version');
      if (String(current.version) !== version) {
        throw new KeyBackupError('wrong_version', 'Wrong backup version', String(current.version));
      }
      const stored = new Map<string, KeyBackupData>();
      for (const row of await findKeys(trx, userId, current.version, uploaded)) {
        stored.set(`${row.room_id}\u0000${row.session_id}`, keyOfRow(row));
      }
      const winners: KeyBackupKeyRow[] = [];
      let added = 0;
      for (const { roomId, sessionId, key } of uploaded) {
        const old = stored.get(`${roomId}\u0000${sessionId}`);
        if (old && !isBetterKey(key, old)) continue;
        if (!old) added++;
        winners.push({
          user_id: userId,
          version: current.version,
          room_id: roomId,
          session_id: sessionId,
          first_message_index: key.first_message_index,
          forwarded_count: key.forwarded_count,
          is_verified: key.is_verified ? 1 : 0,
          session_data: JSON.stringify(key.session_data),
        });
      }
      let count = Number(current.key_count);
      let etag = Number(current.etag);
      if (winners.length > 0) {
        await upsertKeys(trx, winners);
        count += added;
        etag += 1;
        await setCountAndEtag(trx, userId, current.version, count, etag);
      }
      return { etag: String(etag), count };
    });
  }

  /** GET /room_keys/keys[/{roomId}]: the keys in scope, by room and session. */
  async getKeys(userId: string, version: string, scope: KeyScope = {}): Promise<RoomKeys> {
    const row = await this.liveVersion(this.db, userId, version);
    const rooms: RoomKeys = {};
    for (const k of await getKeys(this.db, userId, row.version, scope)) {
      (rooms[k.room_id] ??= {})[k.session_id] = keyOfRow(k);
    }
    return rooms;
  }

  /** GET /room_keys/keys/{roomId}/{sessionId}. */
  async getKey(userId: string, version: string, roomId: string, sessionId: string): Promise<KeyBackupData> {
    const key = (await this.getKeys(userId, version, { roomId, sessionId }))[roomId]?.[sessionId];
    if (!key) throw new KeyBackupError('no_key', 'No key found for this session');
    return key;
  }

  /** DELETE /room_keys/keys[/{roomId}[/{sessionId}]]. Allowed on any live version, not only the current one. */
  async deleteKeys(userId: string, version: string, scope: KeyScope = {}): Promise<RoomKeysUpdate> {
    return this.db.transaction().execute(async (trx) => {
      await lockUserBackups(trx, this.dialect, userId);
      const row = await this.liveVersion(trx, userId, version);
      const deleted = await deleteKeys(trx, userId, row.version, scope);
      let count = Number(row.key_count);
      let etag = Number(row.etag);
      if (deleted > 0) {
        count -= deleted;
        etag += 1;
        await setCountAndEtag(trx, userId, row.version, count, etag);
      }
      return { etag: String(etag), count };
    });
  }

  private async liveVersion(db: DbOrTx, userId: string, version: string): Promise<KeyBackupVersionRow> {
    const v = parseVersion(version);
    const row = v === undefined ? undefined : await getVersion(db, userId, v);
    if (!row || Number(row.deleted) !== 0) throw new KeyBackupError('unknown_version', 'Unknown backup version');
    return row;
  }
}
