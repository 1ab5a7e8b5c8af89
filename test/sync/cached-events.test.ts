import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { C, createRoom, join, send, setState, sync } from './util.js';

/**
 * /sync formats events from their client-facing parts, kept in a cache of
 * their own (caches.client_events). Here both event caches are far smaller
 * than what one initial sync reads, so they turn over while it runs, and the
 * answer must not change; an event a sync already formatted must be served
 * redacted once it is (spec: "Redactions"; "Syncing").
 */
describe('events formatted for /sync from their cached client-facing parts', () => {
  let s: TestServer;
  let alice: TestUser;
  let bob: TestUser;
  const rooms: string[] = [];
  const filter = { room: { state: { lazy_load_members: true }, timeline: { limit: 10 } } };

  before(async () => {
    s = await startTestServer({ config: { caches: { events: 100, client_events: 100, room_states: 500, access_tokens: 10000 } } });
    alice = await s.registerUser('cached_alice');
    bob = await s.registerUser('cached_bob');
    for (let i = 0; i < 12; i++) {
      const roomId = await createRoom(s, alice, { preset: 'public_chat', name: `cached ${i}`, topic: `topic ${i}` });
      await join(s, bob, roomId);
      for (let m = 0; m < 12; m++) await send(s, m % 2 === 0 ? alice : bob, roomId, `room ${i} message ${m}`);
      rooms.push(roomId);
    }
  });
  after(async () => {
    await s.stop();
  });

  /** The answer without what depends on the moment it was made. */
  function timeless(v: any): any {
    if (Array.isArray(v)) return v.map(timeless);
    if (v === null || typeof v !== 'object') return v;
    const out: any = {};
    for (const [k, x] of Object.entries(v)) if (k !== 'age' && k !== 'last_active_ago') out[k] = timeless(x);
    return out;
  }

  it('an initial sync reading more events than the caches hold answers the same each time, every event whole', async () => {
    const first = await sync(s, bob, { filter });
    for (const [i, roomId] of rooms.entries()) {
      const room = first.rooms.join[roomId];
      const bodies = room.timeline.events.map((ev: any) => ev.content.body);
      assert.deepEqual(bodies, Array.from({ length: 10 }, (_, k) => `room ${i} message ${k + 2}`));
      const name = room.state.events.find((ev: any) => ev.type === 'm.room.name');
      assert.equal(name?.content.name, `cached ${i}`);
      for (const ev of [...room.timeline.events, ...room.state.events]) {
        assert.equal(ev.room_id, undefined, '/sync lists events without their room id');
        assert.equal(typeof ev.sender, 'string');
        assert.equal(typeof ev.origin_server_ts, 'number');
      }
    }
    const second = await sync(s, bob, { filter });
    assert.deepEqual(timeless({ ...second, next_batch: null }), timeless({ ...first, next_batch: null }));
  });

  it('events come back in the order asked for, whichever of them the caches held', async () => {
    // A /sync's state section lists the state's events in the order they are read in: with some
    // of them cached and others read, two syncs of the same state listed them differently.
    const core = s.hs.ctx.services.rooms.core;
    const ids = [...(await core.heads.get(rooms[1]!))!.state.values()];
    assert.ok(ids.length >= 6);
    const half = async (load: (id: string) => Promise<unknown>) => {
      for (const [i, id] of ids.entries()) {
        if (i % 2 === 0) core.events.invalidate(id);
        else await load(id);
      }
    };
    await half((id) => core.events.getViews([id]));
    assert.deepEqual([...(await core.events.getViews(ids)).keys()], ids);
    await half((id) => core.events.get(id));
    assert.deepEqual([...(await core.events.getMany(ids)).keys()], ids);
    // An id the server does not hold is left out, not listed empty.
    const unknown = '$not-an-event-here';
    assert.deepEqual([...(await core.events.getViews([unknown, ...ids])).keys()], ids);
    assert.deepEqual([...(await core.events.getMany([...ids, unknown])).keys()], ids);
  });

  it('a message and state events a sync already formatted are served redacted and replaced afterwards', async () => {
    const roomId = rooms[0]!;
    // One room's sync: its events stay in the caches from one sync to the next.
    const oneRoom = { room: { ...filter.room, rooms: [roomId] } };
    const doomed = await send(s, alice, roomId, 'to be redacted');
    const before = await sync(s, bob, { filter: oneRoom });
    const stateOf = (body: any, type: string) => body.rooms.join[roomId].state.events.find((ev: any) => ev.type === type);
    assert.ok(before.rooms.join[roomId].timeline.events.some((ev: any) => ev.event_id === doomed && ev.content.body === 'to be redacted'));
    const topic = stateOf(before, 'm.room.topic');
    assert.equal(topic.content.topic, 'topic 0');
    const oldName = stateOf(before, 'm.room.name');

    // The message is in the timeline (its row says it is redacted); the topic only in the state section.
    const redact = async (eventId: string, txn: string) => {
      const res = await s.request('PUT', `${C}/rooms/${encodeURIComponent(roomId)}/redact/${encodeURIComponent(eventId)}/${txn}`, { token: alice.accessToken, body: {} });
      assert.equal(res.status, 200);
      return res.body.event_id as string;
    };
    const messageRedaction = await redact(doomed, 'c1');
    const topicRedaction = await redact(topic.event_id, 'c2');
    const renamed = await setState(s, alice, roomId, 'm.room.name', '', { name: 'renamed' });

    const after = await sync(s, bob, { filter: oneRoom });
    const room = after.rooms.join[roomId];
    const pruned = room.timeline.events.find((ev: any) => ev.event_id === doomed);
    assert.ok(pruned, 'the redacted message is still in the timeline');
    assert.deepEqual(pruned.content, {});
    assert.equal(pruned.unsigned.redacted_because.event_id, messageRedaction);
    const prunedTopic = stateOf(after, 'm.room.topic');
    assert.equal(prunedTopic.event_id, topic.event_id);
    assert.deepEqual(prunedTopic.content, {});
    assert.equal(prunedTopic.unsigned.redacted_because.event_id, topicRedaction);
    const name = room.timeline.events.find((ev: any) => ev.event_id === renamed);
    assert.equal(name.content.name, 'renamed');
    assert.equal(name.unsigned.replaces_state, oldName.event_id);
    assert.deepEqual(name.unsigned.prev_content, { name: 'cached 0' });
  });
});
