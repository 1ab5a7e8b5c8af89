import { serverNameOf } from '../core/ids.js';
import type { JsonObject } from '../core/types.js';
import type { FederationClient } from '../federation/client.js';
import { FederationRequestError } from '../federation/client.js';
import { isObject } from './key-objects.js';

/**
 * /keys/query and /keys/claim for users of other servers (spec: client-server "Key management
 * API", server-server "End-to-End Encryption"): one request per server, all at once, each with
 * the client's time limit. A server that does not answer in time, or answers with an error, is
 * named in `failures`; what the others answered is kept. Only what a server says about its own
 * users is taken.
 */

/** The client-server API's default for `timeout` on /keys/query and /keys/claim. */
export const DEFAULT_KEYS_TIMEOUT_MS = 10_000;
/** Longest wait a client may ask for. */
const MAX_KEYS_TIMEOUT_MS = 60_000;

export function keysTimeout(requested: unknown): number {
  return typeof requested === 'number' && Number.isFinite(requested) && requested >= 0 ? Math.min(requested, MAX_KEYS_TIMEOUT_MS) : DEFAULT_KEYS_TIMEOUT_MS;
}

/** What goes in `failures[server]`. */
export function failureOf(e: unknown): JsonObject {
  if (e instanceof FederationRequestError) return { status: e.status === 0 ? 503 : e.status, message: e.message };
  return { status: 503, message: (e as Error).message };
}

/** Groups users by their server. */
export function byServer<T>(entries: Iterable<[string, T]>): Map<string, Record<string, T>> {
  const out = new Map<string, Record<string, T>>();
  for (const [userId, v] of entries) {
    const server = serverNameOf(userId)!;
    let m = out.get(server);
    if (!m) out.set(server, (m = {}));
    m[userId] = v;
  }
  return out;
}

export interface RemoteKeys {
  device_keys: Record<string, Record<string, JsonObject>>;
  master_keys: Record<string, JsonObject>;
  self_signing_keys: Record<string, JsonObject>;
  failures: Record<string, JsonObject>;
}

/** `/user/keys/query` on each server for its users. */
export async function queryRemoteKeys(client: FederationClient, wanted: Map<string, Record<string, string[]>>, timeoutMs: number): Promise<RemoteKeys> {
  const out: RemoteKeys = { device_keys: {}, master_keys: {}, self_signing_keys: {}, failures: {} };
  await Promise.all(
    [...wanted].map(async ([server, users]) => {
      let answer: JsonObject;
      try {
        answer = await client.request<JsonObject>(server, { method: 'POST', path: '/_matrix/federation/v1/user/keys/query', body: { device_keys: users }, timeoutMs });
      } catch (e) {
        out.failures[server] = failureOf(e);
        return;
      }
      const asked = (userId: string) => Object.hasOwn(users, userId);
      if (isObject(answer.device_keys)) {
        for (const [userId, devices] of Object.entries(answer.device_keys)) {
          if (!asked(userId) || !isObject(devices)) continue;
          const mine: Record<string, JsonObject> = {};
          for (const [deviceId, keys] of Object.entries(devices)) {
            if (isObject(keys) && keys.user_id === userId && keys.device_id === deviceId) mine[deviceId] = keys;
          }
          out.device_keys[userId] = mine;
        }
      }
      for (const field of ['master_keys', 'self_signing_keys'] as const) {
        const got = answer[field];
        if (!isObject(got)) continue;
        for (const [userId, key] of Object.entries(got)) if (asked(userId) && isObject(key) && key.user_id === userId) out[field][userId] = key;
      }
    }),
  );
  return out;
}

/** `/user/keys/claim` on each server for its users' devices. */
export async function claimRemoteKeys(
  client: FederationClient,
  wanted: Map<string, Record<string, Record<string, string>>>,
  timeoutMs: number,
): Promise<{ one_time_keys: Record<string, Record<string, Record<string, JsonObject | string>>>; failures: Record<string, JsonObject> }> {
  const one_time_keys: Record<string, Record<string, Record<string, JsonObject | string>>> = {};
  const failures: Record<string, JsonObject> = {};
  await Promise.all(
    [...wanted].map(async ([server, users]) => {
      let answer: JsonObject;
      try {
        answer = await client.request<JsonObject>(server, { method: 'POST', path: '/_matrix/federation/v1/user/keys/claim', body: { one_time_keys: users }, timeoutMs });
      } catch (e) {
        failures[server] = failureOf(e);
        return;
      }
      if (!isObject(answer.one_time_keys)) return;
      for (const [userId, devices] of Object.entries(answer.one_time_keys)) {
        const askedDevices = users[userId];
        if (askedDevices === undefined || !isObject(devices)) continue;
        for (const [deviceId, keys] of Object.entries(devices)) {
          if (!Object.hasOwn(askedDevices, deviceId) || !isObject(keys)) continue;
          const ok = Object.entries(keys).filter(([, k]) => typeof k === 'string' || isObject(k)) as [string, JsonObject | string][];
          if (ok.length > 0) (one_time_keys[userId] ??= {})[deviceId] = Object.fromEntries(ok);
        }
      }
    }),
  );
  return { one_time_keys, failures };
}
