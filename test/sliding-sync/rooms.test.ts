import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { createRoom, join, send, setState } from '../sync/util.js';
import { SlidingClient } from './client.js';

/** MSC4186 room subscriptions, required_state forms and lazy-loaded members; connection expiry and continuity. */
describe('sliding sync rooms and connections (MSC4186)', { timeout: 120_000 }, () => {
  let s: TestServer;
  let alice: TestUser;
  let bob: TestUser;
  let carol: TestUser;
  let roomId: string;

  before(async () => {
    s = await startTestServer();
    alice = await s.registerUser('ssr_alice');
    bob = await s.registerUser('ssr_bob');
    carol = await s.registerUser('ssr_carol');
    roomId = await createRoom(s, alice, { preset: 'public_chat', name: 'the room', topic: 'chat' });
    await join(s, bob, roomId);
    await join(s, carol, roomId);
    for (let i = 0; i < 5; i++) await send(s, bob, roomId, `bob ${i}`);
  });
  after(async () => {
    await s.stop();
  });

  const members = (state: any[]) => state.filter((e) => e.type === 'm.room.member').map((e) => e.state_key).sort();

  it('a subscription returns the requested state with lazy members', async () => {
    const c = new SlidingClient(s, alice, 'lazy');
    const body = await c.sync({
      room_subscriptions: { [roomId]: { timeline_limit: 3, required_state: [['m.room.name', ''], ['m.room.topic', ''], ['m.room.member', '$LAZY']] } },
    });
    const r = body.rooms[roomId];
    assert.equal(r.initial, true);
    assert.deepEqual(r.timeline.map((e: any) => e.content.body), ['bob 2', 'bob 3', 'bob 4']);
    assert.equal(r.limited, true);
    assert.ok(r.required_state.some((e: any) => e.type === 'm.room.name' && e.content.name === 'the room'));
    assert.ok(r.required_state.some((e: any) => e.type === 'm.room.topic'));
    assert.deepEqual(members(r.required_state), [bob.userId], 'only the senders of the timeline');
    assert.equal(r.joined_count, 3);
    assert.ok(!r.required_state.some((e: any) => e.type === 'm.room.create'), 'state not asked for is left out');

    // Carol speaks: her member event comes with her message; Bob's is not sent again.
    await send(s, carol, roomId, 'carol here');
    await send(s, bob, roomId, 'bob again');
    const next = await c.sync({ room_subscriptions: { [roomId]: { timeline_limit: 3, required_state: [['m.room.name', ''], ['m.room.topic', ''], ['m.room.member', '$LAZY']] } } }, 10_000);
    const n = next.rooms[roomId];
    assert.deepEqual(n.timeline.map((e: any) => e.content.body), ['carol here', 'bob again']);
    assert.deepEqual(members(n.required_state ?? []), [carol.userId]);
  });

  it('$ME, wildcards and the object form of required_state', async () => {
    const c = new SlidingClient(s, bob, 'forms');
    const me = await c.sync({ room_subscriptions: { [roomId]: { timeline_limit: 0, required_state: [['m.room.member', '$ME']] } } });
    assert.deepEqual(members(me.rooms[roomId].required_state), [bob.userId]);

    const all = await new SlidingClient(s, bob, 'all').sync({ room_subscriptions: { [roomId]: { timeline_limit: 0, required_state: [['*', '*']] } } });
    const types = new Set(all.rooms[roomId].required_state.map((e: any) => e.type));
    for (const t of ['m.room.create', 'm.room.power_levels', 'm.room.join_rules', 'm.room.name', 'm.room.member']) assert.ok(types.has(t), t);
    assert.equal(members(all.rooms[roomId].required_state).length, 3);

    const obj = await new SlidingClient(s, bob, 'obj').sync({
      room_subscriptions: { [roomId]: { timeline_limit: 0, required_state: { include: [{}], exclude: [{ type: 'm.room.member' }], lazy_members: false } } },
    });
    const objTypes = obj.rooms[roomId].required_state.map((e: any) => e.type);
    assert.ok(objTypes.includes('m.room.create'));
    assert.ok(!objTypes.includes('m.room.member'));
  });

  it('members by wildcard, a state key for every type, $ME in the object form, and $LAZY beside them', async () => {
    const sub = (required_state: unknown) => ({ room_subscriptions: { [roomId]: { timeline_limit: 2, required_state } } });
    const keys = (state: any[]) => state.map((e) => `${e.type}|${e.state_key}`).sort();

    const allMembers = await new SlidingClient(s, bob, 'members-star').sync(sub([['m.room.member', '*']]));
    assert.deepEqual(keys(allMembers.rooms[roomId].required_state), [alice, bob, carol].map((u) => `m.room.member|${u.userId}`).sort());

    const emptyKey = await new SlidingClient(s, bob, 'empty-key').sync(sub({ include: [{ state_key: '' }] }));
    const types = emptyKey.rooms[roomId].required_state.map((e: any) => e.state_key);
    assert.ok(types.length >= 5 && types.every((k: string) => k === ''), 'every type, only the empty state key');
    assert.ok(emptyKey.rooms[roomId].required_state.some((e: any) => e.type === 'm.room.create'));

    const meObject = await new SlidingClient(s, carol, 'me-object').sync(sub({ include: [{ type: 'm.room.member', state_key: '$ME' }] }));
    assert.deepEqual(members(meObject.rooms[roomId].required_state), [carol.userId]);

    // $ME with $LAZY: the user's own member event, and the senders of the timeline.
    await send(s, alice, roomId, 'alice speaks last');
    const both = await new SlidingClient(s, carol, 'me-lazy').sync(sub([['m.room.member', '$ME'], ['m.room.member', '$LAZY']]));
    const timelineSenders = both.rooms[roomId].timeline.map((e: any) => e.sender);
    assert.deepEqual(members(both.rooms[roomId].required_state), [...new Set([carol.userId, ...timelineSenders])].sort());
  });

  it('connections are per conn_id: side by side, a pos is its own connection\'s, and a new start replaces one', async () => {
    const sub = { room_subscriptions: { [roomId]: { timeline_limit: 1, required_state: [] } } };
    const a = new SlidingClient(s, alice, 'conn-a');
    const b = new SlidingClient(s, alice, 'conn-b');
    assert.equal((await a.sync(sub)).rooms[roomId].initial, true);
    assert.equal((await b.sync(sub)).rooms[roomId].initial, true, 'each connection sends the room in full');
    const crossed = await s.request('POST', `/_matrix/client/unstable/org.matrix.simplified_msc3575/sync?pos=${a.pos}`, { token: alice.accessToken, body: { conn_id: 'conn-b' } });
    assert.equal(crossed.body.errcode, 'M_UNKNOWN_POS', "a pos names its own connection's state only");

    const oldA = a.pos;
    await new SlidingClient(s, alice, 'conn-a').sync(sub);
    a.pos = oldA;
    assert.equal((await a.raw(sub)).body.errcode, 'M_UNKNOWN_POS', 'starting conn-a again ends the old one');
    const stillB = await b.raw(sub);
    assert.equal(stillB.status, 200, 'conn-b is untouched');
  });

  it('subscriptions to rooms the user is not in are ignored', async () => {
    const other = await createRoom(s, carol, {});
    const body = await new SlidingClient(s, bob, 'nosy').sync({ room_subscriptions: { [other]: { timeline_limit: 5, required_state: [['*', '*']] } } });
    assert.deepEqual(body.rooms, {});
  });

  it('a timeline_limit raised later sends the older events as an expanded timeline', async () => {
    const c = new SlidingClient(s, alice, 'expand');
    await c.sync({ room_subscriptions: { [roomId]: { timeline_limit: 1, required_state: [] } } });
    const body = await c.sync({ room_subscriptions: { [roomId]: { timeline_limit: 4, required_state: [] } } });
    const r = body.rooms[roomId];
    assert.equal(r.expanded_timeline, true);
    assert.equal(r.timeline.length, 4);
  });

  it('the connection continues on another server process sharing the database', async () => {
    const c = new SlidingClient(s, alice, 'survives');
    await c.sync({ room_subscriptions: { [roomId]: { timeline_limit: 1, required_state: [] } } });
    await s.restart();
    await send(s, bob, roomId, 'after restart');
    const body = await c.sync({ room_subscriptions: { [roomId]: { timeline_limit: 1, required_state: [] } } }, 10_000);
    assert.equal(c.restarts, 0);
    assert.equal(body.rooms[roomId].initial, undefined, 'the position was known: only the news');
    assert.equal(body.rooms[roomId].timeline[0].content.body, 'after restart');
  });

  it('a retried request with the same pos gets the same news again', async () => {
    const c = new SlidingClient(s, alice, 'retry');
    await c.sync({ room_subscriptions: { [roomId]: { timeline_limit: 5, required_state: [] } } });
    const pos = c.pos;
    await send(s, bob, roomId, 'retried');
    const first = await c.raw({ room_subscriptions: { [roomId]: { timeline_limit: 5, required_state: [] } } }, 5000);
    assert.equal(first.status, 200);
    // The client dropped that answer and asks again from the same position.
    c.pos = pos;
    const again = await c.sync({ room_subscriptions: { [roomId]: { timeline_limit: 5, required_state: [] } } }, 5000);
    assert.deepEqual(again.rooms[roomId].timeline.map((e: any) => e.content.body), ['retried']);
  });

  it('an expired connection answers M_UNKNOWN_POS and the client recovers', async () => {
    // A server whose connections expire after 1.5 s without use.
    const e = await startTestServer({ config: { sliding_sync: { connection_idle_ms: 1500 } } });
    try {
      const dave = await e.registerUser('ssr_dave');
      const own = await createRoom(e, dave, { name: 'the room' });
      const c = new SlidingClient(e, dave, 'expires');
      const sub = { room_subscriptions: { [own]: { timeline_limit: 2, required_state: [['m.room.name', '']] } } };
      await c.sync(sub);
      await c.sync(sub);
      assert.equal(c.restarts, 0, 'in use, the connection lives');
      const stale = c.pos;
      await new Promise((r) => setTimeout(r, 2000));
      const res = await c.raw(sub);
      assert.equal(res.status, 400);
      assert.equal(res.body.errcode, 'M_UNKNOWN_POS');
      c.pos = stale;
      const body = await c.sync(sub);
      assert.equal(c.restarts, 1);
      assert.equal(body.rooms[own].initial, true, 'the new connection sends the room in full');
      assert.equal(c.rooms.get(own)!.name, 'the room');
      // The old position stays unknown.
      const old = await e.request('POST', `/_matrix/client/unstable/org.matrix.simplified_msc3575/sync?pos=${stale}`, { token: dave.accessToken, body: { conn_id: 'expires' } });
      assert.equal(old.body.errcode, 'M_UNKNOWN_POS');
    } finally {
      await e.stop();
    }
  });

  it('another user cannot use a position', async () => {
    const c = new SlidingClient(s, alice, 'mine');
    await c.sync({});
    const res = await s.request('POST', `/_matrix/client/unstable/org.matrix.simplified_msc3575/sync?pos=${c.pos}`, { token: bob.accessToken, body: { conn_id: 'mine' } });
    assert.equal(res.body.errcode, 'M_UNKNOWN_POS');
    await setState(s, alice, roomId, 'm.room.topic', '', { topic: 'still fine' });
  });
});
