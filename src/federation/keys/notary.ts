/**
 * The notary side of key queries (spec: server-server API, "Querying Keys Through Another
 * Server"; keys_query.yaml): for each server asked about, its own key responses as cached here
 * (fetched from it when there are none, or none valid until the asked time), each with this
 * server's signature added. This server's own keys come from OwnServerKeys. A server that
 * cannot be reached and has nothing cached is left out.
 */
import { signJson, type SigningKey } from '../../core/signing.js';
import type { Db } from '../../db/schema.js';
import { selectServerKeys } from '../server-keys-table.js';
import type { FederationKeyRing } from './federation-key-ring.js';
import type { OwnServerKeys } from './own-keys.js';

export const MAX_SERVERS_PER_QUERY = 100;

export class KeyNotary {
  constructor(
    private readonly opts: {
      db: Db;
      serverName: string;
      signingKey: SigningKey;
      own: OwnServerKeys;
      keyRing: FederationKeyRing;
      now: () => number;
    },
  ) {}

  /** `minValidUntil` per server name (the current time when not given). */
  async query(servers: Map<string, number | undefined>): Promise<object[]> {
    const answers = await Promise.all([...servers].slice(0, MAX_SERVERS_PER_QUERY).map(([s, min]) => this.responsesFor(s, min ?? this.opts.now())));
    return answers.flat().map((r) => signJson(r, this.opts.serverName, this.opts.signingKey));
  }

  private async responsesFor(server: string, minValidUntil: number): Promise<object[]> {
    if (server === this.opts.serverName) return [this.opts.own.response()];
    let cached = await this.cached(server);
    if (!cached.some((c) => c.validUntil >= minValidUntil)) {
      try {
        await this.opts.keyRing.remember(await this.opts.keyRing.fetchDirect(server));
        cached = await this.cached(server);
      } catch {
        // Offline or answering badly: what is cached is served, as the spec allows.
      }
    }
    return cached.map((c) => c.json);
  }

  /** The distinct stored responses of `server`, newest first. */
  private async cached(server: string): Promise<{ json: Record<string, unknown>; validUntil: number }[]> {
    const rows = await selectServerKeys(this.opts.db, server);
    const byText = new Map<string, { json: Record<string, unknown>; validUntil: number; fetched: number }>();
    for (const r of rows) {
      if (byText.has(r.response_json)) continue;
      const json = JSON.parse(r.response_json) as Record<string, unknown>;
      byText.set(r.response_json, { json, validUntil: Number(json.valid_until_ts), fetched: Number(r.fetched_ts) });
    }
    return [...byText.values()].sort((a, b) => b.fetched - a.fetched);
  }
}
