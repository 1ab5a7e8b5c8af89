import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { startTestServer, TEST_DB, type TestServer, type TestUser } from '../helpers/server.js';
import { bodies, C, createRoom, findState, join, median, restart, send, sleep, sync, syncPath } from './util.js';

describe('GET /sync', () => {
  let s: TestServer;
  let alice: TestUser;
  let bob: TestUser;

  before(async () => {
    s = await startTestServer();
    alice = await s.registerUser('sync_alice');
    bob = await s.registerUser('sync_bob');
  });
  after(async () => {
    await s.stop();
  });

  it('initial sync lists a joined room with its state and timeline (spec: Syncing)', async () => {
    const roomId = await createRoom(s, alice, { name: 'Initial room' });
    await send(s, alice, roomId, 'hello');
    const body = await sync(s, alice);
    const room = body.rooms.join[roomId];
    assert.ok(room, 'room is under rooms.join');
    const all = [...room.state.events, ...room.timeline.events];
    assert.ok(findState(all, 'm.room.create'), 'create event in state or timeline');
    assert.equal(findState(all, 'm.room.member', alice.userId)?.content.membership, 'join');
    assert.equal(findState(all, 'm.room.name')?.content.name, 'Initial room');
    assert.deepEqual(bodies(room.timeline.events).slice(-1), ['hello']);
    assert.equal(typeof room.timeline.limited, 'boolean');
    assert.equal(typeof room.timeline.prev_batch, 'string');
    for (const e of all) assert.equal(e.room_id, undefined, 'sync events carry no room_id');
    assert.equal(room.summary['m.joined_member_count'], 1);
    assert.equal(room.summary['m.invited_member_count'], 0);
    assert.deepEqual(Object.keys(room.unread_notifications).sort(), ['highlight_count', 'notification_count']);
    assert.deepEqual(body.rooms.invite, {});
    assert.ok(Array.isArray(body.device_unused_fallback_key_types), 'device_unused_fallback_key_types is required');
  });

  it('state is the state before the timeline start when the timeline is limited', async () => {
    const roomId = await createRoom(s, alice, { name: 'Limited room' });
    for (let i = 0; i < 3; i++) await send(s, alice, roomId, `m${i}`);
    const body = await sync(s, alice, { filter: { room: { timeline: { limit: 2 } } } });
    const room = body.rooms.join[roomId];
    assert.deepEqual(bodies(room.timeline.events), ['m1', 'm2']);
    assert.equal(room.timeline.limited, true);
    assert.ok(findState(room.state.events, 'm.room.create'));
    assert.equal(findState(room.state.events, 'm.room.name')?.content.name, 'Limited room');
    assert.equal(findState(room.state.events, 'm.room.member', alice.userId)?.content.membership, 'join');
    const timelineIds = new Set(room.timeline.events.map((e: any) => e.event_id));
    for (const e of room.state.events) assert.ok(!timelineIds.has(e.event_id), 'no event is both state and timeline');
  });

  it('incremental sync returns only what happened since the token', async () => {
    const roomId = await createRoom(s, alice);
    await send(s, alice, roomId, 'first');
    const first = await sync(s, alice);
    const second = await sync(s, alice, { since: first.next_batch });
    assert.deepEqual(second.rooms.join, {}, 'nothing new: no joined room listed');
    const eventId = await send(s, alice, roomId, 'second');
    const third = await sync(s, alice, { since: second.next_batch });
    const room = third.rooms.join[roomId];
    assert.deepEqual(room.timeline.events.map((e: any) => e.event_id), [eventId]);
    assert.equal(room.timeline.limited, false);
    assert.deepEqual(room.state.events, []);
    assert.deepEqual(Object.keys(third.rooms.join), [roomId]);
    assert.notEqual(third.next_batch, second.next_batch);
  });

  it('long-poll returns as soon as another user sends, well before the timeout', async (t) => {
    const roomId = await createRoom(s, alice, { preset: 'public_chat' });
    await join(s, bob, roomId);
    let token = (await sync(s, bob)).next_batch;
    // The pipeline announces an event on the bus right after its transaction commits.
    let committedAt = 0;
    const off = s.hs.ctx.bus.onAdvance((m) => {
      if (m.stream === 'events' && m.roomId === roomId) committedAt = performance.now();
    });
    // When the server finished writing each long-poll answer.
    let answeredAt = 0;
    const onRequest = (req: IncomingMessage, res: ServerResponse) => {
      if (req.url?.includes('/sync?') && req.url.includes('timeout=20000')) res.once('finish', () => (answeredAt = performance.now()));
    };
    s.hs.app.server.on('request', onRequest);
    const latencies: number[] = [];
    const received: number[] = [];
    try {
      for (let i = 0; i < 15; i++) {
        const started = Date.now();
        const poll = s.request('GET', syncPath({ since: token, timeout: 20000 }), { token: bob.accessToken }).then((r) => ({ r, at: performance.now() }));
        await sleep(30);
        await send(s, alice, roomId, `wake ${i}`);
        const { r, at } = await poll;
        assert.equal(r.status, 200);
        assert.ok(Date.now() - started < 5000, 'returned long before the 20 s timeout');
        assert.deepEqual(bodies(r.body.rooms.join[roomId].timeline.events), [`wake ${i}`]);
        latencies.push(answeredAt - committedAt);
        received.push(at - committedAt);
        token = r.body.next_batch;
      }
    } finally {
      off();
      s.hs.app.server.off('request', onRequest);
    }
    t.diagnostic(
      `${TEST_DB}: commit -> long-poll answered by the server: p50 ${median(latencies).toFixed(2)} ms, max ${Math.max(...latencies).toFixed(2)} ms; ` +
        `-> received by the (in-process) client: p50 ${median(received).toFixed(2)} ms`,
    );
    assert.ok(median(latencies) < 100, `p50 wake-up ${median(latencies)} ms`);
  });

  it('a long-poll abandoned by its client frees its waiter', async () => {
    const token = (await sync(s, alice)).next_batch;
    const notifier = s.hs.ctx.services.sync.notifier;
    const before = notifier.waiting;
    const abort = new AbortController();
    const poll = fetch(s.url + syncPath({ since: token, timeout: 20000 }), {
      headers: { authorization: `Bearer ${alice.accessToken}` },
      signal: abort.signal,
    }).catch(() => null);
    for (let i = 0; i < 100 && notifier.waiting === before; i++) await sleep(5);
    assert.equal(notifier.waiting, before + 1, 'the long-poll is waiting');
    abort.abort();
    await poll;
    for (let i = 0; i < 100 && notifier.waiting !== before; i++) await sleep(5);
    assert.equal(notifier.waiting, before, 'the waiter is gone');
  });

  it('a long-poll with nothing new waits for the timeout and returns an empty response', async () => {
    const first = await sync(s, alice);
    const started = Date.now();
    const body = await sync(s, alice, { since: first.next_batch, timeout: 300 });
    const took = Date.now() - started;
    assert.ok(took >= 250, `waited ${took} ms`);
    assert.ok(took < 3000, `waited ${took} ms`);
    assert.deepEqual(body.rooms.join, {});
  });

  it('a limited incremental timeline gives a prev_batch usable with /messages (spec: Syncing)', async () => {
    const roomId = await createRoom(s, alice);
    const first = await sync(s, alice);
    for (let i = 0; i < 8; i++) await send(s, alice, roomId, `p${i}`);
    const body = await sync(s, alice, { since: first.next_batch, filter: { room: { timeline: { limit: 3 } } } });
    const room = body.rooms.join[roomId];
    assert.equal(room.timeline.limited, true);
    assert.deepEqual(bodies(room.timeline.events), ['p5', 'p6', 'p7']);
    const res = await s.request(
      'GET',
      `${C}/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=3&from=${encodeURIComponent(room.timeline.prev_batch)}`,
      { token: alice.accessToken },
    );
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(bodies(res.body.chunk), ['p4', 'p3', 'p2']);
    // The gap can be closed with from=since, to=prev_batch.
    const gap = await s.request(
      'GET',
      `${C}/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=50&from=${encodeURIComponent(room.timeline.prev_batch)}&to=${encodeURIComponent(first.next_batch)}`,
      { token: alice.accessToken },
    );
    assert.equal(gap.status, 200, JSON.stringify(gap.body));
    assert.deepEqual(bodies(gap.body.chunk), ['p4', 'p3', 'p2', 'p1', 'p0']);
  });

  it('a limited incremental sync carries the state changes of the gap', async () => {
    const roomId = await createRoom(s, alice, { name: 'before' });
    const first = await sync(s, alice);
    const res = await s.request('PUT', `${C}/rooms/${encodeURIComponent(roomId)}/state/m.room.name/`, {
      token: alice.accessToken,
      body: { name: 'after' },
    });
    assert.equal(res.status, 200);
    for (let i = 0; i < 3; i++) await send(s, alice, roomId, `g${i}`);
    const body = await sync(s, alice, { since: first.next_batch, filter: { room: { timeline: { limit: 2 } } } });
    const room = body.rooms.join[roomId];
    assert.equal(room.timeline.limited, true);
    assert.equal(findState(room.state.events, 'm.room.name')?.content.name, 'after');
    assert.equal(findState(room.state.events, 'm.room.create'), undefined, 'only the delta, not the whole state');
  });

  it('full_state=true returns the whole state in an incremental sync', async () => {
    const roomId = await createRoom(s, alice);
    const first = await sync(s, alice);
    await send(s, alice, roomId, 'x');
    const body = await sync(s, alice, { since: first.next_batch, full_state: true });
    const room = body.rooms.join[roomId];
    assert.ok(findState(room.state.events, 'm.room.create'));
    assert.deepEqual(bodies(room.timeline.events), ['x']);
  });

  it('use_state_after=true answers state_after (the state at the end of the timeline) and omits state', async () => {
    const roomId = await createRoom(s, alice, { name: 'one' });
    const first = await sync(s, alice, { use_state_after: true });
    const room0 = first.rooms.join[roomId];
    assert.equal(room0.state, undefined);
    assert.equal(findState(room0.state_after.events, 'm.room.name')?.content.name, 'one');
    const res = await s.request('PUT', `${C}/rooms/${encodeURIComponent(roomId)}/state/m.room.name/`, {
      token: alice.accessToken,
      body: { name: 'two' },
    });
    assert.equal(res.status, 200);
    const next = await sync(s, alice, { since: first.next_batch, use_state_after: true });
    const room = next.rooms.join[roomId];
    assert.equal(room.state, undefined);
    assert.equal(findState(room.state_after.events, 'm.room.name')?.content.name, 'two');
    assert.equal(findState(room.state_after.events, 'm.room.create'), undefined);
  });

  it('an invalid since token is 400 M_INVALID_PARAM, never a 500', async () => {
    for (const since of ['garbage', 's1_2_3', 's-1_0_0_0_0_0_0', 'sa_b_c_d_e_f_g', 's1_1_1_1_1_1_1_1']) {
      const res = await s.request('GET', syncPath({ since }), { token: alice.accessToken });
      assert.equal(res.status, 400, since);
      assert.equal(res.body.errcode, 'M_INVALID_PARAM', since);
    }
    const bad = await s.request('GET', `${C}/sync?timeout=soon`, { token: alice.accessToken });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.errcode, 'M_INVALID_PARAM');
    const badPresence = await s.request('GET', `${C}/sync?set_presence=busy`, { token: alice.accessToken });
    assert.equal(badPresence.status, 400);
    assert.equal(badPresence.body.errcode, 'M_INVALID_PARAM');
  });

  it('requires an access token', async () => {
    const res = await s.request('GET', `${C}/sync`);
    assert.equal(res.status, 401);
    assert.equal(res.body.errcode, 'M_MISSING_TOKEN');
  });

  it('a next_batch from before a restart still works: only newer events come back', async () => {
    const roomId = await createRoom(s, alice);
    await send(s, alice, roomId, 'old');
    const before = await sync(s, alice);
    await send(s, alice, roomId, 'new');
    await restart(s);
    const body = await sync(s, alice, { since: before.next_batch });
    assert.deepEqual(bodies(body.rooms.join[roomId].timeline.events), ['new']);
    const again = await sync(s, alice, { since: body.next_batch });
    assert.deepEqual(again.rooms.join, {});
  });
});
