import type { Context } from '../context.js';
import { decodeBase64 } from '../core/base64.js';
import { isValidUserId, serverNameOf } from '../core/ids.js';
import { verifyJsonSignature } from '../core/signing.js';
import type { JsonObject } from '../core/types.js';
import { nextPosition, nextPositions } from '../db/stream-positions.js';
import type { Requester } from '../http/requester.js';
import { badJson, forbidden, MatrixError, missingParam } from '../http/errors.js';
import { deleteSignaturesOn, getCrossSigningKeys, putCrossSigningKey, putSignatures } from './cross-signing-store.js';
import { recordDeviceListChanges } from './device-lists-store.js';
import {
  checkCrossSigningKey,
  comparableJson,
  isObject,
  sameSignedContent,
  type CrossSigningKey,
} from './key-objects.js';
import { getDeviceKeysOfUsers } from './keys-store.js';
import type { CrossSigningKeyRow, CrossSigningUsage, E2eSignatureRow } from './tables.js';

/**
 * Cross-signing (spec: "Cross-signing", keys_upload_signing / keys_upload_signatures): the
 * user's master, self-signing and user-signing keys, and signatures of keys by keys. Every
 * signature is verified before it is stored; a change is announced to the users who share a
 * room with the signer, as a device-list change.
 */
export class CrossSigning {
  constructor(
    private readonly ctx: Context,
    private readonly helpers: {
      audienceOf(userId: string): Promise<string[]>;
      deviceIdsOf(userIds: string[]): Promise<Map<string, string[]>>;
    },
  ) {}

  async uploadKeys(requester: Requester, body: JsonObject, request: { method: string; path: string }): Promise<void> {
    const userId = requester.userId;
    const given: CrossSigningKey[] = [];
    if (body.master_key !== undefined) given.push(checkCrossSigningKey(body.master_key, 'master', userId));
    if (body.self_signing_key !== undefined) given.push(checkCrossSigningKey(body.self_signing_key, 'self_signing', userId));
    if (body.user_signing_key !== undefined) given.push(checkCrossSigningKey(body.user_signing_key, 'user_signing', userId));
    if (given.length === 0) return;

    const existing = new Map((await getCrossSigningKeys(this.ctx.db, [userId])).map((r) => [r.usage, r]));
    const changes = given.filter((k) => {
      const old = existing.get(k.usage);
      return !old || comparableJson(JSON.parse(old.json)) !== comparableJson(k.obj);
    });
    // Re-uploading the keys the server holds is a no-op (a retried request must not fail).
    if (changes.length === 0) return;
    if (existing.has('master')) await this.requireUserInteractiveAuth(requester, body, request);

    const master = given.find((k) => k.usage === 'master')?.publicKey ?? existing.get('master')?.public_key;
    if (master === undefined) throw missingParam('No master signing key is available');
    for (const k of given) {
      if (k.usage === 'master') continue;
      if (!this.verifySignature(k.obj, userId, master)) {
        throw new MatrixError(400, 'M_INVALID_SIGNATURE', `The ${k.usage} key is not signed by the master key`);
      }
    }
    const devices = new Set((await this.helpers.deviceIdsOf([userId])).get(userId));
    for (const k of given) if (devices.has(k.publicKey)) throw forbidden('Key ID in use by a device');

    const audience = await this.helpers.audienceOf(userId);
    const oldMaster = existing.get('master')?.public_key;
    const pos = await this.ctx.db.transaction().execute(async (trx) => {
      for (const k of changes) {
        await putCrossSigningKey(trx, { user_id: userId, usage: k.usage, public_key: k.publicKey, json: JSON.stringify(k.obj) });
      }
      if (oldMaster !== undefined && oldMaster !== master) await deleteSignaturesOn(trx, userId, [oldMaster]);
      const p = await nextPosition(trx, 'device_lists');
      await recordDeviceListChanges(trx, p, [userId]);
      return p;
    });
    this.ctx.bus.publish({ stream: 'device_lists', pos, userIds: audience });
  }

  /**
   * Stores signatures made with the uploader's keys: by the self-signing key
   * on their own devices, by their devices on their master key, and by their
   * user-signing key on other users' master keys.
   */
  async uploadSignatures(requester: Requester, body: JsonObject): Promise<{ failures: Record<string, Record<string, JsonObject>> }> {
    const own = requester.userId;
    const failures: Record<string, Record<string, JsonObject>> = {};
    const fail = (userId: string, keyId: string, errcode: string, error: string) => {
      (failures[userId] ??= {})[keyId] = { errcode, error };
    };
    const localTargets = Object.keys(body).filter((u) => isValidUserId(u, { historical: true }) && serverNameOf(u) === this.ctx.serverName);
    const xs = new Map<string, Map<CrossSigningUsage, CrossSigningKeyRow>>();
    for (const r of await getCrossSigningKeys(this.ctx.db, [...new Set([own, ...localTargets])])) {
      if (!xs.has(r.user_id)) xs.set(r.user_id, new Map());
      xs.get(r.user_id)!.set(r.usage, r);
    }
    const ownXs = xs.get(own) ?? new Map<CrossSigningUsage, CrossSigningKeyRow>();
    const ownDevices = new Map((await getDeviceKeysOfUsers(this.ctx.db, [own])).map((r) => [r.device_id, JSON.parse(r.json) as JsonObject]));

    const store: E2eSignatureRow[] = [];
    for (const [userId, keys] of Object.entries(body)) {
      if (!isObject(keys)) throw badJson(`${userId} must map key ids to signed objects`);
      for (const [keyId, signed] of Object.entries(keys)) {
        if (!isObject(signed)) {
          fail(userId, keyId, 'M_BAD_JSON', 'Expected a signed object');
          continue;
        }
        if (!localTargets.includes(userId)) {
          fail(userId, keyId, 'M_UNKNOWN', 'Signing keys of remote users is not available yet');
          continue;
        }
        if (userId === own) {
          const device = ownDevices.get(keyId);
          const masterRow = ownXs.get('master');
          if (device) {
            const ssk = ownXs.get('self_signing');
            if (!ssk) fail(userId, keyId, 'M_INVALID_SIGNATURE', 'No self-signing key uploaded');
            else if (!sameSignedContent(signed, device)) fail(userId, keyId, 'M_INVALID_PARAM', 'Signed object does not match the device keys');
            else if (!this.verifySignature(signed, own, ssk.public_key)) fail(userId, keyId, 'M_INVALID_SIGNATURE', 'Invalid signature');
            else store.push(this.signatureRow(signed, own, ssk.public_key, own, keyId));
          } else if (masterRow && masterRow.public_key === keyId) {
            if (!sameSignedContent(signed, JSON.parse(masterRow.json) as JsonObject)) {
              fail(userId, keyId, 'M_INVALID_PARAM', 'Signed object does not match the master key');
              continue;
            }
            // Devices vouching for their user's master key.
            const bySelf = isObject(signed.signatures) && isObject(signed.signatures[own]) ? signed.signatures[own] : {};
            let stored = 0;
            for (const sigKeyId of Object.keys(bySelf)) {
              if (!sigKeyId.startsWith('ed25519:') || sigKeyId === `ed25519:${keyId}`) continue;
              const signerDevice = ownDevices.get(sigKeyId.slice('ed25519:'.length));
              const pub = signerDevice && isObject(signerDevice.keys) ? signerDevice.keys[sigKeyId] : undefined;
              if (typeof pub !== 'string' || !this.verifySignature(signed, own, pub, sigKeyId)) continue;
              store.push(this.signatureRow(signed, own, pub, own, keyId, sigKeyId));
              stored++;
            }
            if (stored === 0) fail(userId, keyId, 'M_INVALID_SIGNATURE', 'No valid device signature on the master key');
          } else {
            fail(userId, keyId, 'M_NOT_FOUND', 'Unknown key');
          }
        } else {
          const target = xs.get(userId)?.get('master');
          const usk = ownXs.get('user_signing');
          if (!target || target.public_key !== keyId) fail(userId, keyId, 'M_NOT_FOUND', 'Unknown master key');
          else if (!usk) fail(userId, keyId, 'M_INVALID_SIGNATURE', 'No user-signing key uploaded');
          else if (!sameSignedContent(signed, JSON.parse(target.json) as JsonObject)) fail(userId, keyId, 'M_INVALID_PARAM', 'Signed object does not match the master key');
          else if (!this.verifySignature(signed, own, usk.public_key)) fail(userId, keyId, 'M_INVALID_SIGNATURE', 'Invalid signature');
          else store.push(this.signatureRow(signed, own, usk.public_key, userId, keyId));
        }
      }
    }
    if (store.length > 0) {
      const audience = await this.helpers.audienceOf(own);
      // Each own device signed is a change of that device; the rest change the cross-signing keys.
      const isOwnDevice = (r: E2eSignatureRow) => r.target_user_id === own && ownDevices.has(r.target_key_id);
      const changed: (string | null)[] = [...new Set(store.filter(isOwnDevice).map((r) => r.target_key_id))];
      if (store.some((r) => !isOwnDevice(r))) changed.push(null);
      const pos = await this.ctx.db.transaction().execute(async (trx) => {
        await putSignatures(trx, store);
        const first = await nextPositions(trx, 'device_lists', changed.length);
        for (let i = 0; i < changed.length; i++) await recordDeviceListChanges(trx, first + i, [own], changed[i]);
        return first + changed.length - 1;
      });
      this.ctx.bus.publish({ stream: 'device_lists', pos, userIds: audience });
    }
    return { failures };
  }

  private verifySignature(obj: JsonObject, signer: string, publicKey: string, keyId = `ed25519:${publicKey}`): boolean {
    let pub: Uint8Array;
    try {
      pub = decodeBase64(publicKey);
    } catch {
      return false;
    }
    return verifyJsonSignature(obj, signer, keyId, pub);
  }

  private signatureRow(
    signed: JsonObject,
    signer: string,
    publicKey: string,
    targetUser: string,
    targetKey: string,
    keyId = `ed25519:${publicKey}`,
  ): E2eSignatureRow {
    const sig = ((signed.signatures as Record<string, Record<string, string>>)[signer] ?? {})[keyId];
    return { signer_user_id: signer, signer_key_id: keyId, target_user_id: targetUser, target_key_id: targetKey, signature: sig };
  }

  /**
   * Replacing cross-signing keys needs user-interactive auth (spec: POST
   * /keys/device_signing/upload); accounts runs it.
   */
  private async requireUserInteractiveAuth(requester: Requester, body: JsonObject, request: { method: string; path: string }): Promise<void> {
    await this.ctx.services.accounts.uia.check({ ...request, body, userId: requester.userId }, [['m.login.password']]);
  }
}
