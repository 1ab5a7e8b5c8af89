import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestServer, TEST_DB, type TestServer, type TestUser } from '../helpers/server.js';
import { C, createRoom, e, expectStatus, join } from './room-helpers.js';

/**
 * Two Hearth processes on one PostgreSQL database, as cluster nodes are
 * (CLUSTER.md): each caches room heads, so each write may be built on a head
 * the other node has already moved. The write path must notice (the
 * stale-head check under the room lock), rebuild and retry, leaving one
 * linear history. SQLite is one process's embedded database, so there is no
 * second node to run on it.
 */
describe('two nodes writing to one room', { skip: TEST_DB !== 'postgres' ? 'needs PostgreSQL: SQLite has a single writer process' : false }, () => {
  let a: TestServer;
  let b: TestServer;
  let alice: TestUser;
  let bobOnB: TestUser;

  before(async () => {
    a = await startTestServer();
    const url = a.hs.ctx.config.database.url;
    b = await startTestServer({ config: { database: { url, sqlite_synchronous: 'NORMAL', pool_size: 5 } } });
    alice = await a.registerUser('tn_alice');
    bobOnB = await b.registerUser('tn_bob');
  });
  after(async () => {
    await b?.stop();
    await a?.stop();
  });

  test('sends through either node interleave into one linear DAG', async () => {
    const roomId = await createRoom(a, alice, { preset: 'public_chat' });
    expectStatus(await join(b, bobOnB, roomId), 200);
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) {
      const [server, user] = i % 2 === 0 ? [a, alice] : [b, bobOnB];
      const res = await server.request('PUT', `${C}/rooms/${e(roomId)}/send/m.room.message/tn${i}`, { token: user.accessToken, body: { msgtype: 'm.text', body: `n${i}` } });
      expectStatus(res, 200);
      ids.push(res.body.event_id);
    }
    // Both at once, too.
    const both = await Promise.all(
      Array.from({ length: 10 }, (_, i) => {
        const [server, user] = i % 2 === 0 ? [a, alice] : [b, bobOnB];
        return server.request('PUT', `${C}/rooms/${e(roomId)}/send/m.room.message/tnp${i}`, { token: user.accessToken, body: { msgtype: 'm.text', body: `p${i}` } });
      }),
    );
    for (const r of both) expectStatus(r, 200);

    const res = await a.request('GET', `${C}/rooms/${e(roomId)}/messages?dir=b&limit=100`, { token: alice.accessToken });
    expectStatus(res, 200);
    const timeline = [...res.body.chunk].reverse() as { event_id: string; content: { body?: string } }[];
    const bodies = timeline.map((ev) => ev.content.body).filter((x) => x !== undefined);
    assert.deepEqual(bodies.slice(0, 12), Array.from({ length: 12 }, (_, i) => `n${i}`));
    assert.equal(bodies.length, 22);

    // One forward extremity, and every event points at the one before it.
    const rooms = a.hs.ctx.services.rooms;
    rooms.core.heads.invalidate(roomId);
    const head = await rooms.core.heads.get(roomId);
    assert.equal(head!.extremities.length, 1);
    const events = await Promise.all(timeline.map((ev) => rooms.core.events.get(ev.event_id)));
    for (let i = 1; i < events.length; i++) {
      assert.deepEqual(events[i]!.pdu.prev_events, [events[i - 1]!.eventId], `event ${i} extends event ${i - 1}`);
    }
    assert.equal(head!.extremities[0]!.eventId, events.at(-1)!.eventId);
  });
});
