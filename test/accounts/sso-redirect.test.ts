/**
 * With no single sign-on provider, `GET /login` offers no `m.login.sso` flow and the SSO redirect
 * endpoints answer Matrix errors: 400 without `redirectUrl`, 404 M_NOT_FOUND otherwise (the spec's
 * answer for an unknown IdP).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../helpers/server.js';

describe('SSO redirect without a provider', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await server.stop();
  });

  it('no m.login.sso flow is offered', async () => {
    const res = await server.request('GET', '/_matrix/client/v3/login');
    assert.ok(!res.body.flows.some((f: { type: string }) => f.type === 'm.login.sso'));
  });

  it('redirects answer 404 M_NOT_FOUND, and 400 M_MISSING_PARAM without redirectUrl', async () => {
    const q = `?redirectUrl=${encodeURIComponent('https://app.example.org/')}`;
    for (const path of ['/_matrix/client/v3/login/sso/redirect', '/_matrix/client/v3/login/sso/redirect/oidc-google']) {
      const res = await server.request('GET', path + q);
      assert.equal(res.status, 404, path);
      assert.equal(res.body.errcode, 'M_NOT_FOUND', path);
      const missing = await server.request('GET', path);
      assert.equal(missing.status, 400, path);
      assert.equal(missing.body.errcode, 'M_MISSING_PARAM', path);
    }
  });
});
