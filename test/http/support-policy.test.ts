/**
 * `/.well-known/matrix/support` (spec v1.10) serves the configured contacts and page, and 404
 * M_NOT_FOUND when none are configured; `/.well-known/matrix/policy_server` answers 404 since
 * Hearth is not a policy server (client-server-api "Policy Servers").
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../helpers/server.js';

describe('/.well-known/matrix/support', () => {
  let plain: TestServer;
  let configured: TestServer;
  const contacts = [
    { role: 'm.role.admin', matrix_id: '@admin:example.org', email_address: 'admin@example.org' },
    { role: 'm.role.security', email_address: 'security@example.org' },
  ];
  before(async () => {
    plain = await startTestServer();
    configured = await startTestServer({ config: { support: { contacts, support_page: 'https://example.org/help' } } });
  });
  after(async () => {
    await plain.stop();
    await configured.stop();
  });

  it('answers 404 M_NOT_FOUND when nothing is configured', async () => {
    const res = await plain.request('GET', '/.well-known/matrix/support');
    assert.equal(res.status, 404);
    assert.equal(res.body.errcode, 'M_NOT_FOUND');
  });

  it('serves the configured contacts and support page, without a token', async () => {
    const res = await configured.request('GET', '/.well-known/matrix/support');
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { contacts, support_page: 'https://example.org/help' });
  });

  it('a contact without a way to reach anyone is refused at start', async () => {
    await assert.rejects(startTestServer({ config: { support: { contacts: [{ role: 'm.role.admin' }] } } }), /support\.contacts/);
  });

  it('the policy server well-known answers 404 M_NOT_FOUND', async () => {
    const res = await plain.request('GET', '/.well-known/matrix/policy_server');
    assert.equal(res.status, 404);
    assert.equal(res.body.errcode, 'M_NOT_FOUND');
  });
});
