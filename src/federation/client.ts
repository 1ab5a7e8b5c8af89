/**
 * Outbound federation requests: the destination found by ServerDiscovery, the request signed with
 * X-Matrix, one undici connection pool per destination (its own SNI, certificate check and
 * guarded DNS lookup), and a time limit on every request. JSON answers are read and parsed;
 * `getRaw` and `getLocation` hand the answer back unread for callers that stream it (media).
 */
import { isIP } from 'node:net';
import type { Agent, Dispatcher } from 'undici';
import type { SigningKey } from '../core/signing.js';
import type { OutboundGuard } from '../http/outbound-guard.js';
import { loadUndici, type Undici } from '../http/undici.js';
import { unwrapRefusal, type ResolvedServer, type ServerDiscovery } from './discovery.js';
import { signRequest } from './x-matrix.js';

export class FederationRequestError extends Error {
  constructor(
    readonly destination: string,
    /** 0 when no answer came (connection refused, timeout, refused address). */
    readonly status: number,
    message: string,
    readonly body?: unknown,
  ) {
    super(`${destination}: ${message}`);
  }

  get errcode(): string | undefined {
    const e = (this.body as { errcode?: unknown } | undefined)?.errcode;
    return typeof e === 'string' ? e : undefined;
  }
}

export interface FederationRequest {
  method: 'GET' | 'PUT' | 'POST' | 'DELETE';
  /** Path from `/_matrix/...`, with its query string. */
  path: string;
  body?: unknown;
  /** Sign with X-Matrix (default true); key server endpoints take unsigned requests. */
  signed?: boolean;
  timeoutMs?: number;
  /** Largest answer accepted, in bytes (default 16 MiB). */
  maxBytes?: number;
  /** Ends the request early (shutdown). */
  signal?: AbortSignal;
}

/** An answer handed back unread, for callers that stream the body (media bytes, multipart). */
export interface RawAnswer {
  status: number;
  headers: Dispatcher.ResponseData['headers'];
  body: Dispatcher.ResponseData['body'];
}

const RESOLVED_TTL_MS = 10 * 60_000;
const MAX_POOLS = 1000;
const MAX_REDIRECTS = 3;
/** Longest pause between two chunks of a streamed answer. */
const STREAM_IDLE_MS = 60_000;

export class FederationClient {
  private readonly pools = new Map<string, { agent: Agent; resolved: ResolvedServer; expires: number }>();
  /** Pool for URLs off any server's own address (a media `Location`); every connect passes the guard. */
  private guardedAgent: Agent | undefined;

  constructor(
    private readonly opts: {
      serverName: string;
      signingKey: SigningKey;
      discovery: ServerDiscovery;
      guard: OutboundGuard;
      verifyTls: boolean;
      now?: () => number;
      userAgent?: string;
    },
  ) {}

  async close(): Promise<void> {
    const agents = [...this.pools.values()].map((p) => p.agent);
    if (this.guardedAgent) agents.push(this.guardedAgent);
    this.guardedAgent = undefined;
    this.pools.clear();
    await Promise.all(agents.map((a) => a.close()));
  }

  /** Sends one request to `destination` (a server name) and returns the parsed JSON answer. */
  async request<T = unknown>(destination: string, req: FederationRequest): Promise<T> {
    const timeoutMs = req.timeoutMs ?? 30_000;
    const { agent, resolved } = await this.pool(destination).catch((e: unknown) => {
      throw new FederationRequestError(destination, 0, `cannot resolve: ${(e as Error).message}`);
    });
    const headers: Record<string, string> = { host: resolved.host, 'user-agent': this.opts.userAgent ?? 'Hearth' };
    let body: string | undefined;
    if (req.body !== undefined) {
      body = JSON.stringify(req.body);
      headers['content-type'] = 'application/json';
    }
    if (req.signed !== false) {
      headers.authorization = signRequest(
        { method: req.method, uri: req.path, origin: this.opts.serverName, destination, content: req.body },
        this.opts.signingKey,
      );
    }
    const { request } = await loadUndici();
    let res: Dispatcher.ResponseData;
    try {
      res = await request(resolved.baseUrl + req.path, {
        dispatcher: agent,
        method: req.method,
        headers,
        body,
        signal: req.signal ? AbortSignal.any([req.signal, AbortSignal.timeout(timeoutMs)]) : AbortSignal.timeout(timeoutMs),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
    } catch (e) {
      const refused = unwrapRefusal(e);
      throw new FederationRequestError(destination, 0, refused ? refused.message : `request failed: ${(e as Error).message}`);
    }
    const text = await readCapped(res.body, req.maxBytes ?? 16 * 1024 * 1024).catch((e: unknown) => {
      throw new FederationRequestError(destination, 0, `reading the answer failed: ${(e as Error).message}`);
    });
    let parsed: unknown;
    try {
      parsed = text.length > 0 ? JSON.parse(text) : {};
    } catch {
      throw new FederationRequestError(destination, res.statusCode, 'answer is not JSON');
    }
    if (res.statusCode < 200 || res.statusCode >= 300) {
      throw new FederationRequestError(destination, res.statusCode, `${req.method} ${req.path.split('?')[0]} answered ${res.statusCode}`, parsed);
    }
    return parsed as T;
  }

  /**
   * A signed GET whose answer, whatever its status, is handed back unread: the caller streams the
   * body (and must consume or dump it). `timeoutMs` bounds the wait for the headers; the body may
   * take as long as it keeps flowing.
   */
  async getRaw(destination: string, path: string, timeoutMs = 30_000): Promise<RawAnswer> {
    const { agent, resolved } = await this.pool(destination).catch((e: unknown) => {
      throw new FederationRequestError(destination, 0, `cannot resolve: ${(e as Error).message}`);
    });
    const authorization = signRequest({ method: 'GET', uri: path, origin: this.opts.serverName, destination }, this.opts.signingKey);
    return this.sendRaw(destination, resolved.baseUrl + path, agent, { host: resolved.host, authorization }, timeoutMs);
  }

  /**
   * A plain GET of a URL `destination` pointed to (a media `Location`), following a few
   * redirects, answer unread. Only `destination`'s own operator-mapped address skips the guard.
   */
  async getLocation(destination: string, url: string, timeoutMs = 30_000): Promise<RawAnswer> {
    const { agent, resolved } = await this.pool(destination).catch((e: unknown) => {
      throw new FederationRequestError(destination, 0, `cannot resolve: ${(e as Error).message}`);
    });
    const undici = await loadUndici();
    let current = new URL(url);
    for (let hop = 0; ; hop++) {
      if (current.protocol !== 'https:' && current.protocol !== 'http:') throw new FederationRequestError(destination, 0, `unsupported URL scheme ${current.protocol}`);
      const onOrigin = resolved.trusted && current.origin === new URL(resolved.baseUrl).origin;
      const host = current.hostname.replace(/^\[(.*)\]$/, '$1');
      // A literal address never goes through the guarded lookup, so it is checked here.
      if (!onOrigin && isIP(host) !== 0) {
        try {
          this.opts.guard.check(host);
        } catch (e) {
          throw new FederationRequestError(destination, 0, (e as Error).message);
        }
      }
      const answer = await this.sendRaw(destination, current.toString(), onOrigin ? agent : this.offOriginAgent(undici), {}, timeoutMs);
      const location = answer.headers.location;
      if (answer.status >= 300 && answer.status < 400 && typeof location === 'string') {
        await answer.body.dump().catch(() => {});
        if (hop >= MAX_REDIRECTS) throw new FederationRequestError(destination, 0, 'too many redirects');
        current = new URL(location, current);
        continue;
      }
      return answer;
    }
  }

  private offOriginAgent(undici: Undici): Agent {
    this.guardedAgent ??= new undici.Agent({
      connect: { timeout: 10_000, rejectUnauthorized: this.opts.verifyTls, lookup: this.opts.guard.lookup },
      keepAliveTimeout: 30_000,
    });
    return this.guardedAgent;
  }

  private async sendRaw(destination: string, url: string, agent: Agent, headers: Record<string, string>, timeoutMs: number): Promise<RawAnswer> {
    const { request } = await loadUndici();
    try {
      const res = await request(url, {
        dispatcher: agent,
        method: 'GET',
        headers: { 'user-agent': this.opts.userAgent ?? 'Hearth', ...headers },
        headersTimeout: timeoutMs,
        bodyTimeout: STREAM_IDLE_MS,
      });
      return { status: res.statusCode, headers: res.headers, body: res.body };
    } catch (e) {
      const refused = unwrapRefusal(e);
      throw new FederationRequestError(destination, 0, refused ? refused.message : `GET ${new URL(url).origin} failed: ${(e as Error).message}`);
    }
  }

  private async pool(destination: string): Promise<{ agent: Agent; resolved: ResolvedServer }> {
    const now = (this.opts.now ?? Date.now)();
    const hit = this.pools.get(destination);
    if (hit && hit.expires > now) return hit;
    const resolved = await this.opts.discovery.resolve(destination);
    if (hit && hit.resolved.baseUrl === resolved.baseUrl && hit.resolved.tlsName === resolved.tlsName && hit.resolved.trusted === resolved.trusted) {
      hit.expires = now + RESOLVED_TTL_MS;
      hit.resolved = resolved;
      return hit;
    }
    const undici = await loadUndici();
    if (hit) void hit.agent.close();
    if (this.pools.size >= MAX_POOLS) {
      const [oldest, entry] = this.pools.entries().next().value!;
      this.pools.delete(oldest);
      void entry.agent.close();
    }
    const agent = new undici.Agent({
      connect: {
        timeout: 10_000,
        rejectUnauthorized: this.opts.verifyTls,
        ...(resolved.tlsName !== undefined ? { servername: resolved.tlsName } : {}),
        // Addresses from the operator's resolve map are trusted; discovered ones pass the guard on every connect.
        ...(resolved.trusted ? {} : { lookup: this.opts.guard.lookup }),
      },
      keepAliveTimeout: 30_000,
      connections: 8,
    });
    const entry = { agent, resolved, expires: now + RESOLVED_TTL_MS };
    this.pools.set(destination, entry);
    return entry;
  }
}

async function readCapped(body: AsyncIterable<Buffer>, max: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of body) {
    size += c.length;
    if (size > max) throw new Error(`answer larger than ${max} bytes`);
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString('utf8');
}
