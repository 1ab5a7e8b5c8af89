import type { Context } from '../context.js';
import { serverNameOf } from '../core/ids.js';
import type { JsonObject } from '../core/types.js';
import { lastDeviceChange, selectDeviceListChanges } from './device-lists-store.js';
import { getDeviceKeysOfUsers } from './keys-store.js';

/** What the tables hold for users, as /keys/query shows it (E2eeService.readKeys). */
export type ReadKeys = (
  userIds: string[],
  wanted: Record<string, string[]>,
  viewer: null,
) => Promise<{ device_keys: Record<string, Record<string, JsonObject>>; master_keys: Record<string, JsonObject>; self_signing_keys: Record<string, JsonObject> }>;

export interface DeviceListEdu {
  /** The user whose devices changed: the EDU goes to the servers sharing a room with them. */
  userId: string;
  edu: { edu_type: 'm.device_list_update' | 'm.signing_key_update'; content: JsonObject };
}

/**
 * This server's users' device lists as other servers see them (spec: server-server API,
 * "Device Management"). Each change of a device is one `m.device_list_update` whose `stream_id`
 * is its device_lists position and whose `prev_id` is the user's previous device change, so a
 * server that missed one sees the gap and fetches the whole list (`/user/devices`, whose
 * `stream_id` is the user's last device change). A change to the cross-signing keys is an
 * `m.signing_key_update`.
 */
export class LocalDeviceLists {
  constructor(
    private readonly ctx: Context,
    private readonly readKeys: ReadKeys,
  ) {}

  private isLocal(userId: string): boolean {
    return serverNameOf(userId) === this.ctx.serverName;
  }

  /** The EDUs for this server's users' changes at positions in (fromPos, toPos], at most `limit` changes looked at; `lastPos`: the last looked at. */
  async edusBetween(fromPos: number, toPos: number, limit: number): Promise<{ edus: DeviceListEdu[]; lastPos: number }> {
    const rows = await selectDeviceListChanges(this.ctx.db, fromPos, toPos, limit);
    const lastPos = rows.length < limit ? toPos : rows[rows.length - 1]!.pos;
    const edus: DeviceListEdu[] = [];
    for (const r of rows) {
      if (!this.isLocal(r.user_id)) continue;
      const keys = await this.readKeys([r.user_id], { [r.user_id]: r.device_id === null ? [] : [r.device_id] }, null);
      if (r.device_id === null) {
        const content: JsonObject = { user_id: r.user_id };
        if (keys.master_keys[r.user_id]) content.master_key = keys.master_keys[r.user_id]!;
        if (keys.self_signing_keys[r.user_id]) content.self_signing_key = keys.self_signing_keys[r.user_id]!;
        edus.push({ userId: r.user_id, edu: { edu_type: 'm.signing_key_update', content } });
        continue;
      }
      const prev = await lastDeviceChange(this.ctx.db, r.user_id, r.pos);
      const content: JsonObject = { user_id: r.user_id, device_id: r.device_id, stream_id: r.pos, prev_id: prev > 0 ? [prev] : [] };
      const deviceKeys = keys.device_keys[r.user_id]?.[r.device_id];
      const device = (await this.ctx.services.accounts.getDevices([r.user_id])).get(r.user_id)?.find((d) => d.deviceId === r.device_id);
      if (deviceKeys) content.keys = withoutUnsigned(deviceKeys);
      if (device?.displayName) content.device_display_name = device.displayName;
      if (!deviceKeys && !device) content.deleted = true;
      edus.push({ userId: r.user_id, edu: { edu_type: 'm.device_list_update', content } });
    }
    return { edus, lastPos };
  }

  /** The answer to `/user/devices/{userId}`: every device (with its keys when it has some) and the cross-signing keys. */
  async userDevices(userId: string): Promise<JsonObject> {
    const [keys, accounts, keyRows, streamId] = await Promise.all([
      this.readKeys([userId], { [userId]: [] }, null),
      this.ctx.services.accounts.getDevices([userId]),
      getDeviceKeysOfUsers(this.ctx.db, [userId]),
      lastDeviceChange(this.ctx.db, userId),
    ]);
    const names = new Map((accounts.get(userId) ?? []).map((d) => [d.deviceId, d.displayName]));
    const ids = new Set([...names.keys(), ...keyRows.map((r) => r.device_id)]);
    const devices: JsonObject[] = [];
    for (const deviceId of [...ids].sort()) {
      const d: JsonObject = { device_id: deviceId };
      const k = keys.device_keys[userId]?.[deviceId];
      if (k) d.keys = withoutUnsigned(k);
      const name = names.get(deviceId);
      if (name) d.device_display_name = name;
      devices.push(d);
    }
    const out: JsonObject = { user_id: userId, stream_id: streamId, devices };
    if (keys.master_keys[userId]) out.master_key = keys.master_keys[userId]!;
    if (keys.self_signing_keys[userId]) out.self_signing_key = keys.self_signing_keys[userId]!;
    return out;
  }
}

/** Device keys as signed by the device; the display name travels beside them. */
function withoutUnsigned(keys: JsonObject): JsonObject {
  const { unsigned: _unsigned, ...rest } = keys;
  return rest;
}
