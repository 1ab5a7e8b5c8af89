import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { CLIENT, spyCrossDomain, withPasswordUia, type CrossDomainCalls } from './helpers.js';

let server: TestServer;
let calls: CrossDomainCalls;
let alice: TestUser;
let bob: TestUser;

before(async () => {
  server = await startTestServer();
  calls = spyCrossDomain(server);
  alice = await server.registerUser('alice');
  bob = await server.registerUser('bob');
});
after(async () => {
  await server.stop();
});

const profilePath = (userId: string, key?: string) =>
  `${CLIENT}/profile/${encodeURIComponent(userId)}${key ? `/${encodeURIComponent(key)}` : ''}`;

describe('GET /profile/{userId}', () => {
  it('a new user has their localpart as display name and no avatar', async () => {
    const res = await server.request('GET', profilePath(bob.userId), { token: alice.accessToken });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { displayname: 'bob' });
  });

  it('works without an access token', async () => {
    const res = await server.request('GET', profilePath(bob.userId));
    assert.equal(res.status, 200);
    assert.equal(res.body.displayname, 'bob');
    const field = await server.request('GET', profilePath(bob.userId, 'displayname'));
    assert.deepEqual(field.body, { displayname: 'bob' });
  });

  it('an unknown user (local or remote) is 404 M_NOT_FOUND', async () => {
    for (const userId of ['@ghost:localhost', '@someone:remote.example']) {
      const res = await server.request('GET', profilePath(userId), { token: alice.accessToken });
      assert.equal(res.status, 404, userId);
      assert.equal(res.body.errcode, 'M_NOT_FOUND');
      const field = await server.request('GET', profilePath(userId, 'displayname'), { token: alice.accessToken });
      assert.equal(field.status, 404);
      assert.equal(field.body.errcode, 'M_NOT_FOUND');
    }
  });

  it('a field that is not set is 404 M_NOT_FOUND', async () => {
    const res = await server.request('GET', profilePath(bob.userId, 'avatar_url'));
    assert.equal(res.status, 404);
    assert.equal(res.body.errcode, 'M_NOT_FOUND');
  });
});

describe('PUT /profile/{userId}/displayname and /avatar_url', () => {
  it('sets the display name; member events are asked for through rooms.onProfileChanged', async () => {
    const before = calls.profileChanged.length;
    const res = await server.request('PUT', profilePath(alice.userId, 'displayname'), { token: alice.accessToken, body: { displayname: 'Alice Liddell' } });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, {});
    const got = await server.request('GET', profilePath(alice.userId, 'displayname'));
    assert.deepEqual(got.body, { displayname: 'Alice Liddell' });
    assert.deepEqual(calls.profileChanged.slice(before), [alice.userId]);
    // Setting the same value again changes nothing and sends nothing.
    await server.request('PUT', profilePath(alice.userId, 'displayname'), { token: alice.accessToken, body: { displayname: 'Alice Liddell' } });
    assert.equal(calls.profileChanged.length, before + 1);
    assert.deepEqual(await server.hs.ctx.services.accounts.getProfile(alice.userId), { displayname: 'Alice Liddell' });
  });

  it('sets the avatar to an mxc URI; anything else is M_INVALID_PARAM', async () => {
    const res = await server.request('PUT', profilePath(alice.userId, 'avatar_url'), { token: alice.accessToken, body: { avatar_url: 'mxc://localhost/abc' } });
    assert.equal(res.status, 200);
    const all = await server.request('GET', profilePath(alice.userId));
    assert.deepEqual(all.body, { displayname: 'Alice Liddell', avatar_url: 'mxc://localhost/abc' });
    const bad = await server.request('PUT', profilePath(alice.userId, 'avatar_url'), { token: alice.accessToken, body: { avatar_url: 'https://example.org/a.png' } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.errcode, 'M_INVALID_PARAM');
  });

  it("another user's profile is 403 M_FORBIDDEN", async () => {
    const res = await server.request('PUT', profilePath(bob.userId, 'displayname'), { token: alice.accessToken, body: { displayname: 'Mallory' } });
    assert.equal(res.status, 403);
    assert.equal(res.body.errcode, 'M_FORBIDDEN');
    const del = await server.request('DELETE', profilePath(bob.userId, 'displayname'), { token: alice.accessToken });
    assert.equal(del.status, 403);
    assert.equal((await server.request('GET', profilePath(bob.userId, 'displayname'))).body.displayname, 'bob');
  });

  it('needs an access token', async () => {
    const res = await server.request('PUT', profilePath(alice.userId, 'displayname'), { body: { displayname: 'x' } });
    assert.equal(res.status, 401);
    assert.equal(res.body.errcode, 'M_MISSING_TOKEN');
  });

  it('a non-string value is M_BAD_JSON, a missing key M_MISSING_PARAM, an overlong name M_INVALID_PARAM', async () => {
    const wrong = await server.request('PUT', profilePath(alice.userId, 'displayname'), { token: alice.accessToken, body: { displayname: 12 } });
    assert.equal(wrong.status, 400);
    assert.equal(wrong.body.errcode, 'M_BAD_JSON');
    const missing = await server.request('PUT', profilePath(alice.userId, 'displayname'), { token: alice.accessToken, body: { avatar_url: 'mxc://a/b' } });
    assert.equal(missing.status, 400);
    assert.equal(missing.body.errcode, 'M_MISSING_PARAM');
    const long = await server.request('PUT', profilePath(alice.userId, 'displayname'), { token: alice.accessToken, body: { displayname: 'x'.repeat(257) } });
    assert.equal(long.status, 400);
    assert.equal(long.body.errcode, 'M_INVALID_PARAM');
    const max = await server.request('PUT', profilePath(alice.userId, 'displayname'), { token: alice.accessToken, body: { displayname: 'é'.repeat(256) } });
    assert.equal(max.status, 200);
    await server.request('PUT', profilePath(alice.userId, 'displayname'), { token: alice.accessToken, body: { displayname: 'Alice Liddell' } });
  });

  it('an empty display name clears it; so does DELETE', async () => {
    const carol = await server.registerUser('carol');
    await server.request('PUT', profilePath(carol.userId, 'displayname'), { token: carol.accessToken, body: { displayname: '' } });
    assert.deepEqual((await server.request('GET', profilePath(carol.userId))).body, {});
    await server.request('PUT', profilePath(carol.userId, 'displayname'), { token: carol.accessToken, body: { displayname: 'Carol' } });
    const del = await server.request('DELETE', profilePath(carol.userId, 'displayname'), { token: carol.accessToken });
    assert.equal(del.status, 200);
    assert.equal((await server.request('GET', profilePath(carol.userId, 'displayname'))).status, 404);
  });

  it('works on the r0 path', async () => {
    const res = await server.request('PUT', `/_matrix/client/r0/profile/${encodeURIComponent(bob.userId)}/displayname`, {
      token: bob.accessToken,
      body: { displayname: 'Bob Builder' },
    });
    assert.equal(res.status, 200);
    const got = await server.request('GET', `/_matrix/client/r0/profile/${encodeURIComponent(bob.userId)}/displayname`);
    assert.deepEqual(got.body, { displayname: 'Bob Builder' });
  });
});

describe('extended profile fields (v1.16: m.tz and custom keys)', () => {
  it('sets, reads and deletes m.tz and a namespaced custom field', async () => {
    const tz = await server.request('PUT', profilePath(alice.userId, 'm.tz'), { token: alice.accessToken, body: { 'm.tz': 'Europe/London' } });
    assert.equal(tz.status, 200);
    const custom = await server.request('PUT', profilePath(alice.userId, 'com.example.pronouns'), {
      token: alice.accessToken,
      body: { 'com.example.pronouns': { en: 'she/her' } },
    });
    assert.equal(custom.status, 200);
    const all = await server.request('GET', profilePath(alice.userId));
    assert.equal(all.body['m.tz'], 'Europe/London');
    assert.deepEqual(all.body['com.example.pronouns'], { en: 'she/her' });
    const one = await server.request('GET', profilePath(alice.userId, 'com.example.pronouns'));
    assert.deepEqual(one.body, { 'com.example.pronouns': { en: 'she/her' } });
    assert.equal((await server.request('DELETE', profilePath(alice.userId, 'com.example.pronouns'), { token: alice.accessToken })).status, 200);
    assert.equal((await server.request('GET', profilePath(alice.userId, 'com.example.pronouns'))).status, 404);
    // Custom fields stay out of the cross-domain profile (member events carry name and avatar only).
    assert.deepEqual(Object.keys((await server.hs.ctx.services.accounts.getProfile(alice.userId))!).sort(), ['avatar_url', 'displayname']);
  });

  it('a key outside the grammar is M_INVALID_PARAM; m.tz must be a string', async () => {
    const bad = await server.request('PUT', profilePath(alice.userId, 'Bad Key'), { token: alice.accessToken, body: { 'Bad Key': 1 } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.errcode, 'M_INVALID_PARAM');
    const tz = await server.request('PUT', profilePath(alice.userId, 'm.tz'), { token: alice.accessToken, body: { 'm.tz': 5 } });
    assert.equal(tz.status, 400);
    assert.equal(tz.body.errcode, 'M_BAD_JSON');
  });

  it('a profile over 64 KiB is M_PROFILE_TOO_LARGE; an overlong key M_KEY_TOO_LARGE', async () => {
    const big = await server.request('PUT', profilePath(alice.userId, 'com.example.big'), {
      token: alice.accessToken,
      body: { 'com.example.big': 'x'.repeat(70 * 1024) },
    });
    assert.equal(big.status, 400);
    assert.equal(big.body.errcode, 'M_PROFILE_TOO_LARGE');
    const key = `com.${'k'.repeat(260)}`;
    const long = await server.request('PUT', profilePath(alice.userId, key), { token: alice.accessToken, body: { [key]: 1 } });
    assert.equal(long.status, 400);
    assert.equal(long.body.errcode, 'M_KEY_TOO_LARGE');
  });
});

describe('POST /user_directory/search', () => {
  let dora: TestUser;
  let ed: TestUser;
  /** A room with a public join rule: its members are in everyone's directory. */
  let lobby: string;
  const enc = encodeURIComponent;
  const post = async (u: TestUser, path: string, body: Record<string, unknown> = {}) => {
    const res = await server.request('POST', `${CLIENT}${path}`, { token: u.accessToken, body });
    assert.equal(res.status, 200, `${path}: ${JSON.stringify(res.body)}`);
    return res.body;
  };
  const joinLobby = (u: TestUser) => post(u, `/rooms/${enc(lobby)}/join`);

  before(async () => {
    lobby = (await post(alice, '/createRoom', { preset: 'public_chat' })).room_id;
    dora = await server.registerUser('dora.explorer');
    await server.request('PUT', profilePath(dora.userId, 'displayname'), { token: dora.accessToken, body: { displayname: 'Dora Márquez' } });
    ed = await server.registerUser('ed_wood');
    await server.request('PUT', profilePath(ed.userId, 'avatar_url'), { token: ed.accessToken, body: { avatar_url: 'mxc://localhost/ed' } });
    for (const u of [dora, ed]) await joinLobby(u);
    for (let i = 0; i < 4; i++) await joinLobby(await server.registerUser(`zed${i}`));
  });

  const search = (body: Record<string, unknown>, token = alice.accessToken) =>
    server.request('POST', `${CLIENT}/user_directory/search`, { token, body });

  it('finds users by a prefix of a word of their user id, case-insensitively', async () => {
    for (const term of ['dora', 'EXPLO', '@dora.exp', 'dora.explorer:localhost']) {
      const res = await search({ search_term: term });
      assert.equal(res.status, 200, term);
      assert.deepEqual(res.body.results.map((r: { user_id: string }) => r.user_id), [dora.userId], term);
      assert.equal(res.body.limited, false);
    }
  });

  it('finds users by display name words (accents folded), returning display name and avatar', async () => {
    const res = await search({ search_term: 'már' });
    assert.deepEqual(res.body.results, [{ user_id: dora.userId, display_name: 'Dora Márquez' }]);
    const folded = await search({ search_term: 'MARQ' });
    assert.deepEqual(folded.body.results.map((r: { user_id: string }) => r.user_id), [dora.userId], 'accents are folded');
    const ed1 = await search({ search_term: 'wood' });
    assert.deepEqual(ed1.body.results, [{ user_id: ed.userId, display_name: 'ed_wood', avatar_url: 'mxc://localhost/ed' }]);
  });

  it('every word must match; a match in the middle of a word does not count', async () => {
    assert.equal((await search({ search_term: 'dora wood' })).body.results.length, 0);
    assert.equal((await search({ search_term: 'xplorer' })).body.results.length, 0);
    assert.equal((await search({ search_term: '%' })).body.results.length, 0);
  });

  it('limit caps the results and sets limited', async () => {
    const res = await search({ search_term: 'zed', limit: 3 });
    assert.equal(res.body.results.length, 3);
    assert.equal(res.body.limited, true);
    const all = await search({ search_term: 'zed' });
    assert.equal(all.body.results.length, 4);
    assert.equal(all.body.limited, false);
  });

  it('deactivated users are not listed', async () => {
    const gone = await server.registerUser('zed-gone');
    await joinLobby(gone);
    assert.equal((await search({ search_term: 'gone' })).body.results.length, 1);
    const res = await withPasswordUia(server, 'POST', `${CLIENT}/account/deactivate`, gone);
    assert.equal(res.status, 200);
    assert.equal((await search({ search_term: 'gone' })).body.results.length, 0);
  });

  it('finds only users who share a room with the searcher or are in a public or world-readable room; leaving drops them', async () => {
    const found = async (u: TestUser) => (await search({ search_term: 'hilda' }, u.accessToken)).body.results.map((r: { user_id: string }) => r.user_id);
    const hilda = await server.registerUser('hilda.hidden');
    assert.deepEqual(await found(alice), [], 'in no room: nobody finds her');
    // A private room shared with alice: alice finds her, bob does not.
    const den = (await post(hilda, '/createRoom', { preset: 'private_chat', invite: [alice.userId] })).room_id;
    assert.deepEqual(await found(alice), [], 'an invite shares no room');
    await post(alice, `/rooms/${enc(den)}/join`);
    assert.deepEqual(await found(alice), [hilda.userId]);
    assert.deepEqual(await found(bob), []);
    await post(alice, `/rooms/${enc(den)}/leave`);
    assert.deepEqual(await found(alice), [], 'alice left the only room they shared');
    // World-readable history makes the room's members visible to all.
    const state = await server.request('PUT', `${CLIENT}/rooms/${enc(den)}/state/m.room.history_visibility/`, { token: hilda.accessToken, body: { history_visibility: 'world_readable' } });
    assert.equal(state.status, 200);
    assert.deepEqual(await found(bob), [hilda.userId]);
    await post(hilda, `/rooms/${enc(den)}/leave`);
    assert.deepEqual(await found(bob), []);
    // So does a public join rule.
    await joinLobby(hilda);
    assert.deepEqual(await found(bob), [hilda.userId]);
    await post(hilda, `/rooms/${enc(lobby)}/leave`);
    assert.deepEqual(await found(bob), [], 'she left the public room');
  });

  it('search_term is required (M_BAD_JSON); limit must be an integer; a token is needed', async () => {
    for (const body of [{}, { search_term: 5 }, { search_term: 'a', limit: 'ten' }]) {
      const res = await search(body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(res.body.errcode, 'M_BAD_JSON');
    }
    const anon = await server.request('POST', `${CLIENT}/user_directory/search`, { body: { search_term: 'a' } });
    assert.equal(anon.status, 401);
  });
});
