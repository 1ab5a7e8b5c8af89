import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { bodies, C, createRoom, findState, join, send, sync, syncPath } from './util.js';

describe('filters (spec: Filtering)', () => {
  let s: TestServer;
  let alice: TestUser;
  let bob: TestUser;
  let carol: TestUser;

  before(async () => {
    s = await startTestServer();
    alice = await s.registerUser('filter_alice');
    bob = await s.registerUser('filter_bob');
    carol = await s.registerUser('filter_carol');
  });
  after(async () => {
    await s.stop();
  });

  const upload = (u: TestUser, filter: unknown, userId = u.userId) =>
    s.request('POST', `${C}/user/${encodeURIComponent(userId)}/filter`, { token: u.accessToken, body: filter });

  it('POST /user/{userId}/filter returns a filter_id that GET gives back', async () => {
    const filter = {
      room: { timeline: { limit: 5, types: ['m.room.message'], not_senders: ['@spam:example.com'] }, state: { lazy_load_members: true } },
      presence: { not_types: ['*'] },
      event_fields: ['type', 'content.body'],
    };
    const res = await upload(alice, filter);
    assert.equal(res.status, 200);
    assert.equal(typeof res.body.filter_id, 'string');
    assert.ok(!res.body.filter_id.startsWith('{'), 'filter ids never start with {');
    const got = await s.request('GET', `${C}/user/${encodeURIComponent(alice.userId)}/filter/${res.body.filter_id}`, { token: alice.accessToken });
    assert.equal(got.status, 200);
    assert.deepEqual(got.body, filter);
    const again = await upload(alice, filter);
    assert.equal(again.body.filter_id, res.body.filter_id, 'the same filter gets the same id');
    const unknownKeys = await upload(alice, { 'org.example.weight': 0.5, room: { timeline: { 'org.example.x': true } } });
    assert.equal(unknownKeys.status, 200, 'unknown keys (and floats) are allowed');
  });

  it('filters of another user are 403 M_FORBIDDEN; an unknown filter is 404 M_NOT_FOUND', async () => {
    const res = await upload(alice, {}, bob.userId);
    assert.equal(res.status, 403);
    assert.equal(res.body.errcode, 'M_FORBIDDEN');
    const own = await upload(bob, { room: { timeline: { limit: 1 } } });
    const other = await s.request('GET', `${C}/user/${encodeURIComponent(bob.userId)}/filter/${own.body.filter_id}`, { token: alice.accessToken });
    assert.equal(other.status, 403);
    assert.equal(other.body.errcode, 'M_FORBIDDEN');
    const missing = await s.request('GET', `${C}/user/${encodeURIComponent(alice.userId)}/filter/nosuchfilter`, { token: alice.accessToken });
    assert.equal(missing.status, 404);
    assert.equal(missing.body.errcode, 'M_NOT_FOUND');
  });

  it('an ill-shaped filter is 400 M_BAD_JSON', async () => {
    for (const bad of [
      { room: { timeline: { limit: 'ten' } } },
      { room: { rooms: '!notalist:x' } },
      { room: { timeline: { senders: ['not-a-user-id'] } } },
      { event_fields: 'type' },
      { presence: [] },
      { event_format: 'xml' },
    ]) {
      const res = await upload(alice, bad);
      assert.equal(res.status, 400, JSON.stringify(bad));
      assert.equal(res.body.errcode, 'M_BAD_JSON', JSON.stringify(bad));
    }
  });

  it('/sync rejects a bad filter parameter: not JSON, wrong shape, unknown id', async () => {
    const notJson = await s.request('GET', `${C}/sync?filter=${encodeURIComponent('{nope')}`, { token: alice.accessToken });
    assert.equal(notJson.status, 400);
    assert.equal(notJson.body.errcode, 'M_NOT_JSON');
    const shape = await s.request('GET', syncPath({ filter: { room: { timeline: { limit: -1 } } } }), { token: alice.accessToken });
    assert.equal(shape.status, 400);
    assert.equal(shape.body.errcode, 'M_BAD_JSON');
    const unknown = await s.request('GET', syncPath({ filter: 'doesnotexist' }), { token: alice.accessToken });
    assert.equal(unknown.status, 400);
    assert.equal(unknown.body.errcode, 'M_INVALID_PARAM');
  });

  it('a stored filter id and the same filter inline give the same timeline limit', async () => {
    const roomId = await createRoom(s, alice);
    for (let i = 0; i < 4; i++) await send(s, alice, roomId, `n${i}`);
    const filter = { room: { timeline: { limit: 2 } } };
    const { body } = await upload(alice, filter);
    const stored = await sync(s, alice, { filter: body.filter_id });
    const inline = await sync(s, alice, { filter });
    for (const b of [stored, inline]) {
      assert.equal(b.rooms.join[roomId].timeline.events.length, 2);
      assert.deepEqual(bodies(b.rooms.join[roomId].timeline.events), ['n2', 'n3']);
      assert.equal(b.rooms.join[roomId].timeline.limited, true);
    }
  });

  it('timeline types, not_types, senders and not_senders select events', async () => {
    const roomId = await createRoom(s, alice, { preset: 'public_chat' });
    await join(s, bob, roomId);
    await send(s, alice, roomId, 'from alice');
    await send(s, bob, roomId, 'from bob');
    await send(s, alice, roomId, { foo: 1 }, 'org.example.custom');
    const only = (b: any) => b.rooms.join[roomId].timeline.events;
    const types = await sync(s, alice, { filter: { room: { timeline: { types: ['m.room.mess*'], limit: 20 } } } });
    assert.ok(only(types).every((e: any) => e.type === 'm.room.message'));
    assert.deepEqual(bodies(only(types)), ['from alice', 'from bob']);
    const notTypes = await sync(s, alice, { filter: { room: { timeline: { not_types: ['m.room.message', 'm.room.member'], limit: 20 } } } });
    assert.ok(only(notTypes).some((e: any) => e.type === 'org.example.custom'));
    assert.ok(!only(notTypes).some((e: any) => e.type === 'm.room.message' || e.type === 'm.room.member'));
    const senders = await sync(s, alice, { filter: { room: { timeline: { senders: [bob.userId], limit: 20 } } } });
    assert.ok(only(senders).length > 0);
    assert.ok(only(senders).every((e: any) => e.sender === bob.userId));
    const notSenders = await sync(s, alice, { filter: { room: { timeline: { not_senders: [alice.userId], limit: 20 } } } });
    assert.ok(only(notSenders).every((e: any) => e.sender !== alice.userId));
  });

  it('lazy_load_members sends only the member events of timeline senders (and the user)', async () => {
    // A named room needs no heroes, whose member events lazy loading would have to include.
    const roomId = await createRoom(s, alice, { preset: 'public_chat', name: 'Lazy room' });
    await join(s, bob, roomId);
    await join(s, carol, roomId);
    await send(s, bob, roomId, 'bob speaks');
    const lazy = { room: { timeline: { limit: 1 }, state: { lazy_load_members: true } } };
    const body = await sync(s, alice, { filter: lazy });
    const room = body.rooms.join[roomId];
    assert.deepEqual(bodies(room.timeline.events), ['bob speaks']);
    const members = room.state.events.filter((e: any) => e.type === 'm.room.member').map((e: any) => e.state_key);
    assert.ok(members.includes(bob.userId), 'the sender');
    assert.ok(members.includes(alice.userId), 'the syncing user');
    assert.ok(!members.includes(carol.userId), 'not a silent member');
    assert.ok(findState(room.state.events, 'm.room.create'), 'other state still comes');

    const full = await sync(s, alice, { filter: { room: { timeline: { limit: 1 } } } });
    assert.ok(findState(full.rooms.join[roomId].state.events, 'm.room.member', carol.userId), 'without lazy loading every member comes');

    // Incremental: carol's first message brings her member event.
    await send(s, carol, roomId, 'carol speaks');
    const next = await sync(s, alice, { since: body.next_batch, filter: lazy });
    const nroom = next.rooms.join[roomId];
    assert.deepEqual(bodies(nroom.timeline.events), ['carol speaks']);
    assert.ok(findState(nroom.state.events, 'm.room.member', carol.userId), 'the new sender is lazy-loaded');
    await send(s, carol, roomId, 'carol again');
    const third = await sync(s, alice, { since: next.next_batch, filter: lazy });
    assert.equal(findState(third.rooms.join[roomId].state.events, 'm.room.member', carol.userId), undefined, 'a redundant member event is not repeated');
  });

  it('lazy loading includes the member events of the heroes of an unnamed room', async () => {
    const roomId = await createRoom(s, alice, { preset: 'public_chat' });
    await join(s, bob, roomId);
    await join(s, carol, roomId);
    await send(s, alice, roomId, 'alice speaks');
    const body = await sync(s, alice, { filter: { room: { timeline: { limit: 1 }, state: { lazy_load_members: true } } } });
    const room = body.rooms.join[roomId];
    for (const hero of room.summary['m.heroes']) assert.ok(findState(room.state.events, 'm.room.member', hero), hero);
  });

  it('event_fields keeps only the listed fields', async () => {
    const roomId = await createRoom(s, alice);
    await send(s, alice, roomId, 'fields');
    const body = await sync(s, alice, { filter: { event_fields: ['type', 'content.body'], room: { timeline: { limit: 1 } } } });
    const [ev] = body.rooms.join[roomId].timeline.events;
    assert.deepEqual(ev, { type: 'm.room.message', content: { body: 'fields' } });
  });

  it('account_data and room.account_data filters select types', async () => {
    const roomId = await createRoom(s, alice);
    for (const type of ['org.example.a', 'org.example.b']) {
      assert.equal((await s.request('PUT', `${C}/user/${encodeURIComponent(alice.userId)}/account_data/${type}`, { token: alice.accessToken, body: { v: type } })).status, 200);
      assert.equal(
        (await s.request('PUT', `${C}/user/${encodeURIComponent(alice.userId)}/rooms/${encodeURIComponent(roomId)}/account_data/${type}`, { token: alice.accessToken, body: { v: type } })).status,
        200,
      );
    }
    const body = await sync(s, alice, { filter: { account_data: { types: ['org.example.a'] }, room: { account_data: { not_types: ['org.example.a'] } } } });
    const global = body.account_data.events.map((e: any) => e.type);
    assert.ok(global.includes('org.example.a'));
    assert.ok(!global.includes('org.example.b'));
    const room = body.rooms.join[roomId].account_data.events.map((e: any) => e.type);
    assert.deepEqual(room, ['org.example.b']);
  });
});
