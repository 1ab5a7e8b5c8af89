/**
 * Pushers name their gateway's URL, so a user could point the server at its own network: the
 * gateway client refuses loopback and private addresses, whether the URL names an address or a
 * host that resolves to one, and such a refusal is final (no retry). An allow-list
 * (HEARTH_OUTBOUND_ALLOW) admits a range.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { createOutboundGuard } from '../../src/http/outbound-guard.js';
import { GatewayClient, GatewayFailed } from '../../src/push/gateway-client.js';

describe('push gateway requests go through the outbound guard', () => {
  let gateway: Server;
  let port = 0;
  let hits = 0;

  before(async () => {
    gateway = createServer((req, res) => {
      hits++;
      req.resume();
      res.setHeader('content-type', 'application/json');
      res.end('{"rejected":[]}');
    });
    await new Promise<void>((resolve) => gateway.listen(0, '127.0.0.1', resolve));
    port = (gateway.address() as { port: number }).port;
  });
  after(async () => {
    await new Promise<void>((resolve) => gateway.close(() => resolve()));
  });

  for (const host of ['127.0.0.1', 'localhost', '[::ffff:127.0.0.1]']) {
    it(`a gateway at ${host} is refused without being contacted, for good`, async () => {
      const client = new GatewayClient(createOutboundGuard([]));
      try {
        const before = hits;
        await assert.rejects(client.notify(`http://${host}:${port}/_matrix/push/v1/notify`, { devices: [] }), (e: unknown) => {
          assert.ok(e instanceof GatewayFailed, String(e));
          assert.equal(e.retry, false);
          return true;
        });
        assert.equal(hits, before);
      } finally {
        await client.close();
      }
    });
  }

  it('an allow-listed range is contacted', async () => {
    const client = new GatewayClient(createOutboundGuard(['127.0.0.0/8']));
    try {
      const before = hits;
      assert.deepEqual(await client.notify(`http://127.0.0.1:${port}/_matrix/push/v1/notify`, { devices: [] }), []);
      assert.equal(hits, before + 1);
    } finally {
      await client.close();
    }
  });
});
