/**
 * Outbound HTTP for remote media: GETs to another server, found by ServerDiscovery and signed
 * with X-Matrix, whose answers are handed back unread (status, headers, body stream) so media
 * bytes stream into the store. Addresses found by discovery pass the OutboundGuard on every
 * connect; so do the URLs a `Location` part points to, unless they are on the origin server's
 * own operator-mapped (trusted) address.
 */
import { Agent, request, type Dispatcher } from 'undici';
import type { SigningKey } from '../core/signing.js';
import type { ResolvedServer, ServerDiscovery } from '../federation/discovery.js';
import { signRequest } from '../federation/x-matrix.js';
import type { OutboundGuard } from '../http/outbound-guard.js';

const RESOLVED_TTL_MS = 10 * 60_000;
const MAX_REDIRECTS = 3;

export class RemoteUnreachable extends Error {}

export interface RemoteAnswer {
  status: number;
  headers: Dispatcher.ResponseData['headers'];
  body: Dispatcher.ResponseData['body'];
}

export class FederationMediaClient {
  private readonly resolved = new Map<string, { server: ResolvedServer; expires: number }>();
  /** Connection pools for servers by how they are reached (trust, TLS name); the guarded pool for other URLs. */
  private readonly agents = new Map<string, Agent>();
  private readonly guardedAgent: Agent;

  constructor(
    private readonly opts: {
      serverName: string;
      signingKey: SigningKey;
      discovery: ServerDiscovery;
      guard: OutboundGuard;
      verifyTls: boolean;
      userAgent: string;
      now: () => number;
    },
  ) {
    this.guardedAgent = new Agent({ connect: { timeout: 10_000, rejectUnauthorized: opts.verifyTls, lookup: opts.guard.lookup }, keepAliveTimeout: 30_000 });
  }

  async close(): Promise<void> {
    const agents = [this.guardedAgent, ...this.agents.values()];
    this.agents.clear();
    await Promise.all([...agents.map((a) => a.close()), this.opts.discovery.close()]);
  }

  private agentFor(server: ResolvedServer | undefined): Agent {
    if (!server) return this.guardedAgent;
    const key = `${server.trusted}|${server.tlsName ?? ''}`;
    let agent = this.agents.get(key);
    if (!agent) {
      if (this.agents.size >= 1000) {
        const [oldKey, old] = this.agents.entries().next().value!;
        this.agents.delete(oldKey);
        void old.close();
      }
      agent = new Agent({
        connect: {
          timeout: 10_000,
          rejectUnauthorized: this.opts.verifyTls,
          ...(server.tlsName !== undefined ? { servername: server.tlsName } : {}),
          // Mapped addresses are the operator's; anything discovered goes through the guard.
          ...(server.trusted ? {} : { lookup: this.opts.guard.lookup }),
        },
        keepAliveTimeout: 30_000,
      });
      this.agents.set(key, agent);
    }
    return agent;
  }

  private async resolve(destination: string): Promise<ResolvedServer> {
    const now = this.opts.now();
    const hit = this.resolved.get(destination);
    if (hit && hit.expires > now) return hit.server;
    const server = await this.opts.discovery.resolve(destination).catch((e: unknown) => {
      throw new RemoteUnreachable(`${destination} cannot be resolved: ${(e as Error).message}`);
    });
    if (this.resolved.size > 1000) this.resolved.clear();
    this.resolved.set(destination, { server, expires: now + RESOLVED_TTL_MS });
    return server;
  }

  /** A signed GET of `path` (from `/_matrix/...`, with its query) on `destination`. */
  async get(destination: string, path: string, timeoutMs: number): Promise<RemoteAnswer> {
    const server = await this.resolve(destination);
    const authorization = signRequest({ method: 'GET', uri: path, origin: this.opts.serverName, destination }, this.opts.signingKey);
    return this.send(server.baseUrl + path, server, { host: server.host, authorization }, timeoutMs);
  }

  /**
   * A plain GET of a URL the origin server sent us to (a `Location`), following a few redirects.
   * Only the origin's own trusted address skips the guard.
   */
  async getLocation(destination: string, url: string, timeoutMs: number): Promise<RemoteAnswer> {
    const server = await this.resolve(destination);
    let current = new URL(url);
    for (let hop = 0; ; hop++) {
      if (current.protocol !== 'https:' && current.protocol !== 'http:') throw new RemoteUnreachable(`Unsupported URL scheme ${current.protocol}`);
      const onOrigin = server.trusted && current.origin === new URL(server.baseUrl).origin;
      const host = current.hostname.replace(/^\[(.*)\]$/, '$1');
      // A literal address never goes through the guarded lookup, so it is checked here.
      if (!onOrigin && (/^[\d.]+$/.test(host) || host.includes(':'))) {
        try {
          this.opts.guard.check(host);
        } catch (e) {
          throw new RemoteUnreachable((e as Error).message);
        }
      }
      const answer = await this.send(current.toString(), onOrigin ? server : undefined, {}, timeoutMs);
      const location = answer.headers.location;
      if (answer.status >= 300 && answer.status < 400 && typeof location === 'string') {
        await answer.body.dump().catch(() => {});
        if (hop >= MAX_REDIRECTS) throw new RemoteUnreachable('Too many redirects');
        current = new URL(location, current);
        continue;
      }
      return answer;
    }
  }

  private async send(url: string, server: ResolvedServer | undefined, headers: Record<string, string>, timeoutMs: number): Promise<RemoteAnswer> {
    try {
      const res = await request(url, {
        dispatcher: this.agentFor(server),
        method: 'GET',
        headers: { 'user-agent': this.opts.userAgent, ...headers },
        headersTimeout: timeoutMs,
        bodyTimeout: 60_000,
      });
      return { status: res.statusCode, headers: res.headers, body: res.body };
    } catch (e) {
      throw new RemoteUnreachable(`GET ${new URL(url).origin} failed: ${(e as Error).message}`);
    }
  }
}
