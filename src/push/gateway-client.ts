/**
 * POST to a push gateway's /_matrix/push/v1/notify (push gateway API,
 * push_notifier.yaml). The URL is the user's, so the connection goes through
 * the OutboundGuard: a literal address is checked before connecting, a name
 * through the guarded DNS lookup the socket uses. Redirects are not followed
 * (a gateway answers the POST itself), so no hop escapes the check.
 */
import { OutboundRefused, type OutboundGuard } from '../http/outbound-guard.js';
import { LazyAgent } from '../http/undici.js';
import type { JsonObject } from '../core/types.js';

const MAX_ANSWER_BYTES = 64 * 1024;

/** A request that failed; `retry` says whether trying again later may succeed. */
export class GatewayFailed extends Error {
  constructor(message: string, readonly retry: boolean) {
    super(message);
  }
}

export class GatewayClient {
  private readonly agent: LazyAgent;

  constructor(private readonly guard: OutboundGuard, private readonly timeoutMs = 15_000) {
    this.agent = new LazyAgent({ connect: { lookup: guard.lookup, timeout: timeoutMs }, keepAliveTimeout: 10_000, connections: 16 });
  }

  /** Sends one notification; returns the pushkeys the gateway rejected. */
  async notify(url: string, notification: JsonObject): Promise<string[]> {
    const target = new URL(url);
    const host = target.hostname.replace(/^\[(.*)\]$/, '$1');
    try {
      if (/^[\d.]+$/.test(host) || host.includes(':')) this.guard.check(host);
    } catch (e) {
      throw new GatewayFailed((e as Error).message, false);
    }
    let res;
    try {
      res = await this.agent.request(target, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'Hearth (push)' },
        body: JSON.stringify({ notification }),
        signal: AbortSignal.timeout(this.timeoutMs),
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
      });
    } catch (e) {
      const refused = unwrapRefusal(e);
      if (refused) throw new GatewayFailed(refused.message, false);
      throw new GatewayFailed(`Could not reach ${target.origin}: ${(e as Error).message}`, true);
    }
    const text = await readCapped(res.body);
    if (res.statusCode >= 500 || res.statusCode === 429) throw new GatewayFailed(`${target.origin} answered ${res.statusCode}`, true);
    if (res.statusCode < 200 || res.statusCode >= 300) throw new GatewayFailed(`${target.origin} answered ${res.statusCode}`, false);
    try {
      const answer = JSON.parse(text ?? '') as { rejected?: unknown };
      return Array.isArray(answer.rejected) ? answer.rejected.filter((k): k is string => typeof k === 'string') : [];
    } catch {
      return [];
    }
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}

/** The answer's text, or null when it is larger than a gateway's answer can be. */
async function readCapped(body: AsyncIterable<Buffer> & { destroy(): void }): Promise<string | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      size += chunk.length;
      if (size > MAX_ANSWER_BYTES) {
        body.destroy();
        return null;
      }
      chunks.push(chunk);
    }
  } catch {
    return null;
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** undici wraps the lookup's error; the refusal is what the log must say. */
function unwrapRefusal(e: unknown): OutboundRefused | undefined {
  for (let cur = e as { cause?: unknown } | undefined, i = 0; cur && i < 5; cur = cur.cause as typeof cur, i++) {
    if (cur instanceof OutboundRefused) return cur;
  }
  return undefined;
}
