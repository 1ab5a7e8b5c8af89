import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ClientEvent } from '../../src/core/types.js';
import type { TimelineChunk, TimelineQuery } from '../../src/rooms/service.js';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { createRoom, expectStatus, join, putState, send, sendText, C, e } from './room-helpers.js';

/** `unsigned.age` depends on when an event is formatted: everything else must be equal. */
function withoutAge<T>(v: T): T {
  return JSON.parse(JSON.stringify(v, (k, x) => (k === 'age' ? undefined : x))) as T;
}

function byId(events: ClientEvent[]): ClientEvent[] {
  return withoutAge([...events].sort((a, b) => (a.event_id < b.event_id ? -1 : 1)));
}

describe('batched room reads for /sync (getTimelines, getStatesAtPositions) answer as the per-room reads do', () => {
  let s: TestServer;
  let alice: TestUser;
  let bob: TestUser;
  const rooms: Record<string, string> = {};
  /** Stream positions to read state and timelines at. */
  const marks: number[] = [];

  const rs = () => s.hs.ctx.services.rooms;
  const head = async () => {
    const res = await s.request('GET', `${C}/sync?timeout=0`, { token: bob.accessToken });
    expectStatus(res, 200);
    return Number(/^s(\d+)_/.exec(res.body.next_batch as string)![1]);
  };

  before(async () => {
    s = await startTestServer();
    alice = await s.registerUser('batch_alice');
    bob = await s.registerUser('batch_bob');
    // Busy: more events than a timeline limit, a name change and a redaction inside the window.
    rooms.busy = await createRoom(s, alice, { preset: 'public_chat', name: 'busy' });
    expectStatus(await join(s, bob, rooms.busy), 200);
    marks.push(await head());
    for (let i = 0; i < 8; i++) await sendText(s, alice, rooms.busy, `busy ${i}`);
    expectStatus(await putState(s, alice, rooms.busy, 'm.room.name', '', { name: 'busier' }), 200);
    const doomed = await sendText(s, bob, rooms.busy, 'to be redacted');
    expectStatus(await s.request('PUT', `${C}/rooms/${e(rooms.busy)}/redact/${e(doomed)}/r1`, { token: bob.accessToken, body: { reason: 'oops' } }), 200);
    marks.push(await head());
    // Joined-only history: bob must not see what came before his join.
    rooms.joinedOnly = await createRoom(s, alice, { preset: 'public_chat' });
    expectStatus(await putState(s, alice, rooms.joinedOnly, 'm.room.history_visibility', '', { history_visibility: 'joined' }), 200);
    await sendText(s, alice, rooms.joinedOnly, 'before bob');
    expectStatus(await join(s, bob, rooms.joinedOnly), 200);
    await sendText(s, alice, rooms.joinedOnly, 'after bob');
    // Quiet: a couple of events, notices and messages from both.
    rooms.quiet = await createRoom(s, bob, { preset: 'public_chat' });
    await send(s, bob, rooms.quiet, { msgtype: 'm.notice', body: 'notice' });
    marks.push(await head());
    expectStatus(await join(s, alice, rooms.quiet), 200);
    await sendText(s, alice, rooms.quiet, 'hi bob');
    marks.push(await head());
  });
  after(async () => {
    await s.stop();
  });

  const queries = (fromPos: number, toPos: number, limit: number, filter?: TimelineQuery['filter']): TimelineQuery[] =>
    Object.values(rooms).map((roomId) => ({ roomId, fromPos, toPos, limit, filter, viewer: { userId: bob.userId, deviceId: bob.deviceId } }));

  async function compareTimelines(qs: TimelineQuery[]): Promise<Map<string, TimelineChunk>> {
    const batch = await rs().getTimelines(qs);
    assert.equal(batch.size, qs.length);
    for (const q of qs) {
      const one = await rs().getTimeline(q);
      assert.deepEqual(withoutAge(batch.get(q.roomId)), withoutAge(one), `timeline of ${q.roomId} from ${q.fromPos} to ${q.toPos}`);
    }
    return batch;
  }

  it('timelines: limited windows, prev_batch positions, redactions and prev_content match getTimeline', async () => {
    const now = await head();
    const batch = await compareTimelines(queries(0, now, 5));
    const busy = batch.get(rooms.busy)!;
    assert.equal(busy.limited, true);
    assert.equal(busy.events.length, 5);
    assert.ok(busy.events.some((ev) => ev.type === 'm.room.name' && (ev.unsigned as any)?.prev_content?.name === 'busy'));
    assert.ok(busy.events.some((ev) => (ev.unsigned as any)?.redacted_because !== undefined));
    await compareTimelines(queries(marks[0]!, marks[1]!, 20));
    await compareTimelines(queries(marks[2]!, now, 3));
  });

  it('timelines: history visibility "joined" hides what came before the viewer joined (spec: history visibility)', async () => {
    const batch = await compareTimelines(queries(0, await head(), 50));
    const bodies = batch.get(rooms.joinedOnly)!.events.map((ev) => ev.content.body).filter((b) => b !== undefined);
    assert.deepEqual(bodies, ['after bob']);
  });

  it('timelines: type and sender filters (with globs) and an empty range', async () => {
    const now = await head();
    const texts = await compareTimelines(queries(0, now, 50, { types: ['m.room.mess*'], not_senders: [alice.userId] }));
    for (const c of texts.values()) for (const ev of c.events) {
      assert.equal(ev.type, 'm.room.message');
      assert.equal(ev.sender, bob.userId);
    }
    assert.ok(texts.get(rooms.quiet)!.events.length > 0);
    const none = await compareTimelines(queries(0, now, 50, { types: [] }));
    for (const c of none.values()) assert.deepEqual(c, { events: [], limited: false, prevBatchPos: now });
    const empty = await compareTimelines(queries(now, now, 10));
    for (const c of empty.values()) assert.equal(c.events.length, 0);
    const zero = await compareTimelines(queries(0, now, 0));
    for (const c of zero.values()) assert.equal(c.limited, true);
  });

  it('state at positions matches getStateAtPosition, before a room existed included', async () => {
    const now = await head();
    for (const pos of [0, ...marks, now]) {
      const items = Object.values(rooms).map((roomId) => ({ roomId, pos }));
      const batch = await rs().getStatesAtPositions(items);
      assert.equal(batch.size, items.length);
      for (const it of items) {
        assert.deepEqual(byId(batch.get(it.roomId)!), byId(await rs().getStateAtPosition(it.roomId, it.pos)), `state of ${it.roomId} at ${pos}`);
      }
    }
    const busy = (await rs().getStatesAtPositions([{ roomId: rooms.busy, pos: now }])).get(rooms.busy)!;
    assert.equal(busy.find((ev) => ev.type === 'm.room.name')?.content.name, 'busier');
    assert.equal(busy.filter((ev) => ev.type === 'm.room.member').length, 2);
  });

  it('for /sync, the same events without room_id (ClientEventWithoutRoomID), nested ones keeping theirs', async () => {
    const now = await head();
    const strip = (events: ClientEvent[]) => events.map(({ room_id: _r, ...rest }) => rest);
    const qs = queries(0, now, 5);
    const [withIds, without] = await Promise.all([rs().getTimelines(qs), rs().getTimelines(qs, { withoutRoomId: true })]);
    for (const q of qs) {
      const a = withIds.get(q.roomId)!;
      const b = without.get(q.roomId)!;
      assert.ok(b.events.length > 0);
      for (const ev of b.events) assert.equal(ev.room_id, undefined);
      assert.deepEqual(withoutAge({ ...b, events: b.events }), withoutAge({ ...a, events: strip(a.events) }), `timeline of ${q.roomId}`);
    }
    const redacted = without.get(rooms.busy)!.events.find((ev) => (ev.unsigned as any)?.redacted_because !== undefined);
    assert.equal((redacted!.unsigned as any).redacted_because.room_id, rooms.busy, 'the redaction inside keeps its room');
    const items = Object.values(rooms).map((roomId) => ({ roomId, pos: now }));
    const [states, statesWithout] = await Promise.all([rs().getStatesAtPositions(items), rs().getStatesAtPositions(items, { withoutRoomId: true })]);
    const changes = [marks[0]!, 0].map((fromPos) => Object.values(rooms).map((roomId) => ({ roomId, fromPos, toPos: now })));
    for (const it of items) {
      assert.ok(statesWithout.get(it.roomId)!.length > 0);
      assert.deepEqual(byId(statesWithout.get(it.roomId)!), byId(strip(states.get(it.roomId)!) as ClientEvent[]), `state of ${it.roomId}`);
    }
    for (const c of changes) {
      const [a, b] = await Promise.all([rs().getStateChanges(c), rs().getStateChanges(c, { withoutRoomId: true })]);
      for (const { roomId } of c) assert.deepEqual(byId(b.get(roomId)!), byId(strip(a.get(roomId)!) as ClientEvent[]), `state changes of ${roomId}`);
    }
  });

  it('after a restart (nothing cached) the batches load state groups, events and histories themselves', async () => {
    await s.restart();
    const now = await head();
    const items = Object.values(rooms).map((roomId, i) => ({ roomId, pos: i === 0 ? marks[1]! : now }));
    const states = await rs().getStatesAtPositions(items);
    const timelines = await rs().getTimelines(queries(0, now, 4));
    for (const it of items) {
      assert.deepEqual(byId(states.get(it.roomId)!), byId(await rs().getStateAtPosition(it.roomId, it.pos)));
    }
    for (const q of queries(0, now, 4)) assert.deepEqual(withoutAge(timelines.get(q.roomId)), withoutAge(await rs().getTimeline(q)));
  });
});
