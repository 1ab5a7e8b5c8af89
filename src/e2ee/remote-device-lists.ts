import type { Context } from '../context.js';
import { serverNameOf } from '../core/ids.js';
import type { JsonObject } from '../core/types.js';
import { nextPosition, readStreamPositions } from '../db/stream-positions.js';
import { deleteCrossSigningKeysOf, putCrossSigningKey } from './cross-signing-store.js';
import {
  anyCurrentRemoteDeviceList,
  getRemoteDeviceList,
  getRemoteDeviceLists,
  markRemoteDeviceListsStale,
  putRemoteDeviceList,
  recordDeviceListChanges,
} from './device-lists-store.js';
import { checkCrossSigningKey, checkDeviceKeys, isObject, type CrossSigningKey } from './key-objects.js';
import { deleteDeviceKeysOfUser, deleteDeviceKeysRow, putDeviceKeys } from './keys-store.js';

const LEAVES_PAGE = 200;
/** Whole-list fetches started by one /keys/query. */
const MAX_FETCHES_PER_QUERY = 20;

/** How long a whole-list fetch from another server may take. */
export const RESYNC_TIMEOUT_MS = 10_000;

/** A user's device list as `/user/devices` answers it (spec: server-server API, user_devices.yaml). */
interface UserDevicesAnswer {
  user_id?: unknown;
  stream_id?: unknown;
  devices?: unknown;
  master_key?: unknown;
  self_signing_key?: unknown;
}

/**
 * Device lists of users on other servers (spec: server-server API, "Device Management"). A copy
 * is held only for users who share a room with a user of this server: their devices in
 * `device_keys`, their master and self-signing keys in `cross_signing_keys` (so /keys/query
 * reads them like local ones), and in `remote_device_lists` the last `stream_id` applied. The
 * copy follows the `m.device_list_update` and `m.signing_key_update` EDUs of the user's server;
 * it is fetched whole through `/user/devices` when first needed, when an update names a
 * `prev_id` not yet applied (one was missed), and when it went stale because no room was shared
 * for a while (updates stop coming then). Every change is a device-list change of the user here,
 * so the local users sharing a room see it in /sync `device_lists.changed`.
 */
export class RemoteDeviceLists {
  /** One update or fetch per user at a time on this node, in arrival order. */
  private readonly busy = new Map<string, Promise<unknown>>();
  /** Membership events read up to here (events stream), to notice rooms no longer shared. */
  private memberPos = 0;
  /**
   * Whether this node may hold a current copy: until it does, leaves concern no copy and are
   * skipped (every node sees every event, so the node that stores a copy follows the leaves).
   */
  private holdsCopies = false;
  private watching: Promise<void> | null = null;
  private again = false;
  private unsubscribe: (() => void) | null = null;

  constructor(private readonly ctx: Context) {}

  /**
   * Follows leaves and bans: a remote user who no longer shares a room with anyone here gets
   * no more updates from their server, so their copy is marked stale then, and fetched anew
   * if a room is shared again.
   */
  async start(): Promise<void> {
    this.memberPos = (await readStreamPositions(this.ctx.db)).events;
    this.holdsCopies = await anyCurrentRemoteDeviceList(this.ctx.db);
    this.unsubscribe = this.ctx.bus.onAdvance((msg) => {
      if (msg.stream !== 'events') return;
      if (this.holdsCopies) this.watchLeaves();
      else this.memberPos = Math.max(this.memberPos, msg.pos);
    });
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    while (this.watching) await this.watching;
  }

  private watchLeaves(): void {
    if (this.watching) {
      this.again = true;
      return;
    }
    this.again = false;
    this.watching = this.readLeaves()
      .catch((e: unknown) => this.ctx.logger.warn({ err: e }, 'reading leaves for remote device lists failed'))
      .finally(() => {
        this.watching = null;
        if (this.again) this.watchLeaves();
      });
  }

  private async readLeaves(): Promise<void> {
    const rooms = this.ctx.services.rooms;
    for (;;) {
      const events = await rooms.streamEventsOfTypes({ types: ['m.room.member'], after: this.memberPos, limit: LEAVES_PAGE });
      const candidates = new Set<string>();
      for (const ev of events) {
        const target = ev.pdu.state_key;
        const membership = ev.pdu.content?.membership;
        if (typeof target !== 'string' || membership === 'join' || membership === 'invite' || membership === 'knock') continue;
        if (serverNameOf(target) !== this.ctx.serverName) candidates.add(target);
        else for (const u of await rooms.getJoinedMembers(ev.roomId)) if (serverNameOf(u) !== this.ctx.serverName) candidates.add(u);
      }
      if (candidates.size > 0) await this.forgetUnshared([...candidates]);
      if (events.length > 0) this.memberPos = Math.max(this.memberPos, ...events.map((ev) => ev.streamPos ?? 0));
      if (events.length < LEAVES_PAGE) return;
    }
  }

  /** Local users who share a room with `userId`. */
  private async localAudience(userId: string): Promise<string[]> {
    const sharing = await this.ctx.services.rooms.getUsersSharingRooms(userId);
    return [...sharing].filter((u) => serverNameOf(u) === this.ctx.serverName);
  }

  private serialised<T>(userId: string, fn: () => Promise<T>): Promise<T> {
    const before = this.busy.get(userId) ?? Promise.resolve();
    const run = before.catch(() => undefined).then(fn);
    const tail = run.catch(() => undefined);
    this.busy.set(userId, tail);
    void tail.then(() => {
      if (this.busy.get(userId) === tail) this.busy.delete(userId);
    });
    return run;
  }

  /**
   * Of the remote users given, those whose copy here is current and may be read from the tables
   * (fetched now when shared but missing or stale), those to ask of their server (no room shared,
   * or more to fetch than one query starts), and the servers that could not be reached. `knownShared`: users known to
   * share a room with a local user (those sharing one with the asking user), not checked again.
   */
  async ensureCurrent(userIds: string[], timeoutMs: number, knownShared: ReadonlySet<string> = new Set()): Promise<{ current: Set<string>; toAsk: string[]; failures: Map<string, string> }> {
    const current = new Set<string>();
    const toAsk: string[] = [];
    const failures = new Map<string, string>();
    const rows = new Map((await getRemoteDeviceLists(this.ctx.db, userIds)).map((r) => [r.user_id, r]));
    const toFetch: string[] = [];
    const noLongerShared: string[] = [];
    for (const userId of userIds) {
      if (!knownShared.has(userId) && (await this.localAudience(userId)).length === 0) {
        toAsk.push(userId);
        if (rows.get(userId)?.stale === 0) noLongerShared.push(userId);
        continue;
      }
      const row = rows.get(userId);
      if (row && row.stale === 0) current.add(userId);
      // Beyond a few whole-list fetches per query, the rest are asked in one batch per server and
      // not kept; later queries fetch them a few at a time.
      else if (toFetch.length < MAX_FETCHES_PER_QUERY) toFetch.push(userId);
      else toAsk.push(userId);
    }
    if (noLongerShared.length > 0) await markRemoteDeviceListsStale(this.ctx.db, noLongerShared);
    await Promise.all(
      toFetch.map(async (userId) => {
        try {
          await this.serialised(userId, () => this.resync(userId, timeoutMs));
          current.add(userId);
        } catch (e) {
          failures.set(serverNameOf(userId)!, (e as Error).message);
        }
      }),
    );
    return { current, toAsk, failures };
  }

  /** Marks the copies of users who no longer share a room with anyone here as stale. */
  async forgetUnshared(userIds: string[]): Promise<void> {
    const rows = await getRemoteDeviceLists(this.ctx.db, userIds);
    const stale: string[] = [];
    for (const r of rows) if (r.stale === 0 && (await this.localAudience(r.user_id)).length === 0) stale.push(r.user_id);
    if (stale.length > 0) await markRemoteDeviceListsStale(this.ctx.db, stale);
  }

  /** An `m.device_list_update` EDU from `origin` (spec: server-server API, "Device Management"). */
  async onDeviceListUpdate(origin: string, content: JsonObject): Promise<void> {
    const { user_id: userId, device_id: deviceId, stream_id: streamId } = content;
    if (typeof userId !== 'string' || serverNameOf(userId) !== origin) return;
    if (typeof deviceId !== 'string' || typeof streamId !== 'number' || !Number.isSafeInteger(streamId)) return;
    const prevIds = Array.isArray(content.prev_id) ? content.prev_id.filter((p): p is number => typeof p === 'number') : [];
    const audience = await this.localAudience(userId);
    if (audience.length === 0) {
      await markRemoteDeviceListsStale(this.ctx.db, [userId]);
      return;
    }
    await this.serialised(userId, async () => {
      const row = await getRemoteDeviceList(this.ctx.db, userId);
      // Never fetched, stale, or an earlier update missed: the whole list, from its server.
      if (!row || row.stale !== 0 || prevIds.some((p) => p > row.stream_id)) {
        await this.resync(userId, RESYNC_TIMEOUT_MS).catch((e: unknown) =>
          this.ctx.logger.info({ userId, err: (e as Error).message }, 'device list resync failed; the copy stays stale'),
        );
        return;
      }
      // Older than the copy: already in it. An equal stream_id may name another device changed
      // in the same update, so it is applied (applying one twice changes nothing).
      if (streamId < row.stream_id) return;
      let keys: JsonObject | null = null;
      if (content.deleted !== true && content.keys !== undefined) {
        try {
          keys = checkDeviceKeys(content.keys, userId, deviceId);
        } catch {
          return;
        }
        if (typeof content.device_display_name === 'string') keys = withDisplayName(keys, content.device_display_name);
      }
      const pos = await this.ctx.db.transaction().execute(async (trx) => {
        const p = await nextPosition(trx, 'device_lists');
        if (keys) await putDeviceKeys(trx, { user_id: userId, device_id: deviceId, json: JSON.stringify(keys), pos: p });
        else await deleteDeviceKeysRow(trx, userId, deviceId);
        await putRemoteDeviceList(trx, { user_id: userId, stream_id: streamId, stale: 0 });
        this.holdsCopies = true;
        await recordDeviceListChanges(trx, p, [userId], deviceId);
        return p;
      });
      this.ctx.bus.publish({ stream: 'device_lists', pos, userIds: audience });
    });
  }

  /** An `m.signing_key_update` EDU: the user's new master and/or self-signing key. */
  async onSigningKeyUpdate(origin: string, content: JsonObject): Promise<void> {
    const userId = content.user_id;
    if (typeof userId !== 'string' || serverNameOf(userId) !== origin) return;
    const audience = await this.localAudience(userId);
    if (audience.length === 0) {
      await markRemoteDeviceListsStale(this.ctx.db, [userId]);
      return;
    }
    const keys: CrossSigningKey[] = [];
    try {
      if (content.master_key !== undefined) keys.push(checkCrossSigningKey(content.master_key, 'master', userId));
      if (content.self_signing_key !== undefined) keys.push(checkCrossSigningKey(content.self_signing_key, 'self_signing', userId));
    } catch {
      return;
    }
    if (keys.length === 0) return;
    await this.serialised(userId, async () => {
      const pos = await this.ctx.db.transaction().execute(async (trx) => {
        for (const k of keys) await putCrossSigningKey(trx, { user_id: userId, usage: k.usage, public_key: k.publicKey, json: JSON.stringify(k.obj) });
        const p = await nextPosition(trx, 'device_lists');
        await recordDeviceListChanges(trx, p, [userId]);
        return p;
      });
      this.ctx.bus.publish({ stream: 'device_lists', pos, userIds: audience });
    });
  }

  /** Fetches the user's whole device list from their server and replaces the copy here. Throws when it cannot. */
  private async resync(userId: string, timeoutMs: number): Promise<void> {
    const server = serverNameOf(userId)!;
    const answer = await this.ctx.services.federation.client.request<UserDevicesAnswer>(server, {
      method: 'GET',
      path: `/_matrix/federation/v1/user/devices/${encodeURIComponent(userId)}`,
      timeoutMs,
    });
    if (answer.user_id !== userId || typeof answer.stream_id !== 'number' || !Array.isArray(answer.devices)) {
      throw new Error(`${server} answered /user/devices for ${userId} with an unexpected shape`);
    }
    const streamId = answer.stream_id;
    const devices: { deviceId: string; keys: JsonObject }[] = [];
    for (const d of answer.devices) {
      if (!isObject(d) || typeof d.device_id !== 'string' || d.keys === undefined) continue;
      try {
        let keys = checkDeviceKeys(d.keys, userId, d.device_id);
        if (typeof d.device_display_name === 'string') keys = withDisplayName(keys, d.device_display_name);
        devices.push({ deviceId: d.device_id, keys });
      } catch {
        // A device whose keys are malformed is left out; the others are still usable.
      }
    }
    const crossSigning: CrossSigningKey[] = [];
    for (const [field, usage] of [['master_key', 'master'], ['self_signing_key', 'self_signing']] as const) {
      if (answer[field] === undefined) continue;
      try {
        crossSigning.push(checkCrossSigningKey(answer[field], usage, userId));
      } catch {
        // As above.
      }
    }
    const pos = await this.ctx.db.transaction().execute(async (trx) => {
      const p = await nextPosition(trx, 'device_lists');
      await deleteDeviceKeysOfUser(trx, userId);
      for (const d of devices) await putDeviceKeys(trx, { user_id: userId, device_id: d.deviceId, json: JSON.stringify(d.keys), pos: p });
      await deleteCrossSigningKeysOf(trx, userId);
      for (const k of crossSigning) await putCrossSigningKey(trx, { user_id: userId, usage: k.usage, public_key: k.publicKey, json: JSON.stringify(k.obj) });
      await putRemoteDeviceList(trx, { user_id: userId, stream_id: streamId, stale: 0 });
      this.holdsCopies = true;
      await recordDeviceListChanges(trx, p, [userId]);
      return p;
    });
    this.ctx.bus.publish({ stream: 'device_lists', pos, userIds: await this.localAudience(userId) });
  }
}

/** The device's name as its owner's server gave it, where /keys/query shows names. */
function withDisplayName(keys: JsonObject, name: string): JsonObject {
  const unsigned = isObject(keys.unsigned) ? keys.unsigned : {};
  return { ...keys, unsigned: { ...unsigned, device_display_name: name } };
}
