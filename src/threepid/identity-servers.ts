/**
 * What a homeserver asks of an identity server (identity service API v2): binds made for a user,
 * unbinds signed by this server, hashed lookups and invitation storage for third-party invites.
 *
 * Only servers in `identity_server.trusted` are called; every connection goes through the
 * outbound guard (the address actually connected to must be public unless
 * `HEARTH_OUTBOUND_ALLOW` admits it), as `id_server` comes from the client.
 */
import { createHash } from 'node:crypto';
import type { HearthConfig } from '../config/schema.js';
import { encodeUnpaddedBase64Url } from '../core/base64.js';
import type { SigningKey } from '../core/signing.js';
import { unwrapRefusal } from '../federation/discovery.js';
import { signRequest } from '../federation/x-matrix.js';
import { MatrixError } from '../http/errors.js';
import type { OutboundGuard } from '../http/outbound-guard.js';
import { LazyAgent } from '../http/undici.js';

const TIMEOUT_MS = 15_000;
const MAX_ANSWER_BYTES = 64 * 1024;

/** The identity server answered with an error, or could not be reached (status 0). */
export class IdentityServerError extends Error {
  constructor(
    readonly idServer: string,
    readonly status: number,
    message: string,
    readonly body?: Record<string, unknown>,
  ) {
    super(message);
  }

  /** The error as the client sees it: the identity server's own Matrix error, passed on, or 502. */
  toMatrixError(): MatrixError {
    const b = this.body;
    if (this.status >= 400 && this.status < 500 && typeof b?.errcode === 'string') {
      return new MatrixError(this.status, b.errcode, typeof b.error === 'string' ? b.error : `The identity server ${this.idServer} refused the request`);
    }
    return new MatrixError(502, 'M_UNKNOWN', `The identity server ${this.idServer} could not be reached or failed: ${this.message}`);
  }
}

export interface StoredInvite {
  token: string;
  display_name: string;
  public_keys: { public_key: string; key_validity_url: string }[];
}

export interface InviteRoomInfo {
  room_id: string;
  sender: string;
  room_alias?: string;
  room_avatar_url?: string;
  room_join_rules?: string;
  room_name?: string;
  room_type?: string;
  sender_display_name?: string;
  sender_avatar_url?: string;
}

export class IdentityServers {
  private readonly agent: LazyAgent;

  constructor(
    private readonly opts: { config: HearthConfig['identity_server']; guard: OutboundGuard; serverName: string; signingKey: SigningKey },
  ) {
    this.agent = new LazyAgent({ connect: { lookup: opts.guard.lookup, timeout: TIMEOUT_MS }, keepAliveTimeout: 10_000, connections: 8 });
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  /** Throws 400 M_SERVER_NOT_TRUSTED unless the operator trusts `idServer`. */
  checkTrusted(idServer: unknown): string {
    if (typeof idServer !== 'string' || !this.opts.config.trusted.includes(idServer)) {
      throw new MatrixError(400, 'M_SERVER_NOT_TRUSTED', `This homeserver does not use the identity server ${String(idServer)}`);
    }
    return idServer;
  }

  /** POST /3pid/bind with the user's identity server access token; answers the signed association. */
  async bind(idServer: string, idAccessToken: string, body: { sid: string; client_secret: string; mxid: string }): Promise<Record<string, unknown>> {
    const answer = await this.call(idServer, 'POST', '/_matrix/identity/v2/3pid/bind', { bearer: idAccessToken, body });
    if (typeof answer.address !== 'string' || typeof answer.medium !== 'string') {
      throw new IdentityServerError(idServer, 200, 'the bind answer names no address');
    }
    return answer;
  }

  /** POST /3pid/unbind, signed by this server (X-Matrix); true when the identity server unbound it. */
  async unbind(idServer: string, mxid: string, threepid: { medium: string; address: string }): Promise<boolean> {
    const path = '/_matrix/identity/v2/3pid/unbind';
    const body = { mxid, threepid };
    const authorization = signRequest({ method: 'POST', uri: path, origin: this.opts.serverName, destination: idServer, content: body }, this.opts.signingKey);
    try {
      await this.call(idServer, 'POST', path, { authorization, body });
      return true;
    } catch (e) {
      if (e instanceof IdentityServerError) return false;
      throw e;
    }
  }

  /**
   * The Matrix ID bound to the address, or null (v2 lookup: `hash_details`, then `lookup` with
   * sha256 of "address medium pepper" when offered, the plain pair otherwise).
   */
  async lookup(idServer: string, idAccessToken: string, medium: string, address: string): Promise<string | null> {
    const details = await this.call(idServer, 'GET', '/_matrix/identity/v2/hash_details', { bearer: idAccessToken });
    const algorithms = Array.isArray(details.algorithms) ? details.algorithms : [];
    const pepper = typeof details.lookup_pepper === 'string' ? details.lookup_pepper : '';
    let algorithm: string;
    let key: string;
    if (algorithms.includes('sha256')) {
      algorithm = 'sha256';
      key = encodeUnpaddedBase64Url(createHash('sha256').update(`${address} ${medium} ${pepper}`).digest());
    } else if (algorithms.includes('none')) {
      algorithm = 'none';
      key = `${address} ${medium}`;
    } else {
      throw new IdentityServerError(idServer, 200, 'offers no lookup algorithm this server knows');
    }
    const answer = await this.call(idServer, 'POST', '/_matrix/identity/v2/lookup', { bearer: idAccessToken, body: { addresses: [key], algorithm, pepper } });
    const mappings = answer.mappings;
    const mxid = mappings !== null && typeof mappings === 'object' ? (mappings as Record<string, unknown>)[key] : undefined;
    return typeof mxid === 'string' ? mxid : null;
  }

  /** POST /store-invite: the identity server keeps the invite for whoever binds the address, and answers the keys it will sign with. */
  async storeInvite(idServer: string, idAccessToken: string, medium: string, address: string, room: InviteRoomInfo): Promise<StoredInvite> {
    const answer = await this.call(idServer, 'POST', '/_matrix/identity/v2/store-invite', { bearer: idAccessToken, body: { medium, address, ...room } });
    const keys = Array.isArray(answer.public_keys)
      ? answer.public_keys.filter(
          (k): k is { public_key: string; key_validity_url: string } =>
            k !== null && typeof k === 'object' && typeof k.public_key === 'string' && typeof k.key_validity_url === 'string',
        )
      : [];
    if (typeof answer.token !== 'string' || answer.token === '' || keys.length === 0) {
      throw new IdentityServerError(idServer, 200, 'the store-invite answer lacks a token or public keys');
    }
    return {
      token: answer.token,
      display_name: typeof answer.display_name === 'string' ? answer.display_name : '',
      public_keys: keys.map((k) => ({ public_key: k.public_key, key_validity_url: k.key_validity_url })),
    };
  }

  /**
   * GET `key_validity_url?public_key=...` (identity service `/pubkey/isvalid`, or the ephemeral
   * variant), the URL used as the invite gave it. False when the answer says so or cannot be had.
   */
  async keyIsValid(keyValidityUrl: string, publicKey: string): Promise<boolean> {
    let url: URL;
    try {
      url = new URL(keyValidityUrl);
    } catch {
      return false;
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') return false;
    url.searchParams.set('public_key', publicKey);
    try {
      const answer = await this.fetchJson(url.host, url, 'GET', {});
      return answer.valid === true;
    } catch (e) {
      if (e instanceof IdentityServerError) return false;
      throw e;
    }
  }

  private baseUrl(idServer: string): string {
    const configured = this.opts.config.resolve[idServer];
    return (configured ?? `https://${idServer}`).replace(/\/+$/, '');
  }

  private async call(
    idServer: string,
    method: 'GET' | 'POST',
    path: string,
    o: { bearer?: string; authorization?: string; body?: unknown },
  ): Promise<Record<string, unknown>> {
    return this.fetchJson(idServer, new URL(this.baseUrl(idServer) + path), method, o);
  }

  private async fetchJson(
    idServer: string,
    target: URL,
    method: 'GET' | 'POST',
    o: { bearer?: string; authorization?: string; body?: unknown },
  ): Promise<Record<string, unknown>> {
    const path = target.pathname;
    const host = target.hostname.replace(/^\[(.*)\]$/, '$1');
    const headers: Record<string, string> = { 'user-agent': 'Hearth' };
    if (o.bearer !== undefined) headers.authorization = `Bearer ${o.bearer}`;
    if (o.authorization !== undefined) headers.authorization = o.authorization;
    if (o.body !== undefined) headers['content-type'] = 'application/json';
    let res;
    try {
      // An IP literal never goes through the lookup: checked here.
      if (/^[\d.]+$/.test(host) || host.includes(':')) this.opts.guard.check(host);
      res = await this.agent.request(target, {
        method,
        headers,
        body: o.body === undefined ? undefined : JSON.stringify(o.body),
        signal: AbortSignal.timeout(TIMEOUT_MS),
        headersTimeout: TIMEOUT_MS,
        bodyTimeout: TIMEOUT_MS,
      });
    } catch (e) {
      const refused = unwrapRefusal(e);
      throw new IdentityServerError(idServer, 0, refused ? refused.message : `request failed: ${(e as Error).message}`);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of res.body) {
      size += (c as Buffer).length;
      if (size > MAX_ANSWER_BYTES) {
        res.body.destroy();
        throw new IdentityServerError(idServer, res.statusCode, 'answer too large');
      }
      chunks.push(c as Buffer);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      parsed = undefined;
    }
    const obj = parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
    if (res.statusCode < 200 || res.statusCode >= 300) throw new IdentityServerError(idServer, res.statusCode, `${method} ${path} answered ${res.statusCode}`, obj);
    if (!obj) throw new IdentityServerError(idServer, res.statusCode, `${method} ${path} answered no JSON object`);
    return obj;
  }
}
