/**
 * An identity server stand-in (identity service API v2, the parts a homeserver calls): its own
 * ed25519 key, hashed lookups, stored invites delivered through the homeserver's `/3pid/onbind`
 * when the address is bound, `/pubkey/isvalid`, binds of sessions the test validates up front,
 * and unbinds (the X-Matrix header kept for the test to look at).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { encodeUnpaddedBase64Url } from '../../src/core/base64.js';
import { generateSigningKey, publicKeyBase64, signJson, type SigningKey } from '../../src/core/signing.js';
import { httpServer, json } from '../federation/federation-helpers.js';

export const ID_TOKEN = 'id-access-token';
const PEPPER = 'matrixrocks';

export interface StoredInviteRecord {
  medium: string;
  address: string;
  room_id: string;
  sender: string;
  token: string;
  body: Record<string, unknown>;
}

async function readBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? (JSON.parse(text) as Record<string, unknown>) : {};
}

export class FakeIdentityServer {
  readonly key: SigningKey = generateSigningKey('0');
  /** address -> mxid */
  readonly bindings = new Map<string, string>();
  /** sid -> the address a session validated (set by the test). */
  readonly sessions = new Map<string, { client_secret: string; address: string }>();
  readonly invites: StoredInviteRecord[] = [];
  readonly unbinds: { body: Record<string, unknown>; authorization: string }[] = [];
  readonly validityChecks: string[] = [];
  /** Answers /pubkey/isvalid with false once set. */
  revoked = false;
  name = '';
  url = '';
  private http!: Awaited<ReturnType<typeof httpServer>>;

  /** `homeserverUrl` maps a server name to where its federation API is served (for onbind). */
  constructor(private readonly homeserverUrl: (serverName: string) => string) {}

  async start(): Promise<void> {
    this.http = await httpServer((req, res) => {
      this.handle(req, res).catch((e: unknown) => json(res, 500, { errcode: 'M_UNKNOWN', error: String(e) }));
    });
    this.url = this.http.url;
    this.name = `127.0.0.1:${this.http.port}`;
  }

  close(): Promise<void> {
    return this.http.close();
  }

  get publicKey(): string {
    return publicKeyBase64(this.key);
  }

  private authorised(req: IncomingMessage): boolean {
    return req.headers.authorization === `Bearer ${ID_TOKEN}`;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    const p = url.pathname;
    if (p === '/_matrix/identity/v2/pubkey/isvalid') {
      this.validityChecks.push(url.searchParams.get('public_key') ?? '');
      return json(res, 200, { valid: !this.revoked && url.searchParams.get('public_key') === this.publicKey });
    }
    if (p === '/_matrix/identity/v2/3pid/unbind' && req.method === 'POST') {
      const body = await readBody(req);
      this.unbinds.push({ body, authorization: req.headers.authorization ?? '' });
      const threepid = body.threepid as { address: string };
      if (this.bindings.get(threepid.address) !== body.mxid) return json(res, 404, { errcode: 'M_NOT_FOUND', error: 'not bound' });
      this.bindings.delete(threepid.address);
      return json(res, 200, {});
    }
    if (!this.authorised(req)) return json(res, 401, { errcode: 'M_UNAUTHORIZED', error: 'bad identity server token' });
    if (p === '/_matrix/identity/v2/hash_details') return json(res, 200, { algorithms: ['none', 'sha256'], lookup_pepper: PEPPER });
    if (p === '/_matrix/identity/v2/lookup' && req.method === 'POST') {
      const body = await readBody(req);
      if (body.pepper !== PEPPER || body.algorithm !== 'sha256') return json(res, 400, { errcode: 'M_INVALID_PEPPER', error: 'wrong pepper' });
      const mappings: Record<string, string> = {};
      for (const [address, mxid] of this.bindings) {
        const hash = encodeUnpaddedBase64Url(createHash('sha256').update(`${address} email ${PEPPER}`).digest());
        if ((body.addresses as string[]).includes(hash)) mappings[hash] = mxid;
      }
      return json(res, 200, { mappings });
    }
    if (p === '/_matrix/identity/v2/store-invite' && req.method === 'POST') {
      const body = await readBody(req);
      const token = randomBytes(12).toString('base64url');
      this.invites.push({ medium: body.medium as string, address: body.address as string, room_id: body.room_id as string, sender: body.sender as string, token, body });
      return json(res, 200, {
        token,
        display_name: `${String(body.address).slice(0, 2)}...`,
        public_keys: [{ public_key: this.publicKey, key_validity_url: `${this.url}/_matrix/identity/v2/pubkey/isvalid` }],
      });
    }
    if (p === '/_matrix/identity/v2/3pid/bind' && req.method === 'POST') {
      const body = await readBody(req);
      const session = this.sessions.get(body.sid as string);
      if (!session || session.client_secret !== body.client_secret) return json(res, 400, { errcode: 'M_SESSION_NOT_VALIDATED', error: 'not validated' });
      const mxid = body.mxid as string;
      this.bindings.set(session.address, mxid);
      const now = Date.now();
      const association = signJson({ address: session.address, medium: 'email', mxid, not_before: now, not_after: now + 1e10, ts: now }, this.name, this.key);
      await this.notifyBound(session.address, mxid);
      return json(res, 200, association);
    }
    json(res, 404, { errcode: 'M_UNRECOGNIZED', error: `unknown ${req.method} ${p}` });
  }

  /**
   * The signed proof for one stored invite, signed with `key` (default: this server's): what
   * onbind carries, or with the inviter as `sender`, what /sign-ed25519 gives a client to join with.
   */
  signedFor(mxid: string, token: string, key: SigningKey = this.key, sender?: string): Record<string, unknown> {
    return signJson(sender === undefined ? { mxid, token } : { mxid, sender, token }, this.name, key) as unknown as Record<string, unknown>;
  }

  /** Tells the homeserver of `mxid` about the invites waiting for `address`, as a real identity server does after a bind. */
  private async notifyBound(address: string, mxid: string): Promise<void> {
    const waiting = this.invites.filter((i) => i.address === address);
    if (waiting.length === 0) return;
    const invites = waiting.map((i) => ({ medium: i.medium, address, mxid, room_id: i.room_id, sender: i.sender, signed: this.signedFor(mxid, i.token) }));
    const server = mxid.slice(mxid.indexOf(':') + 1);
    const res = await fetch(`${this.homeserverUrl(server)}/_matrix/federation/v1/3pid/onbind`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ medium: 'email', address, mxid, invites }),
    });
    if (res.status !== 200) throw new Error(`onbind answered ${res.status}: ${await res.text()}`);
  }
}
