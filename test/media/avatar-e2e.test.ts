/**
 * End to end with matrix-js-sdk, as Element sets an avatar: uploadContent, setAvatarUrl, then
 * another user sees the avatar in the profile and fetches its thumbnail through the
 * authenticated media URL the SDK builds.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { MatrixClient } from 'matrix-js-sdk';
import sharp from 'sharp';
import { loginAndStart, stopClients } from '../helpers/matrix-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { makeJpeg } from './helpers.js';

describe('an avatar set with matrix-js-sdk', { timeout: 60_000 }, () => {
  let server: TestServer;
  let alice: MatrixClient;
  let bob: MatrixClient;

  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await stopClients(alice, bob);
    await server?.stop();
  });

  it('uploads, sets and serves the avatar and its thumbnail', { timeout: 30_000 }, async () => {
    const aliceUser = await server.registerUser(`alice${process.pid}`);
    const bobUser = await server.registerUser(`bob${process.pid}`);
    alice = await loginAndStart(server, aliceUser);
    bob = await loginAndStart(server, bobUser);

    const photo = await makeJpeg(400, 300);
    const uploaded = await alice.uploadContent(photo, { type: 'image/jpeg', name: 'me.jpg' });
    assert.match(uploaded.content_uri, new RegExp(`^mxc://${server.serverName}/[A-Za-z0-9]{24,}$`));
    await alice.setAvatarUrl(uploaded.content_uri);

    const profile = await bob.getProfileInfo(aliceUser.userId);
    assert.equal(profile.avatar_url, uploaded.content_uri);

    // Element asks for a 96x96 crop of avatars, with authentication.
    const url = bob.mxcUrlToHttp(profile.avatar_url!, 96, 96, 'crop', false, true, true);
    assert.ok(url?.includes('/_matrix/client/v1/media/thumbnail/'), `authenticated thumbnail URL: ${url}`);
    const res = await fetch(url!, { headers: { authorization: `Bearer ${bob.getAccessToken()}` } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'image/jpeg');
    const meta = await sharp(Buffer.from(await res.arrayBuffer())).metadata();
    assert.deepEqual([meta.width, meta.height], [96, 96]);

    const full = bob.mxcUrlToHttp(profile.avatar_url!, undefined, undefined, undefined, false, true, true);
    const original = await fetch(full!, { headers: { authorization: `Bearer ${bob.getAccessToken()}` } });
    assert.ok(Buffer.from(await original.arrayBuffer()).equals(photo), 'the full-size download is the uploaded file');
  });
});
