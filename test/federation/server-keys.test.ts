// Server keys across two Hearth servers (spec: server-server API, "Retrieving server keys").
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { decodeBase64 } from '../../src/core/base64.js';
import { generateSigningKey, publicKeyBase64, signJson, verifyJsonSignature } from '../../src/core/signing.js';
import { httpServer, json, keyServer, REFUSED_URL, startPair, type Pair } from './federation-helpers.js';

let pair: Pair;
let impostor: Awaited<ReturnType<typeof keyServer>>;
let dServer: Awaited<ReturnType<typeof keyServer>>;
let rotated: Awaited<ReturnType<typeof httpServer>>;
const eCurrent = generateSigningKey();
const eOld = generateSigningKey();
const eOldExpired = Date.now() - 3600_000;

before(async () => {
  // c.test answers with a response that names another server; d.test is reachable from a.test only.
  impostor = await keyServer('c.test', { answerAs: 'someone-else.test' });
  dServer = await keyServer('d.test');
  // e.test rotated its key: the old one is listed with the time it expired.
  rotated = await httpServer((_req, res) => {
    json(res, 200, signJson({
      server_name: 'e.test',
      verify_keys: { [eCurrent.keyId]: { key: publicKeyBase64(eCurrent) } },
      old_verify_keys: { [eOld.keyId]: { key: publicKeyBase64(eOld), expired_ts: eOldExpired } },
      valid_until_ts: Date.now() + 30 * 24 * 3600_000,
    }, 'e.test', eCurrent));
  });
  pair = await startPair(
    { 'c.test': impostor.url, 'e.test': rotated.url },
    {
      a: { federation: { resolve: { 'd.test': dServer.url } } },
      b: { federation: { trusted_key_servers: ['a.test'], resolve: { 'd.test': REFUSED_URL } } },
    },
  );
});
after(async () => {
  await pair.stop();
  await impostor.close();
  await dServer.close();
  await rotated.close();
});

test('GET /_matrix/key/v2/server: the signing key, self-signed, with its validity', async () => {
  const { a } = pair;
  const res = await a.request('GET', '/_matrix/key/v2/server');
  assert.equal(res.status, 200);
  const key = a.hs.ctx.signingKey;
  assert.equal(res.body.server_name, 'a.test');
  assert.deepEqual(res.body.verify_keys, { [key.keyId]: { key: publicKeyBase64(key) } });
  assert.deepEqual(res.body.old_verify_keys, {});
  assert.ok(res.body.valid_until_ts > Date.now() + 3600_000);
  assert.ok(verifyJsonSignature(res.body, 'a.test', key.keyId, key.publicKey));
  // The deprecated form with a key id (still asked for by older servers) answers with every key.
  const byId = await a.request('GET', `/_matrix/key/v2/server/${encodeURIComponent(key.keyId)}`);
  assert.equal(byId.status, 200);
  assert.deepEqual(byId.body.verify_keys, res.body.verify_keys);
});

test('a server fetches and verifies another one’s keys, stores them, and still has them after a restart', async () => {
  const { a, b } = pair;
  const keyId = a.hs.ctx.signingKey.keyId;
  const got = await b.hs.ctx.services.federation.keyRing.getKeys('a.test', [keyId]);
  assert.deepEqual(got.get(keyId)?.key, a.hs.ctx.signingKey.publicKey);
  const rows = await b.hs.ctx.db.selectFrom('federation_server_keys').selectAll().where('server_name', '=', 'a.test').execute();
  assert.equal(rows.length, 1);
  assert.ok(Number(rows[0]!.valid_until_ts) <= Date.now() + 7 * 24 * 3600_000);

  await b.restart();
  // No request leaves the restarted server: the key comes from its table.
  b.hs.ctx.services.federation.client.request = async () => {
    throw new Error('no fetch expected');
  };
  const again = await b.hs.ctx.services.federation.keyRing.getKeys('a.test', [keyId]);
  assert.deepEqual(again.get(keyId)?.key, a.hs.ctx.signingKey.publicKey);
  await b.restart();
});

test('a key response for another server than the one asked is refused', async () => {
  const { b } = pair;
  const ring = b.hs.ctx.services.federation.keyRing;
  await assert.rejects(ring.fetchDirect('c.test'), /someone-else\.test/);
  assert.equal(impostor.hosts.at(-1), 'c.test', 'the Host header is the server name');
  const got = await ring.getKeys('c.test', [impostor.key.keyId]);
  assert.equal(got.size, 0);
  const rows = await b.hs.ctx.db.selectFrom('federation_server_keys').selectAll().where('server_name', 'in', ['c.test', 'someone-else.test']).execute();
  assert.equal(rows.length, 0);
});

test('notary: POST and GET /_matrix/key/v2/query return the server’s own response signed by the notary too', async () => {
  const { a, b } = pair;
  const aKey = a.hs.ctx.signingKey;
  const bKey = b.hs.ctx.signingKey;
  const post = await b.request('POST', '/_matrix/key/v2/query', { body: { server_keys: { 'a.test': {}, 'b.test': {} } } });
  assert.equal(post.status, 200);
  const forA = post.body.server_keys.find((r: any) => r.server_name === 'a.test');
  assert.ok(forA, JSON.stringify(post.body));
  assert.ok(verifyJsonSignature(forA, 'a.test', aKey.keyId, aKey.publicKey), 'the origin’s signature kept');
  assert.ok(verifyJsonSignature(forA, 'b.test', bKey.keyId, bKey.publicKey), 'the notary’s signature added');
  const own = post.body.server_keys.find((r: any) => r.server_name === 'b.test');
  assert.ok(verifyJsonSignature(own, 'b.test', bKey.keyId, bKey.publicKey));

  const get = await b.request('GET', '/_matrix/key/v2/query/a.test');
  assert.equal(get.status, 200);
  assert.equal(get.body.server_keys.length, 1);
  assert.equal(get.body.server_keys[0].verify_keys[aKey.keyId].key, publicKeyBase64(aKey));
  // A server that cannot be reached and has nothing cached is left out.
  const none = await b.request('POST', '/_matrix/key/v2/query', { body: { server_keys: { 'c.test': {} } } });
  assert.deepEqual(none.body, { server_keys: [] });
  const empty = await b.request('POST', '/_matrix/key/v2/query', { body: { server_keys: {} } });
  assert.deepEqual(empty.body, { server_keys: [] });
});

test('keys of a server that does not answer come from a trusted notary', async () => {
  const { a, b } = pair;
  // a.test has d.test's keys cached; b.test cannot reach d.test and asks a.test.
  assert.equal((await a.hs.ctx.services.federation.keyRing.getKeys('d.test', [dServer.key.keyId])).size, 1);
  const got = await b.hs.ctx.services.federation.keyRing.getKeys('d.test', [dServer.key.keyId]);
  assert.deepEqual(got.get(dServer.key.keyId)?.key, dServer.key.publicKey);
  const row = await b.hs.ctx.db.selectFrom('federation_server_keys').selectAll().where('server_name', '=', 'd.test').executeTakeFirstOrThrow();
  assert.deepEqual(decodeBase64(row.public_key), dServer.key.publicKey);
});

test('old keys: valid for events until they expired, never for requests; validity capped at 7 days', async () => {
  const ring = pair.b.hs.ctx.services.federation.keyRing;
  const got = await ring.getKeys('e.test', [eCurrent.keyId, eOld.keyId]);
  assert.equal(got.get(eOld.keyId)?.validUntilTs, eOldExpired);
  assert.deepEqual(got.get(eOld.keyId)?.key, eOld.publicKey);
  const current = got.get(eCurrent.keyId)!;
  assert.ok(current.validUntilTs <= Date.now() + 7 * 24 * 3600_000 && current.validUntilTs > Date.now() + 6 * 24 * 3600_000, 'capped at 7 days');
  assert.equal(await ring.requestKey('e.test', eOld.keyId), undefined);
  assert.deepEqual(await ring.requestKey('e.test', eCurrent.keyId), eCurrent.publicKey);
});
