import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../helpers/server.js';

describe('discovery (spec: client-server-api "Server discovery", "Capabilities negotiation")', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await server.stop();
  });

  it('GET /versions needs no auth and lists v1.x versions', async () => {
    const res = await server.request('GET', '/_matrix/client/versions');
    assert.equal(res.status, 200);
    assert.ok(res.body.versions.includes('v1.1'));
    assert.ok(res.body.versions.includes('r0.6.1'));
    // Up to the spec this suite's every-endpoint test (test/e2e/spec-endpoints.ts) lists.
    assert.equal(res.body.versions.at(-1), 'v1.19');
    assert.equal(typeof res.body.unstable_features, 'object');
  });

  it('GET /.well-known/matrix/client points at the public base URL', async () => {
    const res = await server.request('GET', '/.well-known/matrix/client');
    assert.equal(res.status, 200);
    assert.equal(res.body['m.homeserver'].base_url, 'http://127.0.0.1');
  });

  it('GET /capabilities requires auth', async () => {
    const res = await server.request('GET', '/_matrix/client/v3/capabilities');
    assert.equal(res.status, 401);
    assert.equal(res.body.errcode, 'M_MISSING_TOKEN');
  });

  it('GET /capabilities offers room versions 1-12 with 12 as default', async () => {
    const alice = await server.registerUser();
    const res = await server.request('GET', '/_matrix/client/v3/capabilities', { token: alice.accessToken });
    assert.equal(res.status, 200);
    const rv = res.body.capabilities['m.room_versions'];
    assert.equal(rv.default, '12');
    for (let v = 1; v <= 12; v++) assert.equal(rv.available[String(v)], 'stable');
  });

  it('GET /capabilities lets users change every profile field (m.profile_fields, v1.16)', async () => {
    const alice = await server.registerUser();
    const res = await server.request('GET', '/_matrix/client/v3/capabilities', { token: alice.accessToken });
    assert.deepEqual(res.body.capabilities['m.profile_fields'], { enabled: true });
    const put = await server.request('PUT', `/_matrix/client/v3/profile/${encodeURIComponent(alice.userId)}/m.tz`, { token: alice.accessToken, body: { 'm.tz': 'Europe/Paris' } });
    assert.equal(put.status, 200, 'a field the capability allows can be set');
  });
});

describe('HTTP errors (DESIGN section 6; spec "Standard error response", "CORS")', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ config: { max_request_bytes: 4096 } });
  });
  after(async () => {
    await server.stop();
  });

  it('an unknown endpoint answers 404 M_UNRECOGNIZED', async () => {
    const res = await server.request('GET', '/_matrix/client/v3/no/such/endpoint');
    assert.equal(res.status, 404);
    assert.equal(res.body.errcode, 'M_UNRECOGNIZED');
  });

  it('a known endpoint with the wrong method answers 405 M_UNRECOGNIZED', async () => {
    const res = await server.request('DELETE', '/_matrix/client/versions');
    assert.equal(res.status, 405);
    assert.equal(res.body.errcode, 'M_UNRECOGNIZED');
  });

  it('malformed JSON answers 400 M_NOT_JSON', async () => {
    const res = await server.request('POST', '/_matrix/client/v3/login', { rawBody: '{"type": ', headers: { 'content-type': 'application/json' } });
    assert.equal(res.status, 400);
    assert.equal(res.body.errcode, 'M_NOT_JSON');
  });

  it('a JSON body that is not an object answers 400 M_BAD_JSON', async () => {
    const res = await server.request('POST', '/_matrix/client/v3/login', { rawBody: '[1,2]', headers: { 'content-type': 'application/json' } });
    assert.equal(res.status, 400);
    assert.equal(res.body.errcode, 'M_BAD_JSON');
  });

  it('an oversized body answers 413 M_TOO_LARGE', async () => {
    const res = await server.request('POST', '/_matrix/client/v3/login', { body: { type: 'm.login.password', pad: 'x'.repeat(10_000) } });
    assert.equal(res.status, 413);
    assert.equal(res.body.errcode, 'M_TOO_LARGE');
  });

  it('an unknown access token answers 401 M_UNKNOWN_TOKEN', async () => {
    const res = await server.request('GET', '/_matrix/client/v3/capabilities', { token: 'not-a-token' });
    assert.equal(res.status, 401);
    assert.equal(res.body.errcode, 'M_UNKNOWN_TOKEN');
  });

  it('CORS headers are on every answer and OPTIONS preflight succeeds', async () => {
    const res = await fetch(`${server.url}/_matrix/client/v3/sync`, { method: 'OPTIONS' });
    assert.ok(res.status === 200 || res.status === 204);
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
    assert.match(res.headers.get('access-control-allow-headers') ?? '', /Authorization/);
    const err = await fetch(`${server.url}/_matrix/client/v3/no/such`);
    assert.equal(err.headers.get('access-control-allow-origin'), '*');
  });
});
