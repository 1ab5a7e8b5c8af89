/**
 * Server discovery (spec: server-server API, "Resolving server names"): a server name becomes
 * the address to connect to, the `Host` header to send and the name the TLS certificate must
 * carry. Steps, in the spec's order:
 *   0. the operator's `federation.resolve` map (trusted as is: tests and private deployments);
 *   1. an IP literal, with its port or 8448;
 *   2. a hostname with an explicit port: A/AAAA records, that port;
 *   3. `https://<hostname>/.well-known/matrix/server` (cached, 24 h by default, at most 48 h,
 *      failures 1 h), whose `m.server` is resolved by 3.1-3.5;
 *   4-5. SRV `_matrix-fed._tcp.<hostname>`, then the deprecated `_matrix._tcp.<hostname>`;
 *   6. the hostname on port 8448.
 * Addresses found by discovery (not by the map) must pass the OutboundGuard: loopback, private
 * and link-local ones are refused unless `HEARTH_OUTBOUND_ALLOW` admits them.
 */
import { promises as dnsPromises, type SrvRecord } from 'node:dns';
import { isIP } from 'node:net';
import { parseServerName } from '../core/ids.js';
import { OutboundRefused, type OutboundGuard } from '../http/outbound-guard.js';
import { LazyAgent } from '../http/undici.js';

export interface ResolvedServer {
  /** What to connect to: `https://<address or hostname>:<port>` (or the mapped URL). */
  baseUrl: string;
  /** The `Host` header to send. */
  host: string;
  /** The name the certificate must be valid for and the SNI to send; undefined for IP literals. */
  tlsName?: string;
  /** True when the address came from the resolve map: connected to without the OutboundGuard. */
  trusted: boolean;
}

export class DiscoveryFailed extends Error {}

/** The DNS lookups discovery makes; tests hand in their own. */
export interface SrvResolver {
  resolveSrv(name: string): Promise<SrvRecord[]>;
}

export interface DiscoveryOptions {
  /** Server name to base URL, from `federation.resolve` and HEARTH_FEDERATION_RESOLVE. */
  resolveMap: Record<string, string>;
  guard: OutboundGuard;
  verifyTls: boolean;
  dns?: SrvResolver;
  /** Where the well-known document of `hostname` is: `https://<hostname>/.well-known/matrix/server` unless a test says otherwise. */
  wellKnownUrl?: (hostname: string) => string;
  now?: () => number;
}

const DEFAULT_PORT = 8448;
const WELL_KNOWN_DEFAULT_MS = 24 * 3600_000;
const WELL_KNOWN_MAX_MS = 48 * 3600_000;
const WELL_KNOWN_ERROR_MS = 3600_000;
const WELL_KNOWN_MAX_BYTES = 50_000;

interface WellKnownEntry {
  /** The `m.server` value, or null when the lookup failed. */
  server: string | null;
  expires: number;
}

export class ServerDiscovery {
  private readonly wellKnown = new Map<string, WellKnownEntry>();
  private readonly dns: SrvResolver;
  private readonly agent: LazyAgent;
  private readonly now: () => number;

  constructor(private readonly opts: DiscoveryOptions) {
    // A DNS server that does not answer costs a few seconds, not the system default of minutes.
    this.dns = opts.dns ?? new dnsPromises.Resolver({ timeout: 2_000, tries: 2 });
    this.now = opts.now ?? Date.now;
    this.agent = new LazyAgent({
      connect: { lookup: opts.guard.lookup, timeout: 10_000, rejectUnauthorized: opts.verifyTls },
      keepAliveTimeout: 5_000,
      connections: 4,
    });
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  async resolve(serverName: string): Promise<ResolvedServer> {
    const mapped = this.opts.resolveMap[serverName];
    if (mapped !== undefined) return { baseUrl: mapped.replace(/\/+$/, ''), host: serverName, trusted: true };
    const parsed = parseServerName(serverName);
    if (!parsed) throw new DiscoveryFailed(`${serverName} is not a valid server name`);
    // 1. An IP literal.
    if (parsed.kind !== 'dns') {
      this.checkLiteral(parsed.host);
      return { baseUrl: `https://${hostForUrl(parsed.host)}:${parsed.port ?? DEFAULT_PORT}`, host: serverName, trusted: false };
    }
    // 2. A hostname with an explicit port.
    if (parsed.port !== undefined) return { baseUrl: `https://${parsed.host}:${parsed.port}`, host: serverName, tlsName: parsed.host, trusted: false };
    // 3. Delegation through /.well-known/matrix/server.
    const delegated = await this.wellKnownServer(parsed.host);
    if (delegated !== null) {
      const d = parseServerName(delegated);
      if (d) {
        if (d.kind !== 'dns') {
          this.checkLiteral(d.host);
          return { baseUrl: `https://${hostForUrl(d.host)}:${d.port ?? DEFAULT_PORT}`, host: delegated, trusted: false };
        }
        if (d.port !== undefined) return { baseUrl: `https://${d.host}:${d.port}`, host: delegated, tlsName: d.host, trusted: false };
        const srv = await this.srv(d.host);
        if (srv) return { baseUrl: `https://${srv.name}:${srv.port}`, host: d.host, tlsName: d.host, trusted: false };
        return { baseUrl: `https://${d.host}:${DEFAULT_PORT}`, host: d.host, tlsName: d.host, trusted: false };
      }
    }
    // 4-5. SRV records; 6. port 8448.
    const srv = await this.srv(parsed.host);
    if (srv) return { baseUrl: `https://${srv.name}:${srv.port}`, host: parsed.host, tlsName: parsed.host, trusted: false };
    return { baseUrl: `https://${parsed.host}:${DEFAULT_PORT}`, host: parsed.host, tlsName: parsed.host, trusted: false };
  }

  private checkLiteral(address: string): void {
    this.opts.guard.check(address);
  }

  /** `_matrix-fed._tcp` first, then the deprecated `_matrix._tcp`; the best-priority, heaviest record. */
  private async srv(hostname: string): Promise<{ name: string; port: number } | undefined> {
    for (const service of ['_matrix-fed._tcp', '_matrix._tcp']) {
      let records: SrvRecord[];
      try {
        records = await this.dns.resolveSrv(`${service}.${hostname}`);
      } catch {
        continue;
      }
      const usable = records.filter((r) => r.name !== '' && r.name !== '.');
      if (usable.length === 0) continue;
      usable.sort((a, b) => a.priority - b.priority || b.weight - a.weight);
      const best = usable[0]!;
      return { name: best.name.replace(/\.$/, ''), port: best.port };
    }
    return undefined;
  }

  /** The `m.server` of the hostname's well-known document, cached; null when there is none. */
  private async wellKnownServer(hostname: string): Promise<string | null> {
    const hit = this.wellKnown.get(hostname);
    if (hit && hit.expires > this.now()) return hit.server;
    let entry: WellKnownEntry;
    try {
      const { server, maxAgeMs } = await this.fetchWellKnown(hostname);
      entry = { server, expires: this.now() + Math.min(maxAgeMs ?? WELL_KNOWN_DEFAULT_MS, WELL_KNOWN_MAX_MS) };
    } catch (e) {
      // A refused address is the operator's policy, not a missing document: it is not cached away.
      if (e instanceof OutboundRefused) throw e;
      entry = { server: null, expires: this.now() + WELL_KNOWN_ERROR_MS };
    }
    if (this.wellKnown.size > 10_000) this.wellKnown.clear();
    this.wellKnown.set(hostname, entry);
    return entry.server;
  }

  private async fetchWellKnown(hostname: string): Promise<{ server: string | null; maxAgeMs?: number }> {
    let url = new URL(this.opts.wellKnownUrl?.(hostname) ?? `https://${hostname}/.well-known/matrix/server`);
    const signal = AbortSignal.timeout(10_000);
    const seen = new Set<string>();
    for (;;) {
      // Redirects are followed, loops are not.
      if (seen.has(url.href) || seen.size > 5) return { server: null };
      seen.add(url.href);
      const literal = url.hostname.replace(/^\[(.*)\]$/, '$1');
      if (isIP(literal)) this.opts.guard.check(literal);
      let res;
      try {
        res = await this.agent.request(url, { method: 'GET', signal, headersTimeout: 10_000, bodyTimeout: 10_000 });
      } catch (e) {
        throw unwrapRefusal(e) ?? e;
      }
      const location = res.headers.location;
      if (res.statusCode >= 300 && res.statusCode < 400 && typeof location === 'string') {
        await res.body.dump();
        url = new URL(location, url);
        continue;
      }
      const text = await readCapped(res.body, WELL_KNOWN_MAX_BYTES);
      const maxAgeMs = cacheMaxAge(res.headers['cache-control']);
      if (res.statusCode !== 200) return { server: null, maxAgeMs };
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        return { server: null, maxAgeMs };
      }
      const server = (body as { 'm.server'?: unknown } | null)?.['m.server'];
      return { server: typeof server === 'string' && parseServerName(server) ? server : null, maxAgeMs };
    }
  }
}

function hostForUrl(address: string): string {
  return address.includes(':') ? `[${address}]` : address;
}

function cacheMaxAge(header: string | string[] | undefined): number | undefined {
  const text = Array.isArray(header) ? header.join(',') : header;
  if (!text) return undefined;
  if (/no-store|no-cache/i.test(text)) return 0;
  const m = /max-age\s*=\s*(\d+)/i.exec(text);
  return m ? Number(m[1]) * 1000 : undefined;
}

async function readCapped(body: AsyncIterable<Buffer>, max: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of body) {
    size += c.length;
    if (size > max) throw new DiscoveryFailed('well-known document too large');
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** undici wraps errors from the socket's lookup; the refusal is the cause worth reporting. */
export function unwrapRefusal(e: unknown): OutboundRefused | undefined {
  for (let cur = e; cur; cur = (cur as { cause?: unknown }).cause) {
    if (cur instanceof OutboundRefused) return cur;
  }
  return undefined;
}
