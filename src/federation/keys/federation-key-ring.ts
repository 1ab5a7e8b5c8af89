/**
 * Remote servers' signing keys, for the inbound event path (KeyRing) and for X-Matrix request
 * checks. Keys are looked up in memory, then in `federation_server_keys` (so a restart does not
 * refetch), then fetched: from the server itself, and when it does not answer, from the notary
 * servers in `federation.trusted_key_servers` (their answers must carry both the server's and
 * the notary's signatures). One fetch per server at a time; a failed fetch is not retried for
 * a minute.
 */
import type { Logger } from 'pino';
import { decodeBase64 } from '../../core/base64.js';
import { verifyJsonSignature } from '../../core/signing.js';
import type { Db } from '../../db/schema.js';
import type { KeyRing, StaticKeyRing, VerifyKey } from '../../rooms/inbound/key-ring.js';
import type { FederationClient } from '../client.js';
import { selectServerKeys, upsertServerKeys } from '../server-keys-table.js';
import type { ServerKeyRow } from '../tables.js';
import { verifyKeyResponse } from './verify-key-response.js';

interface KnownKey extends VerifyKey {
  /** Set for an old key: it signs events from before this time, never requests. */
  expiredTs: number | null;
}

const RETRY_AFTER_FAILURE_MS = 60_000;
const MAX_SERVERS_IN_MEMORY = 10_000;

export class FederationKeyRing implements KeyRing {
  private readonly known = new Map<string, Map<string, KnownKey>>();
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly lastFailure = new Map<string, number>();

  constructor(
    private readonly opts: {
      db: Db;
      /** This server's own key and keys added by hand, asked first. */
      local: StaticKeyRing;
      localServer: string;
      client: FederationClient;
      notaries: string[];
      logger: Logger;
      now: () => number;
    },
  ) {}

  async getKeys(server: string, keyIds: string[]): Promise<Map<string, VerifyKey>> {
    const out = await this.opts.local.getKeys(server, keyIds);
    if (out.size === keyIds.length || server === this.opts.localServer) return out;
    let known = await this.load(server);
    const now = this.opts.now();
    const stale = (k: KnownKey | undefined) => k === undefined || (k.expiredTs === null && k.validUntilTs < now);
    if (keyIds.some((id) => !out.has(id) && stale(known.get(id)))) {
      await this.refresh(server);
      known = await this.load(server);
    }
    for (const id of keyIds) {
      const k = known.get(id);
      if (k && !out.has(id)) out.set(id, { key: k.key, validUntilTs: k.validUntilTs });
    }
    return out;
  }

  /** A current (not old, not expired) key of `server` for checking a request's signature. */
  async requestKey(server: string, keyId: string): Promise<Uint8Array | undefined> {
    const local = (await this.opts.local.getKeys(server, [keyId])).get(keyId);
    if (local) return local.key;
    const usable = (k: KnownKey | undefined) => k !== undefined && k.expiredTs === null && k.validUntilTs >= this.opts.now();
    let k = (await this.load(server)).get(keyId);
    if (!usable(k)) {
      await this.refresh(server);
      k = (await this.load(server)).get(keyId);
    }
    return usable(k) ? k!.key : undefined;
  }

  /** Stores the keys of a response verified elsewhere (the notary endpoint's own fetches). */
  async remember(rows: ServerKeyRow[]): Promise<void> {
    if (rows.length === 0) return;
    await upsertServerKeys(this.opts.db, rows);
    this.known.delete(rows[0]!.server_name);
  }

  /** Fetches `server`'s keys now (deduplicated, at most once a minute after a failure). */
  refresh(server: string): Promise<void> {
    const running = this.inFlight.get(server);
    if (running) return running;
    const failed = this.lastFailure.get(server);
    if (failed !== undefined && this.opts.now() - failed < RETRY_AFTER_FAILURE_MS) return Promise.resolve();
    const p = this.fetch(server)
      .then(
        () => void this.lastFailure.delete(server),
        (e: unknown) => {
          this.lastFailure.set(server, this.opts.now());
          this.opts.logger.info({ server, err: (e as Error).message }, 'could not fetch server keys');
        },
      )
      .finally(() => this.inFlight.delete(server));
    this.inFlight.set(server, p);
    return p;
  }

  /** The server's own response, verified. */
  async fetchDirect(server: string): Promise<ServerKeyRow[]> {
    const json = await this.opts.client.request(server, { method: 'GET', path: '/_matrix/key/v2/server', signed: false, timeoutMs: 10_000, maxBytes: 1024 * 1024 });
    return verifyKeyResponse(json, server, this.opts.now());
  }

  private async fetch(server: string): Promise<void> {
    let directError: Error;
    try {
      await this.remember(await this.fetchDirect(server));
      return;
    } catch (e) {
      directError = e as Error;
    }
    for (const notary of this.opts.notaries) {
      if (notary === server || notary === this.opts.localServer) continue;
      try {
        const rows = await this.fetchViaNotary(notary, server);
        if (rows.length > 0) {
          await this.remember(rows);
          return;
        }
      } catch (e) {
        this.opts.logger.info({ server, notary, err: (e as Error).message }, 'notary key query failed');
      }
    }
    throw directError;
  }

  /** `POST /_matrix/key/v2/query` at a notary: answers signed by the server and by the notary. */
  async fetchViaNotary(notary: string, server: string): Promise<ServerKeyRow[]> {
    const answer = await this.opts.client.request<{ server_keys?: unknown }>(notary, {
      method: 'POST',
      path: '/_matrix/key/v2/query',
      body: { server_keys: { [server]: {} } },
      timeoutMs: 15_000,
      maxBytes: 4 * 1024 * 1024,
    });
    if (!Array.isArray(answer.server_keys)) return [];
    const rows: ServerKeyRow[] = [];
    for (const response of answer.server_keys) {
      if ((response as { server_name?: unknown })?.server_name !== server) continue;
      const notarySigs = Object.keys((response as { signatures?: Record<string, Record<string, string>> }).signatures?.[notary] ?? {});
      const notaryKeys = await this.getKeys(notary, notarySigs);
      const signedByNotary = notarySigs.some((id) => {
        const k = notaryKeys.get(id);
        return k !== undefined && verifyJsonSignature(response as object, notary, id, k.key);
      });
      if (!signedByNotary) continue;
      rows.push(...verifyKeyResponse(response, server, this.opts.now()));
    }
    return rows;
  }

  private async load(server: string): Promise<Map<string, KnownKey>> {
    const hit = this.known.get(server);
    if (hit) return hit;
    const m = new Map<string, KnownKey>();
    for (const r of await selectServerKeys(this.opts.db, server)) {
      m.set(r.key_id, { key: decodeBase64(r.public_key), validUntilTs: Number(r.valid_until_ts), expiredTs: r.expired_ts === null ? null : Number(r.expired_ts) });
    }
    if (this.known.size >= MAX_SERVERS_IN_MEMORY) this.known.clear();
    this.known.set(server, m);
    return m;
  }
}
