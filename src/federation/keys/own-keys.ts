/**
 * This server's key response (`GET /_matrix/key/v2/server`): the current signing key, the old
 * keys the operator lists in `federation.old_verify_keys`, a validity of one day, signed with the
 * current key. Signed once and kept until half its validity has passed.
 */
import { publicKeyBase64, signJson, type SigningKey } from '../../core/signing.js';

export interface OldVerifyKey {
  key: string;
  expired_ts: number;
}

const VALIDITY_MS = 24 * 3600_000;

export class OwnServerKeys {
  private cached: { json: Record<string, unknown>; refreshAfter: number } | undefined;

  constructor(
    private readonly serverName: string,
    private readonly key: SigningKey,
    private readonly oldKeys: Record<string, OldVerifyKey>,
    private readonly now: () => number,
  ) {}

  response(): Record<string, unknown> {
    const now = this.now();
    if (this.cached && this.cached.refreshAfter > now) return this.cached.json;
    const unsigned = {
      server_name: this.serverName,
      verify_keys: { [this.key.keyId]: { key: publicKeyBase64(this.key) } },
      old_verify_keys: Object.fromEntries(Object.entries(this.oldKeys).map(([id, k]) => [id, { key: k.key, expired_ts: k.expired_ts }])),
      valid_until_ts: now + VALIDITY_MS,
    };
    const json = signJson(unsigned, this.serverName, this.key) as unknown as Record<string, unknown>;
    this.cached = { json, refreshAfter: now + VALIDITY_MS / 2 };
    return json;
  }
}
