// Server discovery (spec: server-server API, "Resolving server names").
import assert from 'node:assert/strict';
import type { SrvRecord } from 'node:dns';
import { after, before, test } from 'node:test';
import { generateSigningKey } from '../../src/core/signing.js';
import { FederationClient, FederationRequestError } from '../../src/federation/client.js';
import { ServerDiscovery } from '../../src/federation/discovery.js';
import { createOutboundGuard, OutboundRefused } from '../../src/http/outbound-guard.js';
import { httpServer, json } from './federation-helpers.js';

let wellKnown: Awaited<ReturnType<typeof httpServer>>;
const documents: Record<string, { status: number; body: unknown }> = {
  'delegated.test': { status: 200, body: { 'm.server': 'matrix.example.org:4443' } },
  'to-ip.test': { status: 200, body: { 'm.server': '127.0.0.1:9999' } },
  'to-name.test': { status: 200, body: { 'm.server': 'hs.example.org' } },
  'broken.test': { status: 200, body: { 'm.server': 42 } },
  'srv.test': { status: 404, body: {} },
  'old-srv.test': { status: 404, body: {} },
  'plain.test': { status: 500, body: {} },
};

const srv: Record<string, SrvRecord[]> = {
  '_matrix-fed._tcp.srv.test': [
    { name: 'backup.example.org', port: 9000, priority: 20, weight: 0 },
    { name: 'fed.example.org.', port: 8555, priority: 10, weight: 5 },
  ],
  '_matrix._tcp.old-srv.test': [{ name: 'old.example.org', port: 8666, priority: 0, weight: 0 }],
  '_matrix-fed._tcp.hs.example.org': [{ name: 'hs-target.example.org', port: 8777, priority: 0, weight: 0 }],
};
const dns = {
  async resolveSrv(name: string): Promise<SrvRecord[]> {
    const r = srv[name];
    if (!r) throw Object.assign(new Error(`no SRV for ${name}`), { code: 'ENOTFOUND' });
    return r;
  },
};

before(async () => {
  wellKnown = await httpServer((req, res) => {
    const m = /^\/([^/]+)\/\.well-known\/matrix\/server$/.exec(req.url ?? '');
    const doc = m ? documents[m[1]!] : undefined;
    if (!doc) return json(res, 404, {});
    json(res, doc.status, doc.body);
  });
});
after(async () => {
  await wellKnown.close();
});

/** Discovery whose well-known requests go to the test server on loopback, by the name `localhost`. */
function discovery(allow: string[] = [], resolveMap: Record<string, string> = {}) {
  return new ServerDiscovery({
    resolveMap, guard: createOutboundGuard(allow), verifyTls: true, dns,
    wellKnownUrl: (hostname) => `http://localhost:${wellKnown.port}/${hostname}/.well-known/matrix/server`,
  });
}

const loopback = ['127.0.0.0/8', '::1/128'];

test('the resolve map is used as is and trusted', async () => {
  const d = discovery([], { 'a.test': 'http://127.0.0.1:8481/', 'b.test': 'https://127.0.0.1:8482' });
  assert.deepEqual(await d.resolve('a.test'), { baseUrl: 'http://127.0.0.1:8481', host: 'a.test', trusted: true });
  assert.equal((await d.resolve('b.test')).baseUrl, 'https://127.0.0.1:8482');
  await d.close();
});

test('IP literals: their port or 8448; private and loopback addresses refused unless allowed', async () => {
  const d = discovery();
  assert.deepEqual(await d.resolve('1.1.1.1'), { baseUrl: 'https://1.1.1.1:8448', host: '1.1.1.1', trusted: false });
  assert.deepEqual(await d.resolve('1.1.1.1:8000'), { baseUrl: 'https://1.1.1.1:8000', host: '1.1.1.1:8000', trusted: false });
  assert.equal((await d.resolve('[2606:4700::1111]:8080')).baseUrl, 'https://[2606:4700::1111]:8080');
  await assert.rejects(d.resolve('127.0.0.1:8448'), OutboundRefused);
  await assert.rejects(d.resolve('10.1.2.3'), OutboundRefused);
  await assert.rejects(d.resolve('[::1]'), OutboundRefused);
  const allowing = discovery(loopback);
  assert.equal((await allowing.resolve('127.0.0.1:8448')).baseUrl, 'https://127.0.0.1:8448');
  await d.close();
  await allowing.close();
});

test('a hostname with an explicit port is used with that port; the certificate name is the hostname', async () => {
  const d = discovery();
  assert.deepEqual(await d.resolve('example.org:1234'), { baseUrl: 'https://example.org:1234', host: 'example.org:1234', tlsName: 'example.org', trusted: false });
  await d.close();
});

test('well-known delegation, fetched only where the outbound guard allows, and cached', async () => {
  // By default the well-known server on loopback may not be reached.
  const refused = discovery();
  await assert.rejects(refused.resolve('delegated.test'), OutboundRefused);
  await refused.close();

  const d = discovery(loopback);
  assert.deepEqual(await d.resolve('delegated.test'), { baseUrl: 'https://matrix.example.org:4443', host: 'matrix.example.org:4443', tlsName: 'matrix.example.org', trusted: false });
  const path = '/delegated.test/.well-known/matrix/server';
  assert.equal(wellKnown.hits.get(path), 1);
  await d.resolve('delegated.test');
  assert.equal(wellKnown.hits.get(path), 1, 'cached');
  // Delegated to an IP literal: that address, checked by the guard (loopback allowed here).
  assert.deepEqual(await d.resolve('to-ip.test'), { baseUrl: 'https://127.0.0.1:9999', host: '127.0.0.1:9999', trusted: false });
  // Delegated to a name without port: its SRV record, Host and certificate of the delegated name.
  assert.deepEqual(await d.resolve('to-name.test'), { baseUrl: 'https://hs-target.example.org:8777', host: 'hs.example.org', tlsName: 'hs.example.org', trusted: false });
  // An invalid document is as good as none: no SRV record either, so port 8448.
  assert.deepEqual(await d.resolve('broken.test'), { baseUrl: 'https://broken.test:8448', host: 'broken.test', tlsName: 'broken.test', trusted: false });
  await d.close();
});

test('without well-known: SRV _matrix-fed._tcp, then the deprecated _matrix._tcp, then port 8448', async () => {
  const d = discovery(loopback);
  assert.deepEqual(await d.resolve('srv.test'), { baseUrl: 'https://fed.example.org:8555', host: 'srv.test', tlsName: 'srv.test', trusted: false });
  assert.deepEqual(await d.resolve('old-srv.test'), { baseUrl: 'https://old.example.org:8666', host: 'old-srv.test', tlsName: 'old-srv.test', trusted: false });
  assert.deepEqual(await d.resolve('plain.test'), { baseUrl: 'https://plain.test:8448', host: 'plain.test', tlsName: 'plain.test', trusted: false });
  await d.close();
});

test('the outbound client refuses a loopback address found by discovery, and reaches it when allowed', async () => {
  const target = `127.0.0.1:${wellKnown.port}`;
  const key = generateSigningKey();
  for (const [allow, refusedExpected] of [[[], true], [loopback, false]] as const) {
    const guard = createOutboundGuard([...allow]);
    const d = new ServerDiscovery({ resolveMap: {}, guard, verifyTls: true, dns });
    const client = new FederationClient({ serverName: 'me.test', signingKey: key, discovery: d, guard, verifyTls: true });
    // The test server speaks plain HTTP: reaching it at all (a TLS failure) shows the guard let the connection through.
    const err = await client.request(target, { method: 'GET', path: '/_matrix/key/v2/server', signed: false, timeoutMs: 5000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof FederationRequestError, String(err));
    assert.equal(/Refusing to connect/.test(err.message), refusedExpected, err.message);
    await client.close();
    await d.close();
  }
});
