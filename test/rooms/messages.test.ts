import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { C, createRoom, e, expectStatus, join, membershipAction, messages, putState, sendText } from './room-helpers.js';

let server: TestServer;
let alice: TestUser;
let bob: TestUser;
let carol: TestUser;

before(async () => {
  server = await startTestServer();
  alice = await server.registerUser('ms_alice');
  bob = await server.registerUser('ms_bob');
  carol = await server.registerUser('ms_carol');
});
after(async () => {
  await server.stop();
});

const bodies = (chunk: any[]) => chunk.filter((ev) => ev.type === 'm.room.message').map((ev) => ev.content.body);

describe('GET /messages', () => {
  test('paginates backwards and forwards; `end` tokens continue exactly where the page stopped', async () => {
    const roomId = await createRoom(server, alice);
    for (let i = 0; i < 12; i++) await sendText(server, alice, roomId, `m${i}`);

    const p1 = await messages(server, alice, roomId, { dir: 'b', limit: 5 });
    expectStatus(p1, 200);
    assert.deepEqual(bodies(p1.body.chunk), ['m11', 'm10', 'm9', 'm8', 'm7']);
    assert.equal(typeof p1.body.start, 'string');
    const p2 = await messages(server, alice, roomId, { dir: 'b', limit: 5, from: p1.body.end });
    assert.deepEqual(bodies(p2.body.chunk), ['m6', 'm5', 'm4', 'm3', 'm2']);
    assert.equal(p2.body.start, p1.body.end);
    const p3 = await messages(server, alice, roomId, { dir: 'b', limit: 50, from: p2.body.end });
    assert.deepEqual(bodies(p3.body.chunk), ['m1', 'm0']);
    assert.equal(p3.body.chunk[p3.body.chunk.length - 1].type, 'm.room.create');
    assert.equal(p3.body.end, undefined, 'no more events: `end` is omitted');

    // Forwards from the token where the second page ended.
    const f1 = await messages(server, alice, roomId, { dir: 'f', limit: 4, from: p2.body.end });
    assert.deepEqual(bodies(f1.body.chunk), ['m2', 'm3', 'm4', 'm5']);
    const f2 = await messages(server, alice, roomId, { dir: 'f', limit: 4, from: f1.body.end });
    assert.deepEqual(bodies(f2.body.chunk), ['m6', 'm7', 'm8', 'm9']);
    const f3 = await messages(server, alice, roomId, { dir: 'f', limit: 4, from: f2.body.end });
    assert.deepEqual(bodies(f3.body.chunk), ['m10', 'm11']);
    assert.equal(f3.body.end, undefined);

    // `to` bounds the page.
    const bounded = await messages(server, alice, roomId, { dir: 'b', limit: 50, from: p1.body.end, to: p2.body.end });
    assert.deepEqual(bodies(bounded.body.chunk), ['m6', 'm5', 'm4', 'm3', 'm2']);
    // Without `from`, dir=f starts at the beginning of the room.
    const start = await messages(server, alice, roomId, { dir: 'f', limit: 1 });
    assert.equal(start.body.chunk[0].type, 'm.room.create');
  });

  test('accepts sync tokens (s<events>_...) as `from`; rejects garbage tokens with M_INVALID_PARAM', async () => {
    const roomId = await createRoom(server, alice);
    await sendText(server, alice, roomId, 'a');
    const synced = await server.request('GET', `${C}/sync?timeout=0`, { token: alice.accessToken });
    expectStatus(synced, 200);
    await sendText(server, alice, roomId, 'b');
    const res = await messages(server, alice, roomId, { dir: 'b', limit: 1, from: synced.body.next_batch });
    expectStatus(res, 200);
    assert.deepEqual(bodies(res.body.chunk), ['a']);
    expectStatus(await messages(server, alice, roomId, { dir: 'b', from: 'garbage!' }), 400, 'M_INVALID_PARAM');
    expectStatus(await messages(server, alice, roomId, { dir: 'x' }), 400, 'M_INVALID_PARAM');
  });

  test('filters: types, not_types, senders and lazy_load_members state', async () => {
    const roomId = await createRoom(server, alice, { preset: 'public_chat' });
    expectStatus(await join(server, bob, roomId), 200);
    await sendText(server, alice, roomId, 'from alice');
    await sendText(server, bob, roomId, 'from bob');
    await putState(server, alice, roomId, 'org.example.thing', '', { a: 1 });

    const onlyMessages = await messages(server, alice, roomId, { dir: 'b', filter: JSON.stringify({ types: ['m.room.message'] }) });
    assert.ok(onlyMessages.body.chunk.every((ev: any) => ev.type === 'm.room.message'));
    assert.equal(onlyMessages.body.chunk.length, 2);
    const globbed = await messages(server, alice, roomId, { dir: 'b', filter: JSON.stringify({ types: ['org.example.*'] }) });
    assert.deepEqual(globbed.body.chunk.map((ev: any) => ev.type), ['org.example.thing']);
    const notMembers = await messages(server, alice, roomId, { dir: 'b', filter: JSON.stringify({ not_types: ['m.room.member', 'm.room.message'] }) });
    assert.ok(!notMembers.body.chunk.some((ev: any) => ev.type === 'm.room.member' || ev.type === 'm.room.message'));
    const bobOnly = await messages(server, alice, roomId, { dir: 'b', filter: JSON.stringify({ senders: [bob.userId] }) });
    assert.ok(bobOnly.body.chunk.length > 0 && bobOnly.body.chunk.every((ev: any) => ev.sender === bob.userId));

    const lazy = await messages(server, alice, roomId, { dir: 'b', limit: 2, filter: JSON.stringify({ lazy_load_members: true }) });
    expectStatus(lazy, 200);
    const stateKeys = lazy.body.state.map((ev: any) => ev.state_key).sort();
    const senders = [...new Set(lazy.body.chunk.map((ev: any) => ev.sender))].sort();
    assert.deepEqual(stateKeys, senders);
    assert.ok(lazy.body.state.every((ev: any) => ev.type === 'm.room.member'));
    expectStatus(await messages(server, alice, roomId, { dir: 'b', filter: '{bad' }), 400, 'M_INVALID_PARAM');
  });

  test('non-members get 403; unknown rooms 404', async () => {
    const roomId = await createRoom(server, alice);
    expectStatus(await messages(server, carol, roomId, { dir: 'b' }), 403, 'M_FORBIDDEN');
    expectStatus(await messages(server, carol, '!missing:localhost', { dir: 'b' }), 404, 'M_NOT_FOUND');
  });
});

describe('GET /context and /event', () => {
  test('context returns events around the event, tokens that continue, and the state at the last event', async () => {
    const roomId = await createRoom(server, alice, { name: 'ctx' });
    const ids: string[] = [];
    for (let i = 0; i < 9; i++) ids.push(await sendText(server, alice, roomId, `c${i}`));
    const res = await server.request('GET', `${C}/rooms/${e(roomId)}/context/${e(ids[4]!)}?limit=4`, { token: alice.accessToken });
    expectStatus(res, 200);
    assert.equal(res.body.event.event_id, ids[4]);
    assert.deepEqual(bodies(res.body.events_before), ['c3', 'c2']);
    assert.deepEqual(bodies(res.body.events_after), ['c5', 'c6']);
    assert.ok(res.body.state.some((ev: any) => ev.type === 'm.room.name' && ev.content.name === 'ctx'));
    const back = await messages(server, alice, roomId, { dir: 'b', limit: 2, from: res.body.start });
    assert.deepEqual(bodies(back.body.chunk), ['c1', 'c0']);
    const fwd = await messages(server, alice, roomId, { dir: 'f', limit: 2, from: res.body.end });
    assert.deepEqual(bodies(fwd.body.chunk), ['c7', 'c8']);
    const zero = await server.request('GET', `${C}/rooms/${e(roomId)}/context/${e(ids[4]!)}?limit=0`, { token: alice.accessToken });
    assert.equal(zero.body.event.event_id, ids[4]);
    assert.deepEqual(zero.body.events_before, []);
    expectStatus(await server.request('GET', `${C}/rooms/${e(roomId)}/context/${e('$nope')}`, { token: alice.accessToken }), 404, 'M_NOT_FOUND');
  });

  test('/event returns the event; unknown or other rooms\' events are 404', async () => {
    const roomId = await createRoom(server, alice);
    const other = await createRoom(server, alice);
    const id = await sendText(server, alice, roomId, 'single');
    const res = await server.request('GET', `${C}/rooms/${e(roomId)}/event/${e(id)}`, { token: alice.accessToken });
    expectStatus(res, 200);
    assert.equal(res.body.content.body, 'single');
    assert.equal(res.body.room_id, roomId);
    expectStatus(await server.request('GET', `${C}/rooms/${e(other)}/event/${e(id)}`, { token: alice.accessToken }), 404, 'M_NOT_FOUND');
    expectStatus(await server.request('GET', `${C}/rooms/${e(roomId)}/event/${e('$missing')}`, { token: alice.accessToken }), 404, 'M_NOT_FOUND');
  });
});

describe('history visibility', () => {
  async function roomWith(visibility: string): Promise<{ roomId: string; before: string }> {
    const roomId = await createRoom(server, alice, {
      preset: 'public_chat',
      initial_state: [{ type: 'm.room.history_visibility', content: { history_visibility: visibility } }],
    });
    const before = await sendText(server, alice, roomId, `${visibility}: before`);
    return { roomId, before };
  }

  test('shared: a newly joined member sees earlier events', async () => {
    const { roomId, before } = await roomWith('shared');
    expectStatus(await join(server, bob, roomId), 200);
    const res = await messages(server, bob, roomId, { dir: 'b', limit: 50 });
    assert.ok(bodies(res.body.chunk).includes('shared: before'));
    expectStatus(await server.request('GET', `${C}/rooms/${e(roomId)}/event/${e(before)}`, { token: bob.accessToken }), 200);
  });

  test('joined: a newly joined member sees only events from their join on, and their own join', async () => {
    const { roomId, before } = await roomWith('joined');
    expectStatus(await join(server, bob, roomId), 200);
    await sendText(server, alice, roomId, 'joined: after');
    const res = await messages(server, bob, roomId, { dir: 'b', limit: 50 });
    assert.deepEqual(bodies(res.body.chunk), ['joined: after']);
    assert.ok(res.body.chunk.some((ev: any) => ev.type === 'm.room.member' && ev.state_key === bob.userId));
    assert.equal(res.body.chunk.find((ev: any) => ev.type === 'm.room.member' && ev.state_key === bob.userId).unsigned.membership, 'join');
    expectStatus(await server.request('GET', `${C}/rooms/${e(roomId)}/event/${e(before)}`, { token: bob.accessToken }), 404, 'M_NOT_FOUND');
    expectStatus(await server.request('GET', `${C}/rooms/${e(roomId)}/context/${e(before)}`, { token: bob.accessToken }), 404, 'M_NOT_FOUND');
    // Once left, nothing sent afterwards is visible.
    expectStatus(await membershipAction(server, bob, roomId, 'leave'), 200);
    await sendText(server, alice, roomId, 'joined: after leaving');
    const later = await messages(server, bob, roomId, { dir: 'b', limit: 50 });
    assert.ok(!bodies(later.body.chunk).includes('joined: after leaving'));
    assert.ok(bodies(later.body.chunk).includes('joined: after'));
  });

  test('invited: visible from the invite on', async () => {
    const { roomId } = await roomWith('invited');
    expectStatus(await membershipAction(server, alice, roomId, 'invite', { user_id: carol.userId }), 200);
    await sendText(server, alice, roomId, 'invited: after invite');
    expectStatus(await join(server, carol, roomId), 200);
    const res = await messages(server, carol, roomId, { dir: 'b', limit: 50 });
    assert.deepEqual(bodies(res.body.chunk), ['invited: after invite']);
  });

  test('world_readable: non-members may read the history and the state', async () => {
    const { roomId, before } = await roomWith('world_readable');
    const outsider = await server.registerUser('ms_outsider');
    const res = await messages(server, outsider, roomId, { dir: 'b', limit: 50 });
    expectStatus(res, 200);
    assert.ok(bodies(res.body.chunk).includes('world_readable: before'));
    expectStatus(await server.request('GET', `${C}/rooms/${e(roomId)}/event/${e(before)}`, { token: outsider.accessToken }), 200);
    expectStatus(await server.request('GET', `${C}/rooms/${e(roomId)}/state`, { token: outsider.accessToken }), 200);
  });

  test('the setting applies at the time events were sent', async () => {
    const { roomId } = await roomWith('joined');
    expectStatus(await putState(server, alice, roomId, 'm.room.history_visibility', '', { history_visibility: 'shared' }), 200);
    await sendText(server, alice, roomId, 'shared period');
    expectStatus(await join(server, bob, roomId), 200);
    const res = await messages(server, bob, roomId, { dir: 'b', limit: 50 });
    const seen = bodies(res.body.chunk);
    assert.ok(seen.includes('shared period'));
    assert.ok(!seen.includes('joined: before'));
    // The change itself is visible (visibility after it allows it).
    assert.ok(res.body.chunk.some((ev: any) => ev.type === 'm.room.history_visibility' && ev.content.history_visibility === 'shared'));
  });
});
