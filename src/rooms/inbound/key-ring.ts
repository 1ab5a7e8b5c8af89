import type { SigningKey } from '../../core/signing.js';

/** A server's public signing key as a verifier needs it. */
export interface VerifyKey {
  key: Uint8Array;
  /** Signatures on events sent after this (origin_server_ts, ms) are not valid from room v5 on. */
  validUntilTs: number;
}

/**
 * Where signature checks get servers' public keys. The inbound event path
 * asks for the keys an event's signatures name; federation fills the ring
 * with remote servers' keys (fetched directly or through a notary).
 */
export interface KeyRing {
  /** Those of `keyIds` known for `server` (fetched if need be); unknown ids are absent. */
  getKeys(server: string, keyIds: string[]): Promise<Map<string, VerifyKey>>;
}

/** This server's own keys and keys added by hand (tests, and the keys federation has verified). */
export class StaticKeyRing implements KeyRing {
  private readonly keys = new Map<string, Map<string, VerifyKey>>();

  constructor(serverName: string, own: SigningKey) {
    this.add(serverName, own.keyId, own.publicKey);
  }

  add(server: string, keyId: string, key: Uint8Array, validUntilTs = Number.MAX_SAFE_INTEGER): void {
    let m = this.keys.get(server);
    if (!m) this.keys.set(server, (m = new Map()));
    m.set(keyId, { key, validUntilTs });
  }

  async getKeys(server: string, keyIds: string[]): Promise<Map<string, VerifyKey>> {
    const out = new Map<string, VerifyKey>();
    const m = this.keys.get(server);
    if (m) for (const id of keyIds) {
      const k = m.get(id);
      if (k) out.set(id, k);
    }
    return out;
  }
}
