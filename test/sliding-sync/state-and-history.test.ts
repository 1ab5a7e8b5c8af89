/**
 * Two parts of MSC4186 room results: a room's `prev_batch` is a `/messages` token that pages
 * back from just before the timeline it came with (initial and incremental), and state that
 * leaves the room's current state (a state reset by state resolution) is sent in
 * `required_state` as a `StateStub`: `type` and `state_key`, no `content`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { stateKey } from '../../src/core/types.js';
import { FakeRemote, receive, roomHead, statusOf } from '../helpers/remote-server.js';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { C, createRoom, send } from '../sync/util.js';
import { SlidingClient } from './client.js';

describe('sliding sync: prev_batch and deleted state', { timeout: 120_000 }, () => {
  let s: TestServer;
  let alice: TestUser;

  before(async () => {
    s = await startTestServer();
    alice = await s.registerUser('sh_alice');
  });
  after(async () => {
    await s.stop();
  });

  /** Bodies of the messages of one `/messages` page, in the order served. */
  async function pageBack(roomId: string, from: string, limit: number): Promise<string[]> {
    const res = await s.request('GET', `${C}/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=${limit}&from=${encodeURIComponent(from)}`, { token: alice.accessToken });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.chunk.map((e: any) => e.content?.body ?? e.type);
  }

  it("a room's prev_batch pages back from just before its timeline", async () => {
    const roomId = await createRoom(s, alice, {});
    for (let i = 1; i <= 10; i++) await send(s, alice, roomId, `m${i}`);
    const c = new SlidingClient(s, alice, 'history');
    const sub = { room_subscriptions: { [roomId]: { timeline_limit: 3, required_state: [] } } };
    const first = (await c.sync(sub)).rooms[roomId];
    assert.deepEqual(first.timeline.map((e: any) => e.content.body), ['m8', 'm9', 'm10']);
    assert.deepEqual(await pageBack(roomId, first.prev_batch, 3), ['m7', 'm6', 'm5']);

    // Incremental, with more new events than the timeline holds: the gap is paged from prev_batch.
    for (let i = 1; i <= 6; i++) await send(s, alice, roomId, `n${i}`);
    const next = (await c.sync(sub)).rooms[roomId];
    assert.deepEqual(next.timeline.map((e: any) => e.content.body), ['n4', 'n5', 'n6']);
    assert.equal(next.limited, true);
    assert.deepEqual(await pageBack(roomId, next.prev_batch, 4), ['n3', 'n2', 'n1', 'm10']);
  });

  it('a pos is a /messages token: it stands for the events position its response covered (MSC4186)', async () => {
    const roomId = await createRoom(s, alice, { preset: 'public_chat' });
    for (let i = 1; i <= 3; i++) await send(s, alice, roomId, `p${i}`);
    const c = new SlidingClient(s, alice, 'pos-token');
    await c.sync({ room_subscriptions: { [roomId]: { timeline_limit: 1, required_state: [] } } });
    const pos = c.pos!;
    await send(s, alice, roomId, 'p4');
    await send(s, alice, roomId, 'p5');
    assert.deepEqual(await pageBack(roomId, pos, 2), ['p3', 'p2'], 'from: back from where the response stood');
    const since = await s.request('GET', `${C}/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=10&to=${encodeURIComponent(pos)}`, { token: alice.accessToken });
    assert.deepEqual(since.body.chunk.map((e: any) => e.content.body), ['p5', 'p4'], 'to: what came after it');

    const bob = await s.registerUser('sh_bob');
    assert.equal((await s.request('POST', `${C}/rooms/${encodeURIComponent(roomId)}/join`, { token: bob.accessToken, body: {} })).status, 200);
    const theirs = await s.request('GET', `${C}/rooms/${encodeURIComponent(roomId)}/messages?dir=b&from=${encodeURIComponent(pos)}`, { token: bob.accessToken });
    assert.equal(theirs.status, 400, "another user's pos is no token of theirs");
    assert.equal(theirs.body.errcode, 'M_INVALID_PARAM');
  });

  it('state removed by a state reset comes as a stub without content', async () => {
    // Carol (remote) closes the room on a branch that never saw dave's join: resolution drops dave's membership.
    const remote = new FakeRemote('stub-remote.test').trustedBy(s);
    const carol = remote.user('carol');
    const roomId = await createRoom(s, alice, { preset: 'public_chat', room_version: '10', power_level_content_override: { users: { [alice.userId]: 100, [carol]: 100 } } });
    const h0 = await roomHead(s, roomId);
    const joinCarol = remote.event(roomId, '10', {
      sender: carol, type: 'm.room.member', stateKey: carol, content: { membership: 'join' },
      prev: h0.extremities, authFrom: h0.state, depth: h0.depth + 1,
    });
    assert.equal(statusOf(await receive(s, roomId, { pdus: [joinCarol.pdu] }), joinCarol.eventId), 'accepted');
    const beforeDave = await roomHead(s, roomId);
    const dave = await s.registerUser('sh_dave');
    assert.equal((await s.request('POST', `${C}/rooms/${encodeURIComponent(roomId)}/join`, { token: dave.accessToken, body: {} })).status, 200);
    await send(s, dave, roomId, 'hello from dave');

    const members = { include: [{ type: 'm.room.member' }, { type: 'm.room.join_rules', state_key: '' }] };
    const full = new SlidingClient(s, alice, 'members');
    const lazy = new SlidingClient(s, alice, 'lazy');
    const fullReq = { room_subscriptions: { [roomId]: { timeline_limit: 5, required_state: members } } };
    const lazyReq = { room_subscriptions: { [roomId]: { timeline_limit: 5, required_state: { include: [{ type: 'm.room.join_rules', state_key: '' }], lazy_members: true } } } };
    const other = new SlidingClient(s, alice, 'no-members');
    const otherReq = { room_subscriptions: { [roomId]: { timeline_limit: 1, required_state: { include: [{ type: 'm.room.name' }] } } } };
    await full.sync(fullReq);
    await lazy.sync(lazyReq);
    await other.sync(otherReq);
    const daveMember = (c: SlidingClient) => c.rooms.get(roomId)!.required_state.find((e) => e.type === 'm.room.member' && e.state_key === dave.userId);
    assert.equal(daveMember(full)?.content.membership, 'join');
    assert.equal(daveMember(lazy)?.content.membership, 'join', 'lazily sent: dave spoke in the timeline');

    const jr = remote.event(roomId, '10', {
      sender: carol, type: 'm.room.join_rules', stateKey: '', content: { join_rule: 'invite' },
      prev: [joinCarol.eventId], authFrom: beforeDave.state, depth: joinCarol.pdu.depth + 1,
    });
    assert.equal(statusOf(await receive(s, roomId, { pdus: [jr.pdu] }), jr.eventId), 'accepted');
    assert.equal((await roomHead(s, roomId)).state.get(stateKey('m.room.member', dave.userId)), undefined, 'the reset removed dave');

    for (const [c, req] of [[full, fullReq], [lazy, lazyReq]] as const) {
      const r = (await c.sync(req)).rooms[roomId];
      assert.ok(r, 'the room has news');
      const stub = r.required_state.find((e: any) => e.type === 'm.room.member' && e.state_key === dave.userId);
      assert.deepEqual(stub, { type: 'm.room.member', state_key: dave.userId }, `a stub in ${c.connId}: ${JSON.stringify(r.required_state)}`);
      assert.equal(daveMember(c), undefined, 'the client drops the removed state');
      if (c === full) assert.equal(r.required_state.find((e: any) => e.type === 'm.room.join_rules')?.event_id, jr.eventId);
    }

    // A config that does not ask for members gets no stub.
    const r = (await other.sync(otherReq)).rooms[roomId];
    assert.ok(r, 'the room has news');
    assert.ok(!(r.required_state ?? []).some((e: any) => e.content === undefined), JSON.stringify(r.required_state));
  });
});
