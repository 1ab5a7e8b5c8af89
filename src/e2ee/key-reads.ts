import type { Context } from '../context.js';
import { serverNameOf } from '../core/ids.js';
import type { JsonObject } from '../core/types.js';
import { getCrossSigningKeys, getVisibleSignatures } from './cross-signing-store.js';
import { isObject } from './key-objects.js';
import { getDeviceKeysOfUsers } from './keys-store.js';
import type { E2eSignatureRow } from './tables.js';

export interface KeysQueryResult {
  device_keys: Record<string, Record<string, JsonObject>>;
  master_keys: Record<string, JsonObject>;
  self_signing_keys: Record<string, JsonObject>;
  user_signing_keys: Record<string, JsonObject>;
  failures: Record<string, JsonObject>;
}

/** Keys held in the tables (local users, and remote users whose copy is current). `viewer` null: another server asks. */
export async function readKeys(ctx: Context, userIds: string[], wanted: Record<string, string[]>, viewer: string | null): Promise<Omit<KeysQueryResult, 'failures'>> {
  const out: Omit<KeysQueryResult, 'failures'> = { device_keys: {}, master_keys: {}, self_signing_keys: {}, user_signing_keys: {} };
  if (userIds.length === 0) return out;
  const local = userIds.filter((u) => serverNameOf(u) === ctx.serverName);
  const [rows, signatures, xsKeys, names] = await Promise.all([
    getDeviceKeysOfUsers(ctx.db, userIds),
    local.length > 0 ? getVisibleSignatures(ctx.db, local, viewer ?? '') : Promise.resolve([]),
    getCrossSigningKeys(ctx.db, userIds),
    local.length > 0 ? deviceDisplayNames(ctx, local) : Promise.resolve(new Map<string, Map<string, string | undefined>>()),
  ]);
  const sigsByTarget = new Map<string, E2eSignatureRow[]>();
  for (const s of signatures) {
    const k = `${s.target_user_id}\u0000${s.target_key_id}`;
    const list = sigsByTarget.get(k);
    if (list) list.push(s);
    else sigsByTarget.set(k, [s]);
  }
  const withSignatures = (obj: JsonObject, userId: string, keyId: string): JsonObject => {
    const extra = sigsByTarget.get(`${userId}\u0000${keyId}`);
    if (!extra) return obj;
    const sigs: Record<string, Record<string, string>> = isObject(obj.signatures)
      ? (JSON.parse(JSON.stringify(obj.signatures)) as Record<string, Record<string, string>>)
      : {};
    for (const s of extra) (sigs[s.signer_user_id] ??= {})[s.signer_key_id] = s.signature;
    return { ...obj, signatures: sigs };
  };

  for (const userId of userIds) out.device_keys[userId] = {};
  for (const r of rows) {
    const only = wanted[r.user_id];
    if (Array.isArray(only) && only.length > 0 && !only.includes(r.device_id)) continue;
    const obj = withSignatures(JSON.parse(r.json) as JsonObject, r.user_id, r.device_id);
    const name = names.get(r.user_id)?.get(r.device_id);
    const unsigned = isObject(obj.unsigned) ? { ...obj.unsigned } : {};
    if (name !== undefined) unsigned.device_display_name = name;
    out.device_keys[r.user_id][r.device_id] = { ...obj, unsigned };
  }
  for (const k of xsKeys) {
    const obj = JSON.parse(k.json) as JsonObject;
    if (k.usage === 'master') out.master_keys[k.user_id] = withSignatures(obj, k.user_id, k.public_key);
    else if (k.usage === 'self_signing') out.self_signing_keys[k.user_id] = obj;
    else if (viewer !== null && k.user_id === viewer) out.user_signing_keys[k.user_id] = obj;
  }
  return out;
}

/** Device display names for /keys/query (`unsigned.device_display_name`), one query for all users. */
async function deviceDisplayNames(ctx: Context, userIds: string[]): Promise<Map<string, Map<string, string | undefined>>> {
  const out = new Map<string, Map<string, string | undefined>>();
  for (const [userId, devices] of await ctx.services.accounts.getDevices(userIds)) {
    out.set(userId, new Map(devices.map((d) => [d.deviceId, d.displayName])));
  }
  return out;
}
