import type { Context } from '../context.js';
import { isValidUserId, serverNameOf } from '../core/ids.js';
import type { JsonObject } from '../core/types.js';
import { badJson } from '../http/errors.js';
import { byServer, claimRemoteKeys } from './federated-keys.js';
import { isObject } from './key-objects.js';
import { oldestOneTimeKeys, takeOneTimeKeys, useFallbackKeys, type ClaimedKey, type ClaimTarget } from './keys-store.js';

/** Rounds of "take the oldest key" before a target falls back: each round loses only to a concurrent claimer. */
const CLAIM_ATTEMPTS = 8;

/** The failure entry for a remote server while federation is disabled. */
export const NO_FEDERATION = { status: 503, message: 'Federation is disabled on this server' };

/** `/keys/claim`'s `one_time_keys`: user, device, `algorithm:key_id`, key. */
export type OneTimeKeysAnswer = Record<string, Record<string, Record<string, JsonObject | string>>>;

/** PostgreSQL deadlock / serialization failure: the transaction can simply run again. */
function isRetryable(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === '40P01' || code === '40001';
}

const targetKey = (t: ClaimTarget) => `${t.userId}\u0000${t.deviceId}\u0000${t.algorithm}`;

/** One-time and fallback key claims, for local clients and for other servers. */
export class KeyClaims {
  constructor(private readonly ctx: Context) {}

  /** A client's `/keys/claim`: local devices from the tables, remote ones from their servers within `timeoutMs`. */
  async claimKeys(wanted: Record<string, Record<string, string>>, timeoutMs: number): Promise<{ one_time_keys: OneTimeKeysAnswer; failures: Record<string, JsonObject> }> {
    const failures: Record<string, JsonObject> = {};
    const remote: [string, Record<string, string>][] = [];
    const local: Record<string, Record<string, string>> = {};
    for (const [userId, devices] of Object.entries(wanted)) {
      if (!isValidUserId(userId, { historical: true })) continue;
      for (const algorithm of Object.values(devices)) {
        if (typeof algorithm !== 'string') throw badJson('one_time_keys maps device ids to an algorithm name');
      }
      const server = serverNameOf(userId)!;
      if (server === this.ctx.serverName) local[userId] = devices;
      else if (this.ctx.config.federation.enabled) remote.push([userId, devices]);
      else failures[server] = NO_FEDERATION;
    }
    const [mine, theirs] = await Promise.all([
      this.claimForServer(local),
      remote.length > 0 ? claimRemoteKeys(this.ctx.services.federation.client, byServer(remote), timeoutMs) : undefined,
    ]);
    if (theirs) {
      Object.assign(mine.one_time_keys, theirs.one_time_keys);
      Object.assign(failures, theirs.failures);
    }
    return { one_time_keys: mine.one_time_keys, failures };
  }

  /** Claims keys of this server's devices (a local /keys/claim, or `/user/keys/claim` from another server). */
  async claimForServer(wanted: Record<string, Record<string, string>>): Promise<{ one_time_keys: OneTimeKeysAnswer }> {
    const targets = new Map<string, ClaimTarget>();
    for (const [userId, devices] of Object.entries(wanted)) {
      if (!isValidUserId(userId, { historical: true }) || serverNameOf(userId) !== this.ctx.serverName || !isObject(devices)) continue;
      for (const [deviceId, algorithm] of Object.entries(devices)) {
        if (typeof algorithm !== 'string') continue;
        const t = { userId, deviceId, algorithm };
        targets.set(targetKey(t), t);
      }
    }
    const one_time_keys: OneTimeKeysAnswer = {};
    for (const k of await this.claim([...targets.values()])) {
      ((one_time_keys[k.userId] ??= {})[k.deviceId] ??= {})[`${k.algorithm}:${k.keyId}`] = JSON.parse(k.json) as JsonObject | string;
    }
    return { one_time_keys };
  }

  /**
   * Takes the oldest one-time key of each target, or its fallback key when
   * none is left. A key goes to exactly one claimer: the DELETE ... RETURNING
   * decides, and a claimer that lost a race for a key tries the next one.
   */
  private async claim(targets: ClaimTarget[]): Promise<ClaimedKey[]> {
    if (targets.length === 0) return [];
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.ctx.db.transaction().execute(async (trx) => {
          const claimed = new Map<string, ClaimedKey>();
          let pending = targets;
          for (let round = 0; round < CLAIM_ATTEMPTS && pending.length > 0; round++) {
            const candidates = await oldestOneTimeKeys(trx, pending);
            if (candidates.length === 0) break;
            for (const k of await takeOneTimeKeys(trx, candidates)) claimed.set(targetKey(k), k);
            pending = candidates.filter((c) => !claimed.has(targetKey(c)));
          }
          const rest = targets.filter((t) => !claimed.has(targetKey(t)));
          const fallbacks = rest.length > 0 ? await useFallbackKeys(trx, rest) : [];
          return [...claimed.values(), ...fallbacks];
        });
      } catch (e) {
        if (attempt < 3 && isRetryable(e)) continue;
        throw e;
      }
    }
  }
}
