import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { DbOrTx } from '../../src/db/schema.js';
import { selectEventViewsByIds } from '../../src/rooms/store/events-table.js';
import { sql } from 'kysely';
import { selectGroupChain } from '../../src/rooms/store/state-groups-table.js';
import { selectGroupChains, selectLatestEvents, selectStateGroupsAt } from '../../src/rooms/store/sync-queries.js';
import { startTestServer, TEST_DB, type TestServer, type TestUser } from '../helpers/server.js';
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

// SQLite only: without statistics its planner took the recursive chain for a large table and
// scanned every delta in the database for each read (PostgreSQL plans with statistics).
describe('reading state group chains looks up the deltas on the chain, however many others there are', { skip: TEST_DB !== 'sqlite' }, () => {
  let s: TestServer;
  let group = 0;
  const db = () => s.hs.ctx.db;

  before(async () => {
    s = await startTestServer();
    const alice = await s.registerUser('chain_alice');
    const roomId = await createRoom(s, alice, { preset: 'public_chat', name: 'chains' });
    await sendText(s, alice, roomId, 'hello');
    const res = await s.request('GET', '/_matrix/client/v3/sync?timeout=0', { token: alice.accessToken });
    const headPos = Number(/^s(\d+)_/.exec(res.body.next_batch as string)![1]);
    group = (await selectStateGroupsAt(db(), [{ roomId, pos: headPos }]))[0]!;
    assert.ok(group > 0);
  });
  after(async () => {
    await s.stop();
  });

  /** Median ms of reading the group's chain one at a time, in batches, and in a transaction. */
  async function readTimes(): Promise<number[]> {
    const runs: number[][] = [[], [], []];
    for (let i = 0; i < 15; i++) {
      const reads = [() => selectGroupChain(db(), group), () => selectGroupChains(db(), [group]), () => db().transaction().execute((trx) => selectGroupChains(trx, [group]))];
      for (const [k, read] of reads.entries()) {
        const t0 = performance.now();
        assert.ok((await read()).length > 0);
        runs[k]!.push(performance.now() - t0);
      }
    }
    return runs.map((r) => r.sort((a, b) => a - b)[r.length >> 1]!);
  }

  it('200,000 deltas of other rooms do not slow the read down', async () => {
    const before = await readTimes();
    // Other rooms' groups, one delta each, in chains of 20.
    await sql`with recursive n(x) as (select 0 union all select x + 1 from n where x < 199999)
      insert into state_groups (id, room_id, prev_group, delta_depth)
      select 10000000 + x, '!other' || (x / 20) || ':test', case when x % 20 = 0 then null else 10000000 + x - 1 end, x % 20 from n`.execute(db());
    await sql`with recursive n(x) as (select 0 union all select x + 1 from n where x < 199999)
      insert into state_group_deltas (state_group, type, state_key, event_id)
      select 10000000 + x, 'm.room.member', '@u' || x || ':test', '$e' || x from n`.execute(db());
    const after = await readTimes();
    // A scan of the deltas took 10-20 ms here, against well under one for the lookups.
    for (const [k, ms] of after.entries()) assert.ok(ms < Math.max(3, before[k]! * 4), `read ${k} took ${ms.toFixed(2)} ms (${before[k]!.toFixed(2)} ms before)`);
  });
});
