import { ALL_KEYS } from '../cluster/bus.js';
import type { Context } from '../context.js';
import type { Tx } from '../db/schema.js';
import { invalidParam, unknownToken, userLocked } from '../http/errors.js';
import type { Requester } from '../http/requester.js';
import {
  deleteAccessTokensOfDevices,
  deleteAccessTokensOfRefreshTokens,
  findAccessToken,
  insertAccessToken,
} from './access-token-store.js';
import { deleteDevices, getDevice, insertDevice, listDeviceIds, touchDevice } from './device-store.js';
import {
  deletePredecessorOf,
  deleteRefreshTokenById,
  deleteRefreshTokensOfDevices,
  findRefreshToken,
  insertRefreshToken,
  setNextRefreshToken,
} from './refresh-token-store.js';
import { newAccessToken, newDeviceId, newId, newRefreshToken, tokenHash } from './secrets.js';
import { TokenCache } from './token-cache.js';
import { getUser } from './user-store.js';

/** last_seen_ts is written at most this often per token (the spec allows it to lag by minutes). */
const SEEN_WRITE_INTERVAL_MS = 5 * 60 * 1000;
/** The bus name of the access-token cache; keys are token hashes, or a user id for all of a user's tokens. */
const TOKENS_CACHE = 'access_tokens';
/** Client-chosen device ids are opaque, but bounded. */
const MAX_DEVICE_ID_LENGTH = 255;

export interface SessionOptions {
  userId: string;
  /** A device id the client chose; reused when the user already has that device. */
  deviceId?: string;
  /** Display name for a newly created device. */
  displayName?: string;
  /** The client supports refresh tokens: the access token expires and a refresh token comes with it. */
  withRefresh: boolean;
  ip?: string;
}

export interface OpenedSession {
  userId: string;
  deviceId: string;
  accessToken: string;
  refreshToken?: string;
  expiresInMs?: number;
  /** Hashes of tokens this session replaced (the reused device's old tokens). */
  revokedHashes: string[];
  /** A new device was created: the position of its device list change, published by `finishOpen`. */
  deviceListPos: number | null;
}

/** What `deleteDevicesIn` did, for `finishDelete` to announce after commit. */
export interface DeletedDevices {
  userId: string;
  /** The ids that existed. */
  deleted: string[];
  /** Hashes of the access tokens deleted with them. */
  revoked: string[];
  /** The position of the device list change, when a device was deleted. */
  deviceListPos: number | null;
}

export interface IssuedTokens {
  accessToken: string;
  refreshToken?: string;
  expiresInMs?: number;
}

/** Login sessions: devices with their access and refresh tokens, and the access-token cache. */
export class Sessions {
  readonly cache: TokenCache;
  private readonly unsubscribe: () => void;
  private readonly pending = new Set<Promise<unknown>>();

  constructor(private readonly ctx: Context) {
    this.cache = new TokenCache(ctx.config.caches.access_tokens, { owner: ctx, name: 'access_tokens' });
    this.unsubscribe = ctx.bus.onInvalidate((msg) => {
      if (msg.cache === ALL_KEYS || (msg.cache === TOKENS_CACHE && msg.key === ALL_KEYS)) this.cache.clear();
      else if (msg.cache === TOKENS_CACHE) this.cache.drop(msg.key);
    });
  }

  async stop(): Promise<void> {
    this.unsubscribe();
    await Promise.allSettled([...this.pending]);
    this.cache.clear();
  }

  // ---- access tokens ----

  async authenticate(token: string, seen?: { ip?: string }): Promise<Requester> {
    const hash = tokenHash(token);
    // Another node may have revoked this token (or changed what the request will read) a moment ago.
    await this.ctx.bus.settle();
    const now = this.ctx.now();
    const hit = this.cache.get(hash);
    if (hit) {
      if (hit.expiresTs !== null && hit.expiresTs <= now) throw unknownToken('Access token has expired', true);
      if (now - hit.seenWrittenTs >= SEEN_WRITE_INTERVAL_MS) {
        hit.seenWrittenTs = now;
        this.background(touchDevice(this.ctx.db, hit.requester.userId, hit.requester.deviceId, now, seen?.ip));
      }
      return hit.requester;
    }

    const generation = this.cache.generation;
    const row = await findAccessToken(this.ctx.db, hash);
    if (!row || row.deactivated) throw unknownToken();
    if (row.expires_ts !== null && row.expires_ts <= now) throw unknownToken('Access token has expired', true);
    if (row.refresh_token_id !== null) {
      // Using a refreshed access token retires the refresh token it replaced (spec: "Refreshing access tokens").
      await this.retirePredecessor(row.refresh_token_id);
    }
    const requester: Requester = { userId: row.user_id, deviceId: row.device_id, isAdmin: row.is_admin === 1, tokenId: row.id };
    // Only set when true: most requesters carry neither flag.
    if (row.locked === 1) requester.locked = true;
    if (row.suspended === 1) requester.suspended = true;
    if (Number(row.is_guest) === 1) requester.isGuest = true;
    this.cache.set(hash, { requester, expiresTs: row.expires_ts, seenWrittenTs: now }, generation);
    this.background(touchDevice(this.ctx.db, row.user_id, row.device_id, now, seen?.ip));
    return requester;
  }

  /** Drops cached tokens everywhere (this node through the bus listener, other nodes through the bus). */
  publishRevoked(keys: Iterable<string>): void {
    for (const key of keys) this.ctx.bus.invalidate({ cache: TOKENS_CACHE, key });
  }

  /** In the revoking transaction: records the revocation for every node's cache (CLUSTER.md 9). */
  async revokeIn(trx: Tx, keys: string[]): Promise<void> {
    await this.ctx.bus.invalidateIn(trx, keys.map((key) => ({ cache: TOKENS_CACHE, key })));
  }

  // ---- login, registration ----

  static validateDeviceId(deviceId: string): void {
    if (deviceId.length === 0 || Buffer.byteLength(deviceId, 'utf8') > MAX_DEVICE_ID_LENGTH) {
      throw invalidParam(`device_id must be between 1 and ${MAX_DEVICE_ID_LENGTH} bytes`);
    }
  }

  /**
   * Creates (or reuses) the device, issues tokens and records a new device's
   * device list change, all in the caller's transaction. Call `finishOpen`
   * after commit.
   */
  async openIn(trx: Tx, opts: SessionOptions): Promise<OpenedSession> {
    const now = this.ctx.now();
    let deviceId = opts.deviceId;
    let createdDevice = false;
    let revokedHashes: string[] = [];
    if (deviceId !== undefined) {
      Sessions.validateDeviceId(deviceId);
      const existing = await getDevice(trx, opts.userId, deviceId);
      if (existing) {
        // Reusing a device invalidates the tokens it had (spec: "Relationship between access tokens and devices").
        revokedHashes = await deleteAccessTokensOfDevices(trx, opts.userId, [deviceId]);
        await this.revokeIn(trx, revokedHashes);
        await deleteRefreshTokensOfDevices(trx, opts.userId, [deviceId]);
        await touchDevice(trx, opts.userId, deviceId, now, opts.ip);
      } else {
        await insertDevice(trx, this.deviceRow(opts.userId, deviceId, opts, now));
        createdDevice = true;
      }
    } else {
      for (;;) {
        deviceId = newDeviceId();
        if (await insertDevice(trx, this.deviceRow(opts.userId, deviceId, opts, now))) break;
      }
      createdDevice = true;
    }
    const { accessToken, refreshToken, expiresInMs } = await this.issueIn(trx, opts.userId, deviceId, opts.withRefresh);
    // Last: it takes a stream position.
    const deviceListPos = createdDevice ? await this.ctx.services.e2ee.recordDevicesChangedIn(trx, opts.userId, [], deviceId) : null;
    return { userId: opts.userId, deviceId, accessToken, refreshToken, expiresInMs, revokedHashes, deviceListPos };
  }

  async finishOpen(s: OpenedSession): Promise<void> {
    this.publishRevoked(s.revokedHashes);
    if (s.deviceListPos !== null) await this.ctx.services.e2ee.publishDevicesChanged(s.userId, s.deviceListPos);
  }

  async open(opts: SessionOptions): Promise<OpenedSession> {
    const s = await this.ctx.db.transaction().execute((trx) => this.openIn(trx, opts));
    await this.finishOpen(s);
    return s;
  }

  private deviceRow(userId: string, deviceId: string, opts: SessionOptions, now: number) {
    return { user_id: userId, device_id: deviceId, display_name: opts.displayName ?? null, last_seen_ts: now, last_seen_ip: opts.ip ?? null };
  }

  private async issueIn(trx: Tx, userId: string, deviceId: string, withRefresh: boolean): Promise<IssuedTokens & { refreshTokenId?: string }> {
    const now = this.ctx.now();
    const accessToken = newAccessToken();
    if (!withRefresh) {
      await insertAccessToken(trx, {
        id: newId(),
        token_hash: tokenHash(accessToken),
        user_id: userId,
        device_id: deviceId,
        created_ts: now,
        expires_ts: null,
        refresh_token_id: null,
      });
      return { accessToken };
    }
    const refreshToken = newRefreshToken();
    const refreshTokenId = newId();
    const lifetime = this.ctx.config.access_token_lifetime_ms;
    await insertRefreshToken(trx, {
      id: refreshTokenId,
      token_hash: tokenHash(refreshToken),
      user_id: userId,
      device_id: deviceId,
      created_ts: now,
      next_token_id: null,
    });
    await insertAccessToken(trx, {
      id: newId(),
      token_hash: tokenHash(accessToken),
      user_id: userId,
      device_id: deviceId,
      created_ts: now,
      expires_ts: now + lifetime,
      refresh_token_id: refreshTokenId,
    });
    return { accessToken, refreshToken, expiresInMs: lifetime, refreshTokenId };
  }

  // ---- refresh ----

  /**
   * Exchanges a refresh token for a new access and refresh token. The old
   * refresh token stays usable until the new pair is used (a client that
   * lost the answer can repeat the call); repeating it discards the unused
   * pair from the earlier call.
   */
  async refresh(refreshToken: string): Promise<IssuedTokens> {
    const hash = tokenHash(refreshToken);
    const { tokens, revoked } = await this.ctx.db.transaction().execute(async (trx) => {
      const row = await findRefreshToken(trx, hash);
      if (!row) throw unknownToken('Unknown refresh token');
      // A locked account gets no new access token until it is unlocked (client-server-api "Account locking").
      if ((await getUser(trx, row.user_id))?.locked === 1) throw userLocked();
      const revoked = await this.retirePredecessorIn(trx, row.id);
      if (row.next_token_id !== null) {
        const unused = await deleteAccessTokensOfRefreshTokens(trx, [row.next_token_id]);
        await this.revokeIn(trx, unused);
        revoked.push(...unused);
        await deleteRefreshTokenById(trx, row.next_token_id);
      }
      const tokens = await this.issueIn(trx, row.user_id, row.device_id, true);
      await setNextRefreshToken(trx, row.id, tokens.refreshTokenId!);
      return { tokens, revoked };
    });
    this.publishRevoked(revoked);
    return { accessToken: tokens.accessToken, refreshToken: tokens.refreshToken, expiresInMs: tokens.expiresInMs };
  }

  private async retirePredecessor(refreshTokenId: string): Promise<void> {
    const revoked = await this.ctx.db.transaction().execute((trx) => this.retirePredecessorIn(trx, refreshTokenId));
    this.publishRevoked(revoked);
  }

  /** Deletes the refresh token that `refreshTokenId` replaced, and the access tokens issued with it. */
  private async retirePredecessorIn(trx: Tx, refreshTokenId: string): Promise<string[]> {
    const ids = await deletePredecessorOf(trx, refreshTokenId);
    const revoked = await deleteAccessTokensOfRefreshTokens(trx, ids);
    await this.revokeIn(trx, revoked);
    return revoked;
  }

  // ---- logout, device deletion ----

  /**
   * Deletes devices (all of the user's devices when `deviceIds` is
   * undefined) in one transaction; see deleteDevicesIn. Returns the ids that
   * existed.
   */
  async deleteDevices(userId: string, deviceIds: string[] | undefined): Promise<string[]> {
    const done = await this.ctx.db.transaction().execute((trx) => this.deleteDevicesIn(trx, userId, deviceIds));
    await this.finishDelete(done);
    return done.deleted;
  }

  /**
   * In the caller's transaction: deletes devices with their access and
   * refresh tokens, and (through e2ee) their keys, to-device inbox and the
   * device list change (all of the user's devices when `deviceIds` is
   * undefined, optionally sparing one). Call `finishDelete` after commit.
   */
  async deleteDevicesIn(trx: Tx, userId: string, deviceIds: string[] | undefined, opts: { except?: string } = {}): Promise<DeletedDevices> {
    let ids = deviceIds;
    if (opts.except !== undefined) {
      ids = (ids ?? (await listDeviceIds(trx, userId))).filter((d) => d !== opts.except);
    }
    const revoked = await deleteAccessTokensOfDevices(trx, userId, ids);
    await this.revokeIn(trx, revoked);
    await deleteRefreshTokensOfDevices(trx, userId, ids);
    const deleted = await deleteDevices(trx, userId, ids);
    // A deleted device's pushers would keep notifying a phone that is logged out.
    if (deleted.length > 0) await this.ctx.services.push.removePushersOfDevices(trx, userId, deleted);
    // Last: it takes a stream position.
    const deviceListPos = deleted.length > 0 ? await this.ctx.services.e2ee.recordDevicesChangedIn(trx, userId, deleted) : null;
    return { userId, deleted, revoked, deviceListPos };
  }

  /**
   * A device with no access token (a dehydrated device, MSC3814), replacing the user's device
   * `replacing` when given, with `alsoIn` run in the same transaction. False (nothing written)
   * when another device of the user already has the id.
   */
  async addDeviceWithoutToken(
    userId: string,
    deviceId: string,
    displayName: string | undefined,
    replacing: string | undefined,
    alsoIn: (trx: Tx) => Promise<void>,
  ): Promise<boolean> {
    Sessions.validateDeviceId(deviceId);
    const now = this.ctx.now();
    const done = await this.ctx.db.transaction().execute(async (trx) => {
      // Checked before the old one goes: a refused id leaves the user's devices as they were.
      if (deviceId !== replacing && (await getDevice(trx, userId, deviceId))) return null;
      const removed = replacing !== undefined ? await this.deleteDevicesIn(trx, userId, [replacing]) : null;
      await insertDevice(trx, this.deviceRow(userId, deviceId, { userId, displayName, withRefresh: false }, now));
      await alsoIn(trx);
      const pos = await this.ctx.services.e2ee.recordDevicesChangedIn(trx, userId, []);
      return { removed, pos };
    });
    if (!done) return false;
    if (done.removed) await this.finishDelete(done.removed);
    await this.ctx.services.e2ee.publishDevicesChanged(userId, done.pos);
    return true;
  }

  /** After deleteDevicesIn committed: drops the deleted tokens from every node's cache and wakes who cares about the device list. */
  async finishDelete(d: DeletedDevices, alsoRevoke: string[] = []): Promise<void> {
    this.publishRevoked([...d.revoked, ...alsoRevoke]);
    if (d.deviceListPos !== null) await this.ctx.services.e2ee.publishDevicesChanged(d.userId, d.deviceListPos);
  }

  private background(p: Promise<unknown>): void {
    const tracked = p.catch((err) => this.ctx.logger.debug({ err }, 'last-seen update failed'));
    this.pending.add(tracked);
    void tracked.finally(() => this.pending.delete(tracked));
  }
}
