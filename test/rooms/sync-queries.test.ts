import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { DbOrTx } from '../../src/db/schema.js';
import { selectEventViewsByIds } from '../../src/rooms/store/events-table.js';
import { selectGroupChains, selectLatestEvents, selectStateGroupsAt } from '../../src/rooms/store/sync-queries.js';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { createRoom, expectStatus, join, putState, sendText } from './room-helpers.js';

/**
 * On SQLite the reads /sync makes for many rooms run without Kysely, their
 * rows read as arrays; inside a transaction (and on PostgreSQL) they go
 * through Kysely. Both must read the same rows.
 */
describe("the sync's many-room reads answer the same with and without Kysely", () => {
  let s: TestServer;
  let alice: TestUser;
  let bob: TestUser;
  const rooms: string[] = [];
  let headPos = 0;

  const db = () => s.hs.ctx.db;
  const viaKysely = <T>(fn: (trx: DbOrTx) => Promise<T>): Promise<T> => db().transaction().execute(fn);
  const sorted = <T>(rows: T[]): T[] => [...rows].sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));

  before(async () => {
    s = await startTestServer();
    alice = await s.registerUser('sq_alice');
    bob = await s.registerUser('sq_bob');
    for (let i = 0; i < 3; i++) {
      const roomId = await createRoom(s, alice, { preset: 'public_chat', name: `sq ${i}` });
      expectStatus(await join(s, bob, roomId), 200);
      for (let m = 0; m < 4 + i; m++) await sendText(s, m % 2 === 0 ? alice : bob, roomId, `sq ${i} message ${m}`);
      expectStatus(await putState(s, alice, roomId, 'm.room.topic', '', { topic: `topic ${i}` }), 200);
      await sendText(s, bob, roomId, `sq ${i} last`);
      rooms.push(roomId);
    }
    const res = await s.request('GET', '/_matrix/client/v3/sync?timeout=0', { token: bob.accessToken });
    headPos = Number(/^s(\d+)_/.exec(res.body.next_batch as string)![1]);
  });
  after(async () => {
    await s.stop();
  });

  it('newest events per room, state groups at positions, group chains and event views', async () => {
    const ranges = rooms.map((roomId, i) => ({ roomId, after: 0, upTo: i === 2 ? headPos : headPos - 1, limit: 3 + i }));
    const latest = await selectLatestEvents(db(), ranges, {});
    assert.ok(latest.length > 0);
    assert.deepEqual(sorted(latest), sorted(await viaKysely((trx) => selectLatestEvents(trx, ranges, {}))));
    for (const r of ranges) assert.equal(latest.filter((row) => row.room_id === r.roomId).length, r.limit, 'each room up to its limit');
    assert.ok(latest.every((row) => typeof row.stream_pos === 'number'));

    const items = rooms.flatMap((roomId) => [{ roomId, pos: headPos }, { roomId, pos: headPos - 4 }, { roomId, pos: 0 }]);
    const groups = await selectStateGroupsAt(db(), items);
    assert.deepEqual(groups, await viaKysely((trx) => selectStateGroupsAt(trx, items)));
    const known = groups.filter((g): g is number => g !== null);
    assert.ok(known.length >= rooms.length, 'every room has a state group at the head');

    const chains = await selectGroupChains(db(), known);
    assert.ok(chains.length > 0);
    assert.deepEqual(sorted(chains), sorted(await viaKysely((trx) => selectGroupChains(trx, known))));

    const ids = [...new Set([...latest.map((r) => r.event_id), ...chains.map((r) => r.event_id)])];
    const views = await selectEventViewsByIds(db(), s.hs.ctx.dialect, ids);
    assert.equal(views.length, ids.length);
    assert.deepEqual(sorted(views), sorted(await viaKysely((trx) => selectEventViewsByIds(trx, s.hs.ctx.dialect, ids))));
  });
});
