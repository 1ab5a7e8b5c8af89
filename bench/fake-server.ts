// Another homeserver as far as Hearth can tell, for the federation benchmarks: its own name and
// signing key, a key endpoint on loopback (so Hearth fetches its key the ordinary way), a /send
// endpoint that takes any transaction, and a builder of its users' events, signed here, chained
// one after the other in a room.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { authEventSelection } from '../src/core/auth-rules.js';
import { finaliseEvent, type EventDraft } from '../src/core/event-format.js';
import { getRoomVersion } from '../src/core/room-versions.js';
import { generateSigningKey, publicKeyBase64, signJson, type SigningKey } from '../src/core/signing.js';
import { stateKey, type JsonObject, type Pdu, type StateMap } from '../src/core/types.js';
import { signRequest } from '../src/federation/x-matrix.js';

export class FakeServer {
  readonly key: SigningKey = generateSigningKey();
  /** PDUs received through /send. */
  received = 0;
  private http: Server | null = null;
  url = '';

  constructor(readonly serverName: string) {}

  user(localpart: string): string {
    return `@${localpart}:${this.serverName}`;
  }

  /** Starts answering on 127.0.0.1: its keys, and 200 to any transaction. */
  async listen(): Promise<this> {
    const keys = () =>
      signJson({ server_name: this.serverName, verify_keys: { [this.key.keyId]: { key: publicKeyBase64(this.key) } }, old_verify_keys: {}, valid_until_ts: Date.now() + 24 * 3600_000 }, this.serverName, this.key);
    this.http = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const reply = (status: number, body: unknown) => {
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(JSON.stringify(body));
        };
        const path = (req.url ?? '').split('?')[0]!;
        if (req.method === 'GET' && path === '/_matrix/key/v2/server') return reply(200, keys());
        if (req.method === 'PUT' && path.startsWith('/_matrix/federation/v1/send/')) {
          const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as { pdus?: unknown[] };
          this.received += body.pdus?.length ?? 0;
          return reply(200, { pdus: {} });
        }
        reply(404, { errcode: 'M_UNRECOGNIZED', error: 'Not served by this stand-in' });
      });
    });
    const http = this.http;
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', () => r()));
    this.url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    const http = this.http;
    if (!http) return;
    http.closeAllConnections();
    await new Promise<void>((r) => http.close(() => r()));
  }

  /** A client for federation requests to `destination` at `url`, signed as this server. */
  clientTo(destination: string, url: string): FederationCaller {
    return new FederationCaller(this, destination, url);
  }
}

/** A room as one chain of events, continued by several servers' stand-ins. */
export class RoomChain {
  /** The current state: type/state_key to event id, for choosing auth events. */
  readonly state: StateMap;
  private prev: string[];
  private depth: number;
  private ts = Date.now();

  constructor(readonly roomId: string, head: { state: StateMap; extremities: { eventId: string; depth: number }[] }, readonly version = getRoomVersion('10')!) {
    this.state = new Map(head.state);
    this.prev = head.extremities.map((e) => e.eventId);
    this.depth = Math.max(0, ...head.extremities.map((e) => e.depth));
  }

  /** The latest event's id. */
  get last(): string {
    return this.prev[0]!;
  }

  /** The next event, built and signed by `by`, pointing at the one before it. */
  next(by: FakeServer, sender: string, type: string, content: JsonObject, sk?: string): { eventId: string; pdu: Pdu } {
    const draft: EventDraft = {
      room_id: this.roomId, sender, type, content, origin_server_ts: this.ts++, depth: ++this.depth, prev_events: this.prev, auth_events: [],
    };
    if (sk !== undefined) draft.state_key = sk;
    draft.auth_events = authEventSelection(draft as Pdu, this.version)
      .map(([t, k]) => this.state.get(stateKey(t, k)))
      .filter((x): x is string => x !== undefined);
    const done = finaliseEvent(draft, this.version, by.serverName, by.key);
    if (sk !== undefined) this.state.set(stateKey(type, sk), done.eventId);
    this.prev = [done.eventId];
    return { eventId: done.eventId, pdu: done.pdu as Pdu };
  }

  join(by: FakeServer, userId: string) {
    return this.next(by, userId, 'm.room.member', { membership: 'join' }, userId);
  }
}

/** Signed federation requests from a stand-in to one Hearth server, over a keep-alive pool. */
export class FederationCaller {
  private readonly pool: Pool;
  constructor(private readonly from: FakeServer, private readonly destination: string, url: string) {
    this.pool = new Pool(url, { connections: 4, keepAliveTimeout: 60_000 });
  }

  put<T = unknown>(path: string, body: unknown): Promise<{ status: number; body: T }> {
    return this.call<T>('PUT', path, body);
  }

  get<T = unknown>(path: string): Promise<{ status: number; body: T }> {
    return this.call<T>('GET', path);
  }

  private async call<T>(method: 'GET' | 'PUT', path: string, body?: unknown): Promise<{ status: number; body: T }> {
    const authorization = signRequest({ method, uri: path, origin: this.from.serverName, destination: this.destination, content: body }, this.from.key);
    const headers: Record<string, string> = { authorization };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await this.pool.request({ method, path, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.body.text();
    return { status: res.statusCode, body: (text ? JSON.parse(text) : undefined) as T };
  }

  /** A transaction of `pdus`; throws unless every PDU was accepted. */
  async send(txnId: string, pdus: Pdu[]): Promise<void> {
    const r = await this.put<{ pdus?: Record<string, { error?: string }> }>(`/_matrix/federation/v1/send/${encodeURIComponent(txnId)}`, {
      origin: this.from.serverName, origin_server_ts: Date.now(), pdus, edus: [],
    });
    if (r.status !== 200) throw new Error(`/send ${txnId}: ${r.status} ${JSON.stringify(r.body)}`);
    const failed = Object.entries(r.body.pdus ?? {}).filter(([, a]) => a.error !== undefined);
    if (failed.length > 0) throw new Error(`/send ${txnId}: ${failed.length} PDUs refused, the first: ${JSON.stringify(failed[0])}`);
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}
