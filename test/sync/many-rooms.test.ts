import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { bodies, C, createRoom, findState, join, latestState, leave, send, setState, sync } from './util.js';

/**
 * /sync reads the timelines and states of all rooms in a few batched queries;
 * each room must still get exactly its own events and state.
 */
describe('sync over several rooms at once (spec: Syncing)', () => {
  let s: TestServer;
  let alice: TestUser;
  let bob: TestUser;

  before(async () => {
    s = await startTestServer();
    alice = await s.registerUser('many_alice');
    bob = await s.registerUser('many_bob');
  });
  after(async () => {
    await s.stop();
  });

  it('initial sync: every room has its own timeline, state and summary', async () => {
    const rooms: string[] = [];
    for (let i = 0; i < 6; i++) {
      const roomId = await createRoom(s, alice, { preset: 'public_chat', name: `room ${i}` });
      await join(s, bob, roomId);
      for (let m = 0; m < i * 3; m++) await send(s, alice, roomId, `room ${i} message ${m}`);
      rooms.push(roomId);
    }
    const body = await sync(s, bob, { filter: { room: { timeline: { limit: 5 } } } });
    rooms.forEach((roomId, i) => {
      const room = body.rooms.join[roomId];
      assert.ok(room, `room ${i} listed`);
      const expected = Array.from({ length: i * 3 }, (_, m) => `room ${i} message ${m}`).slice(-5);
      assert.deepEqual(bodies(room.timeline.events), expected);
      assert.equal(room.timeline.limited, true, `room ${i}: its creation events alone exceed the limit`);
      assert.equal(latestState(room, 'm.room.name')?.content.name, `room ${i}`);
      assert.equal(latestState(room, 'm.room.member', bob.userId)?.content.membership, 'join');
      for (const ev of [...room.state.events, ...room.timeline.events]) assert.equal(ev.room_id, undefined);
      assert.equal(room.summary['m.joined_member_count'], 2);
      // No event of another room leaks in.
      for (const ev of room.timeline.events) if (ev.type === 'm.room.message') assert.ok(ev.content.body.startsWith(`room ${i} `));
    });
  });

  it('incremental: limited rooms carry their own gap state; quiet rooms are left out', async () => {
    const a = await createRoom(s, alice, { preset: 'public_chat', name: 'a' });
    const b = await createRoom(s, alice, { preset: 'public_chat', name: 'b' });
    const quiet = await createRoom(s, alice, { preset: 'public_chat', name: 'quiet' });
    for (const r of [a, b, quiet]) await join(s, bob, r);
    const token = (await sync(s, bob)).next_batch;
    await setState(s, alice, a, 'm.room.topic', '', { topic: 'topic of a' });
    await setState(s, alice, b, 'm.room.name', '', { name: 'b renamed' });
    for (let m = 0; m < 4; m++) {
      await send(s, alice, a, `a ${m}`);
      await send(s, alice, b, `b ${m}`);
    }
    const body = await sync(s, bob, { since: token, filter: { room: { timeline: { limit: 2 } } } });
    assert.equal(body.rooms.join[quiet], undefined);
    const ra = body.rooms.join[a];
    const rb = body.rooms.join[b];
    assert.deepEqual(bodies(ra.timeline.events), ['a 2', 'a 3']);
    assert.deepEqual(bodies(rb.timeline.events), ['b 2', 'b 3']);
    assert.equal(ra.timeline.limited, true);
    assert.deepEqual(ra.state.events.map((e: any) => e.type), ['m.room.topic']);
    assert.deepEqual(rb.state.events.map((e: any) => e.type), ['m.room.name']);
    assert.equal(findState(rb.state.events, 'm.room.name').content.name, 'b renamed');
  });

  it('rooms left since the token: each timeline ends at its leave or ban, with its own gap state', async () => {
    const gone = await createRoom(s, alice, { preset: 'public_chat' });
    const banned = await createRoom(s, alice, { preset: 'public_chat' });
    const busy = await createRoom(s, alice, { preset: 'public_chat' });
    for (const r of [gone, banned, busy]) await join(s, bob, r);
    const token = (await sync(s, bob)).next_batch;
    await send(s, alice, gone, 'bye');
    await leave(s, bob, gone);
    const ban = await s.request('POST', `${C}/rooms/${encodeURIComponent(banned)}/ban`, { token: alice.accessToken, body: { user_id: bob.userId } });
    assert.equal(ban.status, 200);
    await setState(s, alice, busy, 'm.room.topic', '', { topic: 'before bob left' });
    for (let m = 0; m < 5; m++) await send(s, alice, busy, `busy ${m}`);
    await leave(s, bob, busy);
    await send(s, alice, busy, 'after bob left');

    for (const useStateAfter of [false, true]) {
      const body = await sync(s, bob, { since: token, filter: { room: { timeline: { limit: 3 } } }, use_state_after: useStateAfter });
      const last = (roomId: string) => body.rooms.leave[roomId].timeline.events.at(-1);
      assert.equal(last(gone).content.membership, 'leave');
      assert.deepEqual(bodies(body.rooms.leave[gone].timeline.events), ['bye']);
      assert.equal(last(banned).content.membership, 'ban');
      assert.equal(last(busy).content.membership, 'leave');
      assert.deepEqual(bodies(body.rooms.leave[busy].timeline.events), ['busy 3', 'busy 4']);
      assert.equal(body.rooms.leave[busy].timeline.limited, true);
      const state = useStateAfter ? body.rooms.leave[busy].state_after.events : body.rooms.leave[busy].state.events;
      assert.equal(findState(state, 'm.room.topic')?.content.topic, 'before bob left');
      if (useStateAfter) assert.equal(findState(state, 'm.room.member', bob.userId)?.content.membership, 'leave');
      for (const r of [gone, banned, busy]) assert.equal(body.rooms.join[r], undefined);
    }

    // An archived view (include_leave) of each left room, from its start up to the leave.
    const archived = await sync(s, bob, { filter: { room: { include_leave: true, timeline: { limit: 50 } } } });
    for (const r of [gone, banned, busy]) {
      const room = archived.rooms.leave[r];
      assert.ok(room, 'listed under rooms.leave');
      assert.ok(!bodies(room.timeline.events).includes('after bob left'));
      assert.ok(findState([...room.state.events, ...room.timeline.events], 'm.room.create'), 'from the start of the room');
    }
  });
});
