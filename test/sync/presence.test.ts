import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { C, createRoom, join, sleep, sync, syncPath } from './util.js';

describe('presence (spec: Presence)', () => {
  let s: TestServer;
  let alice: TestUser;
  let bob: TestUser;
  let stranger: TestUser;

  before(async () => {
    s = await startTestServer();
    alice = await s.registerUser('presence_alice');
    bob = await s.registerUser('presence_bob');
    stranger = await s.registerUser('presence_stranger');
    const roomId = await createRoom(s, alice, { preset: 'public_chat' });
    await join(s, bob, roomId);
  });
  after(async () => {
    await s.stop();
  });

  const status = (u: string) => `${C}/presence/${encodeURIComponent(u)}/status`;
  const presenceOf = (body: any, userId: string) => body.presence.events.find((e: any) => e.sender === userId);

  it('PUT then GET /presence/{userId}/status', async () => {
    const put = await s.request('PUT', status(alice.userId), { token: alice.accessToken, body: { presence: 'online', status_msg: 'Making cupcakes' } });
    assert.equal(put.status, 200);
    assert.deepEqual(put.body, {});
    const got = await s.request('GET', status(alice.userId), { token: alice.accessToken });
    assert.equal(got.status, 200);
    assert.equal(got.body.presence, 'online');
    assert.equal(got.body.status_msg, 'Making cupcakes');
    assert.equal(typeof got.body.last_active_ago, 'number');
    assert.ok(got.body.last_active_ago < 10000);
    assert.equal(got.body.currently_active, true);
  });

  it('users sharing a room see presence changes in /sync, waking their long-poll', async () => {
    const token = (await sync(s, bob, { set_presence: 'offline' })).next_batch;
    const poll = s.request('GET', syncPath({ since: token, timeout: 10000, set_presence: 'offline' }), { token: bob.accessToken });
    await sleep(50);
    const started = Date.now();
    await s.request('PUT', status(alice.userId), { token: alice.accessToken, body: { presence: 'unavailable', status_msg: 'lunch' } });
    const r = await poll;
    assert.ok(Date.now() - started < 3000, 'the presence change woke the long-poll');
    const ev = presenceOf(r.body, alice.userId);
    assert.equal(ev?.type, 'm.presence');
    assert.equal(ev.content.presence, 'unavailable');
    assert.equal(ev.content.status_msg, 'lunch');
    const initial = await sync(s, bob, { set_presence: 'offline' });
    assert.equal(presenceOf(initial, alice.userId)?.content.presence, 'unavailable');
  });

  it('syncing marks the user online unless set_presence says otherwise', async () => {
    await s.request('PUT', status(bob.userId), { token: bob.accessToken, body: { presence: 'offline' } });
    await sync(s, bob, { set_presence: 'offline' });
    assert.equal((await s.request('GET', status(bob.userId), { token: bob.accessToken })).body.presence, 'offline');
    await sync(s, bob, { set_presence: 'unavailable' });
    assert.equal((await s.request('GET', status(bob.userId), { token: bob.accessToken })).body.presence, 'unavailable');
    await sync(s, bob);
    assert.equal((await s.request('GET', status(bob.userId), { token: bob.accessToken })).body.presence, 'online');
  });

  it('setting presence for someone else is 403; a bad body is 400 M_BAD_JSON; strangers cannot look', async () => {
    const other = await s.request('PUT', status(bob.userId), { token: alice.accessToken, body: { presence: 'online' } });
    assert.equal(other.status, 403);
    assert.equal(other.body.errcode, 'M_FORBIDDEN');
    for (const body of [{}, { presence: 'busy' }, { presence: 'online', status_msg: 5 }]) {
      const bad = await s.request('PUT', status(alice.userId), { token: alice.accessToken, body });
      assert.equal(bad.status, 400, JSON.stringify(body));
      assert.equal(bad.body.errcode, 'M_BAD_JSON');
    }
    const peek = await s.request('GET', status(alice.userId), { token: stranger.accessToken });
    assert.equal(peek.status, 403);
    const shared = await s.request('GET', status(alice.userId), { token: bob.accessToken });
    assert.equal(shared.status, 200);
  });
});

describe('presence disabled (presence_enabled: false)', () => {
  let s: TestServer;
  let alice: TestUser;
  let bob: TestUser;

  before(async () => {
    s = await startTestServer({ config: { presence_enabled: false } });
    alice = await s.registerUser('nopresence_alice');
    bob = await s.registerUser('nopresence_bob');
    const roomId = await createRoom(s, alice, { preset: 'public_chat' });
    await join(s, bob, roomId);
  });
  after(async () => {
    await s.stop();
  });

  it('presence is neither stored nor sent', async () => {
    const put = await s.request('PUT', `${C}/presence/${encodeURIComponent(alice.userId)}/status`, {
      token: alice.accessToken,
      body: { presence: 'online', status_msg: 'hi' },
    });
    assert.equal(put.status, 200);
    const body = await sync(s, bob);
    assert.deepEqual(body.presence.events, []);
    const got = await s.request('GET', `${C}/presence/${encodeURIComponent(alice.userId)}/status`, { token: bob.accessToken });
    assert.equal(got.status, 200);
    assert.equal(got.body.presence, 'offline');
  });
});
