import type { Context } from '../context.js';
import { isValidUserId, serverNameOf } from '../core/ids.js';
import type { JsonObject } from '../core/types.js';
import type { Tx } from '../db/schema.js';
import { nextPosition, nextPositions } from '../db/stream-positions.js';
import type { Requester } from '../http/requester.js';
import { MatrixError, invalidParam } from '../http/errors.js';
import { deleteSignaturesOn } from './cross-signing-store.js';
import { recordDeviceListChanges, usersWithDeviceListChanges } from './device-lists-store.js';
import { checkDeviceKeys, comparableJson, parseKeyMap } from './key-objects.js';
import {
  countOneTimeKeys,
  countOneTimeKeysOfDevices,
  deviceKey,
  unusedFallbackAlgorithmsOfDevices,
  deleteDeviceData,
  findOneTimeKeys,
  getDeviceKeys,
  getDeviceKeysOfUsers,
  getFallbackKeys,
  insertOneTimeKeys,
  putDeviceKeys,
  putFallbackKey,
  unusedFallbackAlgorithms,
} from './keys-store.js';
import { CrossSigning } from './cross-signing.js';
import { KeyClaims, NO_FEDERATION, type OneTimeKeysAnswer } from './key-claims.js';
import { readKeys, type KeysQueryResult } from './key-reads.js';
import { byServer, DEFAULT_KEYS_TIMEOUT_MS, queryRemoteKeys, type RemoteKeys } from './federated-keys.js';
import { LocalDeviceLists } from './local-device-lists.js';
import { RemoteDeviceLists } from './remote-device-lists.js';
import { ToDevice } from './to-device.js';
import type { KeyTrackingPositions } from './sync-token.js';
import {
  deleteToDevice,
  deleteToDeviceUpTo,
  pruneToDeviceTxns,
  readToDevice,
} from './to-device-store.js';

const TXN_RETENTION_MS = 24 * 60 * 60 * 1000;
/**
 * One-time keys a device may hold per algorithm. Clients keep about half of what their account
 * can hold published (vodozemac 50, libolm 100); the cap keeps a misbehaving client from
 * filling the database.
 */
export const MAX_ONE_TIME_KEYS = 1000;


/**
 * Device keys, one-time and fallback keys, cross-signing keys, to-device
 * messages and device list changes. Methods below "cross-domain API" are
 * used by sync and accounts.
 */
export class E2eeService {
  private lastSeq = 0;
  private pruneTimer: NodeJS.Timeout | undefined;

  private readonly crossSigning: CrossSigning;
  private readonly claims: KeyClaims;

  /** Copies of remote users' device lists (remote-device-lists.ts). */
  readonly remoteLists: RemoteDeviceLists;
  private readonly toDevice: ToDevice;
  /** This server's users' device lists as other servers see them (local-device-lists.ts). */
  readonly localLists: LocalDeviceLists;

  constructor(private readonly ctx: Context) {
    this.remoteLists = new RemoteDeviceLists(ctx);
    this.claims = new KeyClaims(ctx);
    this.toDevice = new ToDevice(ctx, { deviceIdsOf: (us) => this.deviceIdsOf(us) });
    this.localLists = new LocalDeviceLists(ctx, (users, wanted, viewer) => readKeys(ctx, users, wanted, viewer));
    this.crossSigning = new CrossSigning(ctx, { audienceOf: (u) => this.audienceOf(u), deviceIdsOf: (us) => this.deviceIdsOf(us) });
  }

  async start(): Promise<void> {
    if (this.federates()) await this.remoteLists.start();
    this.pruneTimer = setInterval(() => {
      pruneToDeviceTxns(this.ctx.db, this.ctx.now() - TXN_RETENTION_MS).catch((e: unknown) =>
        this.ctx.logger.warn({ err: e }, 'pruning to-device transaction ids failed'),
      );
    }, 60 * 60 * 1000);
    this.pruneTimer.unref();
  }

  async stop(): Promise<void> {
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    await this.remoteLists.stop();
  }

  // ---- /keys/upload ----

  async uploadKeys(requester: Requester, body: JsonObject): Promise<{ one_time_key_counts: Record<string, number> }> {
    const { userId, deviceId } = requester;
    const deviceKeys = body.device_keys === undefined || body.device_keys === null ? undefined : checkDeviceKeys(body.device_keys, userId, deviceId);
    const otks = parseKeyMap(body.one_time_keys, 'one_time_keys');
    const fallbacks = parseKeyMap(body.fallback_keys ?? body['org.matrix.msc2732.fallback_keys'], 'fallback_keys');
    const perAlgorithm = new Set<string>();
    for (const f of fallbacks) {
      if (perAlgorithm.has(f.algorithm)) throw invalidParam(`Only one fallback key per algorithm: ${f.algorithm}`);
      perAlgorithm.add(f.algorithm);
    }

    // Who must hear about a new device key: read before the transaction (SQLite has one connection).
    let audience: string[] | undefined;
    if (deviceKeys) {
      const stored = await getDeviceKeys(this.ctx.db, userId, deviceId);
      if (!stored || comparableJson(JSON.parse(stored.json)) !== comparableJson(deviceKeys)) {
        audience = await this.audienceOf(userId);
      }
    }

    const seq = this.nextSeq();
    const changedPos = await this.ctx.db.transaction().execute(async (trx) => {
      if (otks.length > 0) {
        const existing = await findOneTimeKeys(trx, userId, deviceId, otks.map((k) => k.keyId));
        const known = new Map(existing.map((r) => [`${r.algorithm}:${r.key_id}`, r.json]));
        const fresh = [];
        for (const k of otks) {
          const old = known.get(`${k.algorithm}:${k.keyId}`);
          if (old === undefined) fresh.push(k);
          else if (comparableJson(JSON.parse(old)) !== comparableJson(JSON.parse(k.json))) {
            throw invalidParam(`One-time key ${k.algorithm}:${k.keyId} already exists with different content`);
          }
        }
        if (fresh.length > 0) {
          const held = await countOneTimeKeys(trx, userId, deviceId);
          const adding = new Map<string, number>();
          for (const k of fresh) adding.set(k.algorithm, (adding.get(k.algorithm) ?? 0) + 1);
          for (const [algorithm, n] of adding) {
            const have = held[algorithm] ?? 0;
            if (have + n > MAX_ONE_TIME_KEYS) {
              throw new MatrixError(400, 'M_TOO_LARGE', `A device holds at most ${MAX_ONE_TIME_KEYS} ${algorithm} one-time keys; this one has ${have} and the upload adds ${n}`);
            }
          }
        }
        await insertOneTimeKeys(
          trx,
          fresh.map((k) => ({ user_id: userId, device_id: deviceId, algorithm: k.algorithm, key_id: k.keyId, json: k.json, seq })),
        );
      }
      if (fallbacks.length > 0) {
        const current = new Map((await getFallbackKeys(trx, userId, deviceId)).map((r) => [r.algorithm, r]));
        for (const f of fallbacks) {
          const old = current.get(f.algorithm);
          // Re-uploading the same key keeps its `used` state; a new key starts unused.
          if (old && old.key_id === f.keyId && comparableJson(JSON.parse(old.json)) === comparableJson(JSON.parse(f.json))) continue;
          await putFallbackKey(trx, { user_id: userId, device_id: deviceId, algorithm: f.algorithm, key_id: f.keyId, json: f.json, used: 0 });
        }
      }
      if (deviceKeys && audience) {
        const previous = await getDeviceKeys(trx, userId, deviceId);
        // Signatures made over the old identity keys no longer apply.
        if (previous) await deleteSignaturesOn(trx, userId, [deviceId]);
        const pos = await nextPosition(trx, 'device_lists');
        await putDeviceKeys(trx, { user_id: userId, device_id: deviceId, json: JSON.stringify(deviceKeys), pos });
        await recordDeviceListChanges(trx, pos, [userId], deviceId);
        return pos;
      }
      return undefined;
    });
    if (changedPos !== undefined) this.ctx.bus.publish({ stream: 'device_lists', pos: changedPos, userIds: audience });
    return { one_time_key_counts: await this.getOneTimeKeyCounts(userId, deviceId) };
  }

  // ---- /keys/query ----

  /**
   * Keys of local users from the tables; of remote users from the copy held here when a room
   * is shared with them (fetched first if missing or stale), else from their server
   * (federated-keys.ts), with `failures` for servers that did not answer within `timeoutMs`.
   */
  async queryKeys(requester: Requester, wanted: Record<string, string[]>, timeoutMs = DEFAULT_KEYS_TIMEOUT_MS): Promise<KeysQueryResult> {
    const out: KeysQueryResult = { device_keys: {}, master_keys: {}, self_signing_keys: {}, user_signing_keys: {}, failures: {} };
    const fromTables: string[] = [];
    const remote: string[] = [];
    for (const userId of Object.keys(wanted)) {
      if (!isValidUserId(userId, { historical: true })) continue;
      const server = serverNameOf(userId)!;
      if (server === this.ctx.serverName) fromTables.push(userId);
      else if (this.federates()) remote.push(userId);
      else out.failures[server] = NO_FEDERATION;
    }
    let asked: RemoteKeys | undefined;
    if (remote.length > 0) {
      const started = this.ctx.now();
      const sharing = await this.ctx.services.rooms.getUsersSharingRooms(requester.userId);
      const { current, toAsk, failures } = await this.remoteLists.ensureCurrent(remote, timeoutMs, sharing);
      fromTables.push(...current);
      for (const [server, message] of failures) out.failures[server] = { status: 503, message };
      const byDest = byServer(toAsk.map((u) => [u, wanted[u] ?? []] as [string, string[]]));
      // The client's timeout covers the whole request: what the fetches above left of it.
      const left = timeoutMs - (this.ctx.now() - started);
      if (byDest.size > 0 && left > 0) asked = await queryRemoteKeys(this.ctx.services.federation.client, byDest, left);
      else for (const server of byDest.keys()) out.failures[server] = { status: 504, message: 'No time left to ask this server' };
    }
    if (fromTables.length > 0) {
      const read = await readKeys(this.ctx, fromTables, wanted, requester.userId);
      Object.assign(out.device_keys, read.device_keys);
      Object.assign(out.master_keys, read.master_keys);
      Object.assign(out.self_signing_keys, read.self_signing_keys);
      Object.assign(out.user_signing_keys, read.user_signing_keys);
    }
    if (asked) {
      Object.assign(out.device_keys, asked.device_keys);
      Object.assign(out.master_keys, asked.master_keys);
      Object.assign(out.self_signing_keys, asked.self_signing_keys);
      Object.assign(out.failures, asked.failures);
    }
    return out;
  }

  /** `/user/keys/query` from another server: this server's users only, no user-signing keys. */
  async queryKeysForServer(wanted: Record<string, string[]>): Promise<Omit<KeysQueryResult, 'failures' | 'user_signing_keys'>> {
    const local = Object.keys(wanted).filter((u) => isValidUserId(u, { historical: true }) && serverNameOf(u) === this.ctx.serverName);
    const { device_keys, master_keys, self_signing_keys } = await readKeys(this.ctx, local, wanted, null);
    return { device_keys, master_keys, self_signing_keys };
  }

  // ---- /keys/claim (key-claims.ts) ----

  claimKeys(
    requester: Requester,
    wanted: Record<string, Record<string, string>>,
    timeoutMs = DEFAULT_KEYS_TIMEOUT_MS,
  ): Promise<{ one_time_keys: OneTimeKeysAnswer; failures: Record<string, JsonObject> }> {
    void requester;
    return this.claims.claimKeys(wanted, timeoutMs);
  }

  /** Claims keys of this server's devices (`/user/keys/claim` from another server). */
  claimKeysForServer(wanted: Record<string, Record<string, string>>): Promise<{ one_time_keys: OneTimeKeysAnswer }> {
    return this.claims.claimForServer(wanted);
  }

  // ---- /keys/changes ----

  /**
   * Users whose device lists the user should refresh between two sync
   * positions (`changed`), and users who no longer share a room (`left`):
   * device list changes of users sharing a room, plus members of rooms
   * joined in between, plus members who joined or left the user's rooms.
   */
  async getKeyChanges(userId: string, from: KeyTrackingPositions, to: KeyTrackingPositions): Promise<{ changed: string[]; left: string[] }> {
    const rooms = this.ctx.services.rooms;
    const sharing = await rooms.getUsersSharingRooms(userId);
    const changed = await this.getDeviceListChanges(from.deviceLists, to.deviceLists, sharing);
    const left = new Set<string>();
    if (to.events > from.events) {
      for (const m of await rooms.getMembershipChanges(userId, from.events, to.events)) {
        const members = await rooms.getJoinedMembers(m.roomId);
        for (const u of members) {
          if (m.membership === 'join') changed.add(u);
          else if (!sharing.has(u)) left.add(u);
        }
      }
      const joined = (await rooms.getMemberships(userId)).filter((m) => m.membership === 'join').map((m) => m.roomId);
      const active = joined.length > 0 ? await rooms.getRoomsWithEventsBetween(joined, from.events, to.events) : new Set<string>();
      for (const roomId of active) {
        for (const ev of await rooms.getStateChangesBetween(roomId, from.events, to.events)) {
          if (ev.type !== 'm.room.member' || ev.state_key === undefined || ev.state_key === userId) continue;
          const membership = ev.content.membership;
          if (membership === 'join') {
            if (sharing.has(ev.state_key)) changed.add(ev.state_key);
          } else if ((membership === 'leave' || membership === 'ban') && !sharing.has(ev.state_key)) left.add(ev.state_key);
        }
      }
    }
    for (const u of left) changed.delete(u);
    left.delete(userId);
    return { changed: [...changed].sort(), left: [...left].sort() };
  }

  // ---- to-device (to-device.ts) ----

  sendToDevice(requester: Requester, type: string, txnId: string, messages: unknown): Promise<void> {
    return this.toDevice.send(requester, type, txnId, messages);
  }

  receiveToDevice(origin: string, content: JsonObject): Promise<void> {
    return this.toDevice.receive(origin, content);
  }

  // ---- cross-signing (cross-signing.ts) ----

  uploadCrossSigningKeys(requester: Requester, body: JsonObject, request: { method: string; path: string }): Promise<void> {
    return this.crossSigning.uploadKeys(requester, body, request);
  }

  uploadSignatures(requester: Requester, body: JsonObject): Promise<{ failures: Record<string, Record<string, JsonObject>> }> {
    return this.crossSigning.uploadSignatures(requester, body);
  }

  // ---- helpers on other domains ----

  /** Users who must hear about a change to the user's devices: everyone sharing a room, and the user. */
  private async audienceOf(userId: string): Promise<string[]> {
    return [...(await this.ctx.services.rooms.getUsersSharingRooms(userId))];
  }

  /** Device ids per user: every device accounts knows, plus every device with keys. */
  private async deviceIdsOf(userIds: string[]): Promise<Map<string, string[]>> {
    const out = new Map<string, Set<string>>(userIds.map((u) => [u, new Set<string>()]));
    for (const r of await getDeviceKeysOfUsers(this.ctx.db, userIds)) out.get(r.user_id)?.add(r.device_id);
    for (const [userId, devices] of await this.ctx.services.accounts.getDevices(userIds)) {
      for (const d of devices) out.get(userId)?.add(d.deviceId);
    }
    return new Map([...out].map(([u, s]) => [u, [...s]]));
  }

  private federates(): boolean {
    return this.ctx.config.federation.enabled;
  }

  private nextSeq(): number {
    this.lastSeq = Math.max(this.ctx.now(), this.lastSeq + 1);
    return this.lastSeq;
  }

  // ---- cross-domain API ----

  /** To-device messages for a device with position in (fromPos, toPos], oldest first, at most `limit`; `nextPos` is the position of the last one returned (or toPos when all fit). */
  async getToDevice(userId: string, deviceId: string, fromPos: number, toPos: number, limit: number): Promise<{ events: JsonObject[]; nextPos: number }> {
    if (toPos <= fromPos || limit <= 0) return { events: [], nextPos: Math.max(fromPos, toPos) };
    const rows = await readToDevice(this.ctx.db, userId, deviceId, fromPos, toPos, limit);
    const events = rows.map((r) => ({ sender: r.sender, type: r.type, content: JSON.parse(r.content) as JsonObject }));
    const nextPos = rows.length === limit ? rows[rows.length - 1].pos : toPos;
    return { events, nextPos };
  }

  /** Deletes a device's to-device messages up to and including `pos` (the client acknowledged them by syncing past it). */
  async ackToDevice(userId: string, deviceId: string, pos: number): Promise<void> {
    await deleteToDeviceUpTo(this.ctx.db, userId, deviceId, pos);
  }

  /** Users whose device list changed with position in (fromPos, toPos], limited to `among` when given. */
  async getDeviceListChanges(fromPos: number, toPos: number, among?: Set<string>): Promise<Set<string>> {
    return usersWithDeviceListChanges(this.ctx.db, fromPos, toPos, among);
  }

  async getOneTimeKeyCounts(userId: string, deviceId: string): Promise<Record<string, number>> {
    // signed_curve25519 is always listed: some clients read a missing count as "unknown", not zero.
    return { signed_curve25519: 0, ...(await countOneTimeKeys(this.ctx.db, userId, deviceId)) };
  }

  /** getOneTimeKeyCounts for several devices in one query, by `user\u0000device`. */
  async getOneTimeKeyCountsOfDevices(devices: { userId: string; deviceId: string }[]): Promise<Map<string, Record<string, number>>> {
    const counts = await countOneTimeKeysOfDevices(this.ctx.db, devices);
    for (const [k, c] of counts) counts.set(k, { signed_curve25519: 0, ...c });
    return counts;
  }

  /** getUnusedFallbackKeyTypes for several devices in one query, by `user\u0000device`. */
  async getUnusedFallbackKeyTypesOfDevices(devices: { userId: string; deviceId: string }[]): Promise<Map<string, string[]>> {
    return unusedFallbackAlgorithmsOfDevices(this.ctx.db, devices);
  }

  /** The key of a device in the maps the batch reads answer. */
  deviceKey(userId: string, deviceId: string): string {
    return deviceKey(userId, deviceId);
  }

  async getUnusedFallbackKeyTypes(userId: string, deviceId: string): Promise<string[]> {
    return unusedFallbackAlgorithms(this.ctx.db, userId, deviceId);
  }

  /**
   * A device was created or deleted, in the caller's transaction (accounts:
   * login, registration, logout, device deletion, deactivation): drops the
   * deleted devices' keys, one-time and fallback keys, to-device inbox and
   * the signatures on them, and records a device list change. It takes a
   * stream position, so call it last in the transaction; after commit, call
   * `publishDevicesChanged` with the position it returns.
   */
  async recordDevicesChangedIn(trx: Tx, userId: string, deletedDeviceIds: string[], createdDeviceId?: string): Promise<number> {
    if (deletedDeviceIds.length > 0) {
      await deleteDeviceData(trx, userId, deletedDeviceIds);
      await deleteToDevice(trx, userId, deletedDeviceIds);
      await deleteSignaturesOn(trx, userId, deletedDeviceIds);
    }
    // One position per device, so that other servers hear of each device in its own update.
    const devices = createdDeviceId !== undefined ? [...deletedDeviceIds, createdDeviceId] : deletedDeviceIds;
    if (devices.length === 0) {
      const pos = await nextPosition(trx, 'device_lists');
      await recordDeviceListChanges(trx, pos, [userId]);
      return pos;
    }
    const first = await nextPositions(trx, 'device_lists', devices.length);
    for (let i = 0; i < devices.length; i++) await recordDeviceListChanges(trx, first + i, [userId], devices[i]);
    return first + devices.length - 1;
  }

  /**
   * After `recordDevicesChangedIn` committed: wakes the users who share a
   * room with `userId`. The change is already in the stream table; if the
   * audience cannot be read, only the owner is woken now and the others see
   * the change on their next sync (a lost poke costs latency, never data).
   */
  async publishDevicesChanged(userId: string, pos: number): Promise<void> {
    let audience: string[];
    try {
      audience = await this.audienceOf(userId);
    } catch (err) {
      this.ctx.logger.warn({ err, userId }, 'reading who shares rooms with a user failed; waking only the user');
      audience = [userId];
    }
    this.ctx.bus.publish({ stream: 'device_lists', pos, userIds: audience });
  }
}
