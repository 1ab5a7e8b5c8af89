// X-Matrix request authentication (spec: server-server API, "Request Authentication").
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { generateSigningKey } from '../../src/core/signing.js';
import { FederationRequestError } from '../../src/federation/client.js';
import { parseXMatrix, signRequest } from '../../src/federation/x-matrix.js';
import { F, keyServer, signedRequest, startPair, type Pair } from './federation-helpers.js';

let pair: Pair;
let c: Awaited<ReturnType<typeof keyServer>>;

before(async () => {
  c = await keyServer('c.test');
  pair = await startPair({ 'c.test': c.url });
});
after(async () => {
  await pair.stop();
  await c.close();
});

test('the header is parsed as RFC 9110 auth parameters', () => {
  assert.deepEqual(parseXMatrix('X-Matrix origin="a.test",destination="b.test",key="ed25519:k1",sig="c2ln"'), {
    origin: 'a.test', destination: 'b.test', key: 'ed25519:k1', sig: 'c2ln',
  });
  // Unquoted values (colons allowed), any case of names, spaces around commas, escapes, unknown names.
  assert.deepEqual(parseXMatrix('X-Matrix  Origin=a.test:8448 , KEY="ed25519:k1",\tsig="a\\"b", other=1'), {
    origin: 'a.test:8448', destination: undefined, key: 'ed25519:k1', sig: 'a"b',
  });
  assert.equal(parseXMatrix('Bearer abc'), undefined);
  assert.equal(parseXMatrix('X-Matrix origin="a.test",key="ed25519:k1"'), undefined, 'no sig');
  assert.equal(parseXMatrix('X-Matrix origin="a.test,key=x,sig=y'), undefined, 'unterminated quote');
});

test('a correctly signed request is accepted, over the outbound client and by hand', async () => {
  const { a, b } = pair;
  const body = { origin: 'a.test', origin_server_ts: Date.now(), pdus: [] };
  const answer = await a.hs.ctx.services.federation.client.request('b.test', { method: 'PUT', path: `${F}/send/auth-ok-1`, body });
  assert.deepEqual(answer, { pdus: {} });
  // A key server that is not a homeserver: b.test fetches c.test's key to check the signature.
  const res = await signedRequest(b, 'PUT', `${F}/send/auth-ok-2`, { origin: 'c.test', key: c.key, body: { pdus: [] } });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  // A GET with a query string: the signed target includes it.
  const get = await signedRequest(b, 'GET', `${F}/state_ids/${encodeURIComponent('!nope:b.test')}?event_id=${encodeURIComponent('$x')}`, { origin: 'c.test', key: c.key });
  assert.equal(get.status, 404, JSON.stringify(get.body));
});

test('missing, malformed, wrongly addressed and badly signed requests are refused with 401 M_UNAUTHORIZED', async () => {
  const { b } = pair;
  const path = `${F}/send/auth-bad`;
  const body = { pdus: [] };
  const cases: Record<string, Parameters<typeof signedRequest>[3]> = {
    missing: { origin: 'c.test', key: c.key, body, authorization: null },
    malformed: { origin: 'c.test', key: c.key, body, authorization: 'X-Matrix nonsense' },
    bearer: { origin: 'c.test', key: c.key, body, authorization: 'Bearer abc' },
    'wrong destination': { origin: 'c.test', key: c.key, body, destination: 'elsewhere.test' },
    'unknown key': { origin: 'c.test', key: generateSigningKey(), body },
    'signed for another body': {
      origin: 'c.test', key: c.key, body,
      authorization: signRequest({ method: 'PUT', uri: path, origin: 'c.test', destination: 'b.test', content: { pdus: [{}] } }, c.key),
    },
    'signed for another path': {
      origin: 'c.test', key: c.key, body,
      authorization: signRequest({ method: 'PUT', uri: `${F}/send/other`, origin: 'c.test', destination: 'b.test', content: body }, c.key),
    },
    'signed by a key claiming another origin': {
      origin: 'c.test', key: c.key, body,
      authorization: signRequest({ method: 'PUT', uri: path, origin: 'a.test', destination: 'b.test', content: body }, c.key).replace('key="', 'key="').replace(/key="[^"]+"/, `key="${pair.a.hs.ctx.signingKey.keyId}"`),
    },
    'unknown origin': { origin: 'nowhere.invalid', key: c.key, body },
  };
  for (const [name, opts] of Object.entries(cases)) {
    const res = await signedRequest(b, 'PUT', path, opts);
    assert.equal(res.status, 401, `${name}: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.errcode, 'M_UNAUTHORIZED', name);
  }
  // Nothing was recorded for the refused transaction id.
  const rows = await b.hs.ctx.db.selectFrom('federation_received_txns').selectAll().where('txn_id', '=', 'auth-bad').execute();
  assert.equal(rows.length, 0);
});

test('a request without the destination parameter (servers before v1.3) is accepted', async () => {
  const { b } = pair;
  const path = `${F}/send/auth-old`;
  const header = signRequest({ method: 'PUT', uri: path, origin: 'c.test', destination: 'b.test', content: { pdus: [] } }, c.key).replace(/,destination="[^"]+"/, '');
  const res = await signedRequest(b, 'PUT', path, { origin: 'c.test', key: c.key, body: { pdus: [] }, authorization: header });
  assert.equal(res.status, 200, JSON.stringify(res.body));
});

test('the outbound client reports a refusal as an error with the status', async () => {
  const { a } = pair;
  await assert.rejects(
    a.hs.ctx.services.federation.client.request('b.test', { method: 'GET', path: `${F}/event/${encodeURIComponent('$nope')}` }),
    (e: unknown) => e instanceof FederationRequestError && e.status === 404 && e.errcode === 'M_NOT_FOUND',
  );
});
