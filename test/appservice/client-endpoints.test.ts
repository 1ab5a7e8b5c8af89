/**
 * The application-service endpoints of the client-server API on a server with no application
 * services: third-party lookups find nothing (client-server-api "Third-party lookups"), and what
 * only an application service may call is refused to a user's token with 403 M_FORBIDDEN
 * ("Application service ping", "Application service room directory").
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';

const V3 = '/_matrix/client/v3';

describe('application-service endpoints with no application services', () => {
  let server: TestServer;
  let alice: TestUser;
  let roomId: string;
  before(async () => {
    server = await startTestServer();
    alice = await server.registerUser();
    roomId = (await server.request('POST', `${V3}/createRoom`, { token: alice.accessToken, body: {} })).body.room_id;
  });
  after(async () => {
    await server.stop();
  });

  it('no third-party protocol is offered', async () => {
    const res = await server.request('GET', `${V3}/thirdparty/protocols`, { token: alice.accessToken });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, {});
    const anon = await server.request('GET', `${V3}/thirdparty/protocols`);
    assert.equal(anon.body.errcode, 'M_MISSING_TOKEN');
  });

  it('lookups under a protocol answer 404 M_NOT_FOUND', async () => {
    for (const path of ['protocol/irc', 'location/irc?channel=%23a', 'user/irc?nick=bob']) {
      const res = await server.request('GET', `${V3}/thirdparty/${path}`, { token: alice.accessToken });
      assert.equal(res.status, 404, path);
      assert.equal(res.body.errcode, 'M_NOT_FOUND', path);
    }
  });

  it('reverse lookups answer 404 M_NOT_FOUND, and 400 M_MISSING_PARAM without the parameter', async () => {
    const loc = await server.request('GET', `${V3}/thirdparty/location?alias=${encodeURIComponent('#a:localhost')}`, { token: alice.accessToken });
    assert.equal(loc.status, 404);
    assert.equal(loc.body.errcode, 'M_NOT_FOUND');
    const user = await server.request('GET', `${V3}/thirdparty/user?userid=${encodeURIComponent(alice.userId)}`, { token: alice.accessToken });
    assert.equal(user.status, 404);
    assert.equal(user.body.errcode, 'M_NOT_FOUND');
    for (const path of ['location', 'user']) {
      const res = await server.request('GET', `${V3}/thirdparty/${path}`, { token: alice.accessToken });
      assert.equal(res.status, 400, path);
      assert.equal(res.body.errcode, 'M_MISSING_PARAM', path);
    }
  });

  it("a user's token cannot ping an application service", async () => {
    const res = await server.request('POST', '/_matrix/client/v1/appservice/telegram/ping', { token: alice.accessToken, body: { transaction_id: 't1' } });
    assert.equal(res.status, 403);
    assert.equal(res.body.errcode, 'M_FORBIDDEN');
    const anon = await server.request('POST', '/_matrix/client/v1/appservice/telegram/ping', { body: {} });
    assert.equal(anon.status, 401);
  });

  it("a user's token cannot publish to an application service's room directory", async () => {
    const path = `${V3}/directory/list/appservice/irc/${encodeURIComponent(roomId)}`;
    const res = await server.request('PUT', path, { token: alice.accessToken, body: { visibility: 'public' } });
    assert.equal(res.status, 403);
    assert.equal(res.body.errcode, 'M_FORBIDDEN');
    // The room did not reach the server's own directory either.
    const listed = await server.request('GET', `${V3}/directory/list/room/${encodeURIComponent(roomId)}`);
    assert.equal(listed.body.visibility, 'private');
  });
});
