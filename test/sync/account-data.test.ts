import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { bodies, C, createRoom, join, send, sleep, sync, syncPath } from './util.js';

describe('account data and tags (spec: Client Config, Room Tagging)', () => {
  let s: TestServer;
  let alice: TestUser;
  let bob: TestUser;

  before(async () => {
    s = await startTestServer();
    alice = await s.registerUser('ad_alice');
    bob = await s.registerUser('ad_bob');
  });
  after(async () => {
    await s.stop();
  });

  const globalPath = (u: string, type: string) => `${C}/user/${encodeURIComponent(u)}/account_data/${encodeURIComponent(type)}`;
  const roomPath = (u: string, room: string, type: string) =>
    `${C}/user/${encodeURIComponent(u)}/rooms/${encodeURIComponent(room)}/account_data/${encodeURIComponent(type)}`;
  const tagsPath = (u: string, room: string, tag?: string) =>
    `${C}/user/${encodeURIComponent(u)}/rooms/${encodeURIComponent(room)}/tags${tag === undefined ? '' : `/${encodeURIComponent(tag)}`}`;

  it('global account data: PUT, GET, and /sync account_data (initial, then only changes)', async () => {
    const missing = await s.request('GET', globalPath(alice.userId, 'org.example.none'), { token: alice.accessToken });
    assert.equal(missing.status, 404);
    assert.equal(missing.body.errcode, 'M_NOT_FOUND');
    const put = await s.request('PUT', globalPath(alice.userId, 'org.example.config'), { token: alice.accessToken, body: { theme: 'dark' } });
    assert.equal(put.status, 200);
    assert.deepEqual(put.body, {});
    const got = await s.request('GET', globalPath(alice.userId, 'org.example.config'), { token: alice.accessToken });
    assert.deepEqual(got.body, { theme: 'dark' });

    const initial = await sync(s, alice);
    assert.deepEqual(
      initial.account_data.events.find((e: any) => e.type === 'org.example.config'),
      { type: 'org.example.config', content: { theme: 'dark' } },
    );
    const quiet = await sync(s, alice, { since: initial.next_batch });
    assert.deepEqual(quiet.account_data.events, []);

    const poll = s.request('GET', syncPath({ since: initial.next_batch, timeout: 10000 }), { token: alice.accessToken });
    await sleep(50);
    const started = Date.now();
    await s.request('PUT', globalPath(alice.userId, 'org.example.config'), { token: alice.accessToken, body: { theme: 'light' } });
    const r = await poll;
    assert.ok(Date.now() - started < 3000, 'an account data change wakes the long-poll');
    assert.deepEqual(r.body.account_data.events, [{ type: 'org.example.config', content: { theme: 'light' } }]);
  });

  it('room account data: PUT, GET, and rooms.join[room].account_data', async () => {
    const roomId = await createRoom(s, alice);
    const token = (await sync(s, alice)).next_batch;
    const put = await s.request('PUT', roomPath(alice.userId, roomId, 'org.example.room'), { token: alice.accessToken, body: { pinned: true } });
    assert.equal(put.status, 200);
    const got = await s.request('GET', roomPath(alice.userId, roomId, 'org.example.room'), { token: alice.accessToken });
    assert.deepEqual(got.body, { pinned: true });
    const global = await s.request('GET', globalPath(alice.userId, 'org.example.room'), { token: alice.accessToken });
    assert.equal(global.status, 404, 'room data does not fall back to global data or back');
    const body = await sync(s, alice, { since: token });
    assert.deepEqual(body.rooms.join[roomId].account_data.events, [{ type: 'org.example.room', content: { pinned: true } }]);
    assert.ok(!body.account_data.events.some((e: any) => e.type === 'org.example.room'));
  });

  it("another user's account data is 403 M_FORBIDDEN", async () => {
    const roomId = await createRoom(s, alice);
    for (const [method, path] of [
      ['GET', globalPath(alice.userId, 'org.example.config')],
      ['PUT', globalPath(alice.userId, 'org.example.config')],
      ['GET', roomPath(alice.userId, roomId, 'org.example.room')],
      ['PUT', roomPath(alice.userId, roomId, 'org.example.room')],
      ['GET', tagsPath(alice.userId, roomId)],
      ['PUT', tagsPath(alice.userId, roomId, 'u.work')],
    ] as const) {
      const res = await s.request(method, path, { token: bob.accessToken, body: method === 'PUT' ? {} : undefined });
      assert.equal(res.status, 403, `${method} ${path}`);
      assert.equal(res.body.errcode, 'M_FORBIDDEN');
    }
  });

  it('m.fully_read and m.push_rules cannot be set through the account data API: 405 M_BAD_JSON', async () => {
    const roomId = await createRoom(s, alice);
    for (const path of [
      globalPath(alice.userId, 'm.fully_read'),
      globalPath(alice.userId, 'm.push_rules'),
      roomPath(alice.userId, roomId, 'm.fully_read'),
      roomPath(alice.userId, roomId, 'm.push_rules'),
    ]) {
      const res = await s.request('PUT', path, { token: alice.accessToken, body: { event_id: '$x' } });
      assert.equal(res.status, 405, path);
      assert.equal(res.body.errcode, 'M_BAD_JSON');
    }
  });

  it('an invalid room id is 400 M_INVALID_PARAM; a non-object body is rejected', async () => {
    const bad = await s.request('GET', roomPath(alice.userId, '@notaroom:localhost', 'org.example.x'), { token: alice.accessToken });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.errcode, 'M_INVALID_PARAM');
    const arr = await s.request('PUT', globalPath(alice.userId, 'org.example.x'), { token: alice.accessToken, body: [1, 2] });
    assert.equal(arr.status, 400);
    assert.equal(arr.body.errcode, 'M_BAD_JSON');
    const notJson = await s.request('PUT', globalPath(alice.userId, 'org.example.x'), { token: alice.accessToken, rawBody: '{nope' });
    assert.equal(notJson.status, 400);
    assert.equal(notJson.body.errcode, 'M_NOT_JSON');
  });

  it('tags: PUT and DELETE a tag, GET lists them, /sync carries m.tag', async () => {
    const roomId = await createRoom(s, alice);
    const token = (await sync(s, alice)).next_batch;
    assert.deepEqual((await s.request('GET', tagsPath(alice.userId, roomId), { token: alice.accessToken })).body, { tags: {} });
    assert.equal((await s.request('PUT', tagsPath(alice.userId, roomId, 'm.favourite'), { token: alice.accessToken, body: { order: 0.25 } })).status, 200);
    assert.equal((await s.request('PUT', tagsPath(alice.userId, roomId, 'u.work'), { token: alice.accessToken, body: {} })).status, 200);
    const got = await s.request('GET', tagsPath(alice.userId, roomId), { token: alice.accessToken });
    assert.deepEqual(got.body, { tags: { 'm.favourite': { order: 0.25 }, 'u.work': {} } });
    const body = await sync(s, alice, { since: token });
    const tag = body.rooms.join[roomId].account_data.events.find((e: any) => e.type === 'm.tag');
    assert.deepEqual(tag.content, { tags: { 'm.favourite': { order: 0.25 }, 'u.work': {} } });

    assert.equal((await s.request('DELETE', tagsPath(alice.userId, roomId, 'u.work'), { token: alice.accessToken })).status, 200);
    const after = await sync(s, alice, { since: body.next_batch });
    const tag2 = after.rooms.join[roomId].account_data.events.find((e: any) => e.type === 'm.tag');
    assert.deepEqual(tag2.content, { tags: { 'm.favourite': { order: 0.25 } } });
    const badOrder = await s.request('PUT', tagsPath(alice.userId, roomId, 'u.x'), { token: alice.accessToken, body: { order: 'first' } });
    assert.equal(badOrder.status, 400);
    const longTag = await s.request('PUT', tagsPath(alice.userId, roomId, 'u.' + 'x'.repeat(300)), { token: alice.accessToken, body: {} });
    assert.equal(longTag.status, 400);
  });

  it('m.push_rules is readable account data: in the initial sync, by GET, and after an edit', async () => {
    const initial = await sync(s, bob);
    const rules = initial.account_data.events.find((e: any) => e.type === 'm.push_rules');
    assert.ok(Array.isArray(rules?.content.global.override), 'server-default rules in the initial sync');
    const got = await s.request('GET', globalPath(bob.userId, 'm.push_rules'), { token: bob.accessToken });
    assert.equal(got.status, 200);
    assert.ok(Array.isArray(got.body.global.underride));
    const edit = await s.request('PUT', `${C}/pushrules/global/content/cupcakes`, {
      token: bob.accessToken,
      body: { pattern: 'cupcake*', actions: ['notify'] },
    });
    assert.equal(edit.status, 200, JSON.stringify(edit.body));
    const next = await sync(s, bob, { since: initial.next_batch });
    const changed = next.account_data.events.find((e: any) => e.type === 'm.push_rules');
    assert.ok(changed?.content.global.content.some((r: any) => r.rule_id === 'cupcakes'));
  });

  it('m.ignored_user_list hides messages from ignored users, but not their state events', async () => {
    const roomId = await createRoom(s, alice, { preset: 'public_chat' });
    await join(s, bob, roomId);
    await send(s, bob, roomId, 'bob before');
    await send(s, alice, roomId, 'alice');
    const put = await s.request('PUT', globalPath(alice.userId, 'm.ignored_user_list'), {
      token: alice.accessToken,
      body: { ignored_users: { [bob.userId]: {} } },
    });
    assert.equal(put.status, 200);
    const body = await sync(s, alice);
    const tl = body.rooms.join[roomId].timeline.events;
    assert.deepEqual(bodies(tl), ['alice']);
    assert.ok(tl.some((e: any) => e.type === 'm.room.member' && e.state_key === bob.userId), 'state events stay');
    await s.request('PUT', globalPath(alice.userId, 'm.ignored_user_list'), { token: alice.accessToken, body: { ignored_users: {} } });
    const again = await sync(s, alice);
    assert.deepEqual(bodies(again.rooms.join[roomId].timeline.events), ['bob before', 'alice']);
  });
});
