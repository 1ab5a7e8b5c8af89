/**
 * The limits of the fetcher behind URL previews (src/media/guarded-fetch.ts), against a server
 * this test runs on loopback: a body over the byte limit is refused whether its length is declared
 * or not, and the time limit covers the whole exchange, a body that trickles in included, not
 * just the wait for headers.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { createOutboundGuard } from '../../src/http/outbound-guard.js';
import { FetchFailed, GuardedFetcher } from '../../src/media/guarded-fetch.js';

describe('guarded fetch limits', { timeout: 30_000 }, () => {
  let site: Server;
  let base: string;
  const fetcher = new GuardedFetcher(createOutboundGuard(['127.0.0.0/8']), 'Hearth test');
  const timers = new Set<NodeJS.Timeout>();

  before(async () => {
    site = createServer((req, res) => {
      switch (req.url) {
        case '/declared':
          res.writeHead(200, { 'content-type': 'text/html', 'content-length': 5000 });
          res.end(Buffer.alloc(5000, 0x61));
          return;
        case '/chunked': {
          // No Content-Length: the limit has to be counted while reading.
          res.writeHead(200, { 'content-type': 'text/html' });
          for (let i = 0; i < 10; i++) res.write(Buffer.alloc(1000, 0x62));
          res.end();
          return;
        }
        case '/silent':
          // Never answers.
          return;
        case '/trickle': {
          res.writeHead(200, { 'content-type': 'text/html' });
          const t = setInterval(() => res.write('x'), 50);
          timers.add(t);
          res.on('close', () => clearInterval(t));
          return;
        }
        default:
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.end('small');
      }
    });
    await new Promise<void>((r) => site.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(site.address() as { port: number }).port}`;
  });
  after(async () => {
    for (const t of timers) clearInterval(t);
    await fetcher.close();
    site.closeAllConnections();
    await new Promise((r) => site.close(r));
  });

  it('a body within the limit is read whole', async () => {
    const got = await fetcher.get(`${base}/small`, { maxBytes: 4096, timeoutMs: 2000 });
    assert.equal(got.status, 200);
    assert.equal(got.body.toString(), 'small');
  });

  it('a body over the byte limit is refused, declared or counted', async () => {
    for (const path of ['/declared', '/chunked']) {
      await assert.rejects(fetcher.get(`${base}${path}`, { maxBytes: 4096, timeoutMs: 5000 }), (e: unknown) => e instanceof FetchFailed && /too large/.test(e.message), path);
    }
  });

  it('a server that never answers, or one that trickles its body, is given up on at the time limit', async () => {
    for (const path of ['/silent', '/trickle']) {
      const t0 = performance.now();
      await assert.rejects(fetcher.get(`${base}${path}`, { maxBytes: 1024 * 1024, timeoutMs: 500 }), FetchFailed, path);
      const took = performance.now() - t0;
      assert.ok(took >= 450 && took < 3000, `${path}: gave up after ${took.toFixed(0)} ms`);
    }
  });
});
