/** MatrixRTC transports (MSC4143) from the config, where Element Call looks for them. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';

const LIVEKIT = { type: 'livekit', livekit_service_url: 'https://livekit-jwt.example.org' };

describe('MatrixRTC transports', () => {
  let s: TestServer;
  let user: TestUser;
  before(async () => {
    s = await startTestServer({ config: { matrix_rtc: { transports: [LIVEKIT] } } });
    user = await s.registerUser('rtc_user');
  });
  after(async () => {
    await s.stop();
  });

  it('lists the configured transports to signed-in users', async () => {
    const res = await s.request('GET', '/_matrix/client/unstable/org.matrix.msc4143/rtc/transports', { token: user.accessToken });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { rtc_transports: [LIVEKIT] });
    const anon = await s.request('GET', '/_matrix/client/unstable/org.matrix.msc4143/rtc/transports');
    assert.equal(anon.status, 401);
  });

  it('advertises them in /versions and .well-known', async () => {
    const versions = await s.request('GET', '/_matrix/client/versions');
    assert.equal(versions.body.unstable_features['org.matrix.msc4143'], true);
    const wk = await s.request('GET', '/.well-known/matrix/client');
    assert.deepEqual(wk.body['org.matrix.msc4143.rtc_foci'], [LIVEKIT]);
  });

  it('a server without transports lists none', async () => {
    const plain = await startTestServer();
    try {
      const u = await plain.registerUser('rtc_none');
      const res = await plain.request('GET', '/_matrix/client/unstable/org.matrix.msc4143/rtc/transports', { token: u.accessToken });
      assert.deepEqual(res.body, { rtc_transports: [] });
      const wk = await plain.request('GET', '/.well-known/matrix/client');
      assert.equal(wk.body['org.matrix.msc4143.rtc_foci'], undefined);
    } finally {
      await plain.stop();
    }
  });
});
