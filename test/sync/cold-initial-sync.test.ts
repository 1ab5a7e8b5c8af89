import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { countStatements } from '../helpers/count-statements.js';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { bodies, createRoom, join, send, setState, sync } from './util.js';

/** The joined rooms without event ages, their state events in one order (the order of a state section is not meaningful). */
function comparable(rooms: any): unknown {
  const out = JSON.parse(JSON.stringify(rooms, (k, x) => (k === 'age' ? undefined : x)));
  for (const room of Object.values<any>(out.join)) {
    room.state.events.sort((a: any, b: any) => (a.type + '\u0000' + a.state_key < b.type + '\u0000' + b.state_key ? -1 : 1));
  }
  return out;
}

/**
 * The first initial sync after a restart reads every room's state from the
 * database. History visibility needs two entries of the state at each
 * timeline event, and the answer needs the whole state at the start of the
 * timeline, which for most rooms is the same state group: it is read once,
 * whole, and visibility takes its two entries from it (spec: "Syncing",
 * GET /sync; modules/history_visibility).
 */
describe('the first initial sync after a restart', () => {
  let s: TestServer;
  let alice: TestUser;
  let bob: TestUser;
  const rooms: string[] = [];
  let joinedOnly: string;

  before(async () => {
    s = await startTestServer();
    alice = await s.registerUser('cold_alice');
    bob = await s.registerUser('cold_bob');
    for (let i = 0; i < 3; i++) {
      const roomId = await createRoom(s, alice, { preset: 'public_chat', name: `cold ${i}` });
      await join(s, bob, roomId);
      for (let m = 0; m < 4; m++) await send(s, m % 2 === 0 ? alice : bob, roomId, `cold ${i} message ${m}`);
      rooms.push(roomId);
    }
    // Bob joins a joined-only history late: the messages before his join stay hidden from him.
    joinedOnly = await createRoom(s, alice, { preset: 'public_chat', name: 'joined only' });
    await setState(s, alice, joinedOnly, 'm.room.history_visibility', '', { history_visibility: 'joined' });
    await send(s, alice, joinedOnly, 'before bob');
    await join(s, bob, joinedOnly);
    for (let m = 0; m < 3; m++) await send(s, alice, joinedOnly, `after bob ${m}`);
    rooms.push(joinedOnly);
  });
  after(async () => {
    await s.stop();
  });

  it('reads the state groups of its rooms in one statement, and answers as a later sync does', async () => {
    // Timelines of messages only: each room's timeline and the state before it share one state group.
    const filter = { room: { state: { lazy_load_members: true }, timeline: { limit: 3 } } };
    await s.restart();
    const groupReads = countStatements(s.hs.ctx, 'state_group_deltas');
    let first;
    try {
      first = await sync(s, bob, { filter });
    } finally {
      groupReads.remove();
    }
    assert.equal(groupReads.count(), 1, 'one read of state groups for the whole batch');
    for (const roomId of rooms) assert.ok(first.rooms.join[roomId], `${roomId} listed`);
    assert.deepEqual(bodies(first.rooms.join[joinedOnly].timeline.events), ['after bob 0', 'after bob 1', 'after bob 2']);
    assert.deepEqual(bodies(first.rooms.join[rooms[1]!].timeline.events), [1, 2, 3].map((m) => `cold 1 message ${m}`));
    const members = (roomId: string) => first.rooms.join[roomId].state.events.filter((e: any) => e.type === 'm.room.member').map((e: any) => e.state_key).sort();
    assert.deepEqual(members(rooms[0]!), [alice.userId, bob.userId].sort(), 'the senders and the user, lazily loaded');
    const later = await sync(s, bob, { filter });
    assert.deepEqual(comparable(first.rooms), comparable(later.rooms));
  });
});
