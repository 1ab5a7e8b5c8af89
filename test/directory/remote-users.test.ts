// The user directory over federation (spec: "User Directory"): users of b.test whose joins reached
// a.test are found by a.test's users who share a room with them or when the room is public and
// a.test is in it, with the display name and avatar of their member events, and are no longer
// found once they leave the last such room (or a.test leaves the public room they are in).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { eventually, startServers } from '../federation/federation-helpers.js';
import type { TestServer, TestUser } from '../helpers/server.js';
import { C, createRoom, e, expectStatus, membershipAction } from '../rooms/room-helpers.js';

describe('user directory: users of other servers', () => {
  let a: TestServer;
  let b: TestServer;
  let stop: () => Promise<void>;
  /** The searcher, on a.test. */
  let alice: TestUser;
  /** Another user of a.test, in rooms alice is not in. */
  let zoe: TestUser;
  let bob: TestUser;
  let dave: TestUser;
  let erin: TestUser;
  let fred: TestUser;

  const search = async (server: TestServer, user: TestUser, term: string) => {
    const res = await server.request('POST', `${C}/user_directory/search`, { token: user.accessToken, body: { search_term: term } });
    expectStatus(res, 200);
    return res.body.results as { user_id: string; display_name?: string; avatar_url?: string }[];
  };
  const found = async (user: TestUser, term: string, userId: string) => (await search(a, user, term)).find((r) => r.user_id === userId);
  const setProfile = async (server: TestServer, user: TestUser, displayname: string, avatar?: string) => {
    const p = `${C}/profile/${e(user.userId)}`;
    expectStatus(await server.request('PUT', `${p}/displayname`, { token: user.accessToken, body: { displayname } }), 200);
    if (avatar) expectStatus(await server.request('PUT', `${p}/avatar_url`, { token: user.accessToken, body: { avatar_url: avatar } }), 200);
  };
  /** `user` of b.test joins `roomId` held on a.test, after an invite from `inviter` when given. */
  const joinOverFederation = async (user: TestUser, roomId: string, inviter?: TestUser) => {
    if (inviter) {
      expectStatus(await membershipAction(a, inviter, roomId, 'invite', { user_id: user.userId }), 200);
      await eventually(async () => {
        const res = await b.request('GET', `${C}/sync?timeout=0`, { token: user.accessToken });
        return res.body.rooms?.invite?.[roomId];
      }, `the invite of ${user.userId}`);
    }
    expectStatus(await b.request('POST', `${C}/join/${e(roomId)}?server_name=a.test`, { token: user.accessToken, body: {} }), 200);
  };

  before(async () => {
    const started = await startServers(['a.test', 'b.test']);
    [a, b] = started.servers as [TestServer, TestServer];
    stop = started.stop;
    alice = await a.registerUser('alice');
    zoe = await a.registerUser('zoe');
    bob = await b.registerUser('bob');
    dave = await b.registerUser('dave');
    erin = await b.registerUser('erin');
    fred = await b.registerUser('fred');
    await setProfile(b, bob, 'Bobby Tables', 'mxc://b.test/bobby');
    await setProfile(b, dave, 'Dave Lister');
    await setProfile(b, erin, 'Erin Secret');
    await setProfile(b, fred, 'Fred Faraway');
  });
  after(async () => {
    await stop();
  });

  it('finds a remote user who shares a private room with the searcher, with the profile of their member event', async () => {
    const room = await createRoom(a, alice, { preset: 'private_chat' });
    assert.equal(await found(alice, 'bobby', bob.userId), undefined, 'not found before sharing a room');
    await joinOverFederation(bob, room, alice);
    const hit = await eventually(() => found(alice, 'bobby', bob.userId), 'bob in alice’s directory');
    assert.deepEqual(hit, { user_id: bob.userId, display_name: 'Bobby Tables', avatar_url: 'mxc://b.test/bobby' });
    assert.ok(await found(alice, 'tab', bob.userId), 'any word of the display name');
    assert.ok(await found(alice, 'bob:b.test', bob.userId), 'the user id');
    assert.equal(await found(alice, 'obby', bob.userId), undefined, 'a match inside a word does not count');
    assert.equal(await found(zoe, 'bobby', bob.userId), undefined, 'zoe shares no room with bob');
  });

  it('a remote display name change arrives with its member event', async () => {
    await setProfile(b, bob, 'Robert Tables');
    const hit = await eventually(() => found(alice, 'robert', bob.userId), 'bob’s new name');
    assert.equal(hit.display_name, 'Robert Tables');
    assert.equal(await found(alice, 'bobby', bob.userId), undefined, 'the old name is gone');
  });

  it('finds a remote user in a public room a.test is in, even without sharing it; not one in a private room', async () => {
    const lobby = await createRoom(a, zoe, { preset: 'public_chat' });
    const secret = await createRoom(a, zoe, { preset: 'private_chat' });
    await joinOverFederation(dave, lobby);
    await joinOverFederation(erin, secret, zoe);
    await eventually(() => found(zoe, 'erin', erin.userId), 'erin in zoe’s directory');
    const dave1 = await eventually(() => found(alice, 'lister', dave.userId), 'dave in alice’s directory');
    assert.equal(dave1.display_name, 'Dave Lister');
    assert.equal(await found(alice, 'erin', erin.userId), undefined, 'erin is only in a private room alice is not in');

    expectStatus(await membershipAction(b, dave, lobby, 'leave'), 200);
    await eventually(async () => (await found(alice, 'lister', dave.userId)) === undefined, 'dave gone after leaving');
  });

  it('a remote user drops out when they leave the last room shared with the searcher', async () => {
    const rooms = (await b.request('GET', `${C}/joined_rooms`, { token: bob.accessToken })).body.joined_rooms as string[];
    for (const room of rooms) expectStatus(await membershipAction(b, bob, room, 'leave'), 200);
    await eventually(async () => (await found(alice, 'robert', bob.userId)) === undefined, 'bob gone after leaving');
  });

  it('finds members of a public room held on b.test once a.test joins it, and not after a.test leaves', async () => {
    const far = await createRoom(b, fred, { preset: 'public_chat' });
    assert.equal(await found(alice, 'faraway', fred.userId), undefined);
    // The room's state, fred's member event in it, arrives with zoe's join (send_join).
    expectStatus(await a.request('POST', `${C}/join/${e(far)}?server_name=b.test`, { token: zoe.accessToken, body: {} }), 200);
    const hit = await eventually(() => found(alice, 'faraway', fred.userId), 'fred in alice’s directory');
    assert.equal(hit.display_name, 'Fred Faraway');
    expectStatus(await membershipAction(a, zoe, far, 'leave'), 200);
    await eventually(async () => (await found(alice, 'faraway', fred.userId)) === undefined, 'fred gone once a.test is out of the room');
  });
});
