/**
 * GET a URL on a user's behalf without letting the user reach inside our network: every hop
 * (redirects are followed here, at most 5) is checked by the OutboundGuard, literal addresses
 * before connecting and names through the guarded DNS lookup the socket connects with. The body
 * is capped in bytes, and the whole exchange in time.
 */
import { OutboundRefused, type OutboundGuard } from '../http/outbound-guard.js';
import { LazyAgent } from '../http/undici.js';

export interface FetchedBody {
  /** The URL that answered, after redirects. */
  url: string;
  status: number;
  contentType: string;
  body: Buffer;
}

export interface GuardedFetchOptions {
  maxBytes: number;
  timeoutMs: number;
  maxRedirects?: number;
  accept?: string;
}

export class FetchFailed extends Error {}

export class GuardedFetcher {
  private readonly agent: LazyAgent;

  constructor(private readonly guard: OutboundGuard, private readonly userAgent: string) {
    this.agent = new LazyAgent({ connect: { lookup: guard.lookup, timeout: 10_000 }, keepAliveTimeout: 5_000, connections: 8 });
  }

  async get(url: string, opts: GuardedFetchOptions): Promise<FetchedBody> {
    const signal = AbortSignal.timeout(opts.timeoutMs);
    let current = new URL(url);
    for (let hop = 0; ; hop++) {
      if (current.protocol !== 'http:' && current.protocol !== 'https:') throw new FetchFailed(`Unsupported URL scheme ${current.protocol}`);
      const host = current.hostname.replace(/^\[(.*)\]$/, '$1');
      // A literal address never goes through DNS, so the socket's lookup would not see it: check it here.
      if (/^[\d.]+$/.test(host) || host.includes(':')) this.guard.check(host);
      let res;
      try {
        res = await this.agent.request(current, {
          method: 'GET',
          headers: { 'user-agent': this.userAgent, accept: opts.accept ?? '*/*' },
          signal,
          headersTimeout: opts.timeoutMs,
          bodyTimeout: opts.timeoutMs,
        });
      } catch (e) {
        throw unwrapRefusal(e) ?? new FetchFailed(`Could not fetch ${current.origin}: ${(e as Error).message}`);
      }
      const location = res.headers.location;
      if (res.statusCode >= 300 && res.statusCode < 400 && typeof location === 'string') {
        await res.body.dump();
        if (hop >= (opts.maxRedirects ?? 5)) throw new FetchFailed('Too many redirects');
        current = new URL(location, current);
        continue;
      }
      const declared = Number(res.headers['content-length'] ?? NaN);
      if (declared > opts.maxBytes) {
        await res.body.dump().catch(() => {});
        throw new FetchFailed('The response is too large');
      }
      const chunks: Buffer[] = [];
      let size = 0;
      try {
        for await (const chunk of res.body) {
          size += (chunk as Buffer).length;
          if (size > opts.maxBytes) {
            res.body.destroy();
            throw new FetchFailed('The response is too large');
          }
          chunks.push(chunk as Buffer);
        }
      } catch (e) {
        if (e instanceof FetchFailed) throw e;
        throw new FetchFailed(`Reading ${current.origin} failed: ${(e as Error).message}`);
      }
      const type = res.headers['content-type'];
      return { url: current.toString(), status: res.statusCode, contentType: typeof type === 'string' ? type : '', body: Buffer.concat(chunks) };
    }
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}

/** undici wraps the lookup's error; the refusal is what the caller must see. */
function unwrapRefusal(e: unknown): OutboundRefused | undefined {
  for (let cur = e as { cause?: unknown } | undefined, i = 0; cur && i < 5; cur = cur.cause as typeof cur, i++) {
    if (cur instanceof OutboundRefused) return cur;
  }
  return undefined;
}
