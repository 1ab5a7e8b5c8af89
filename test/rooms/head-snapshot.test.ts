// The room head (current state, forward extremities, members) is read in one snapshot: a writer on
// another connection (another cluster node) that commits between the reads must not produce a head
// whose extremities are newer than its state.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { connectDatabase, type Database } from '../../src/db/connect.js';
import { readHeadRows } from '../../src/rooms/state/room-head.js';
import { startTestServer, TEST_DB, type TestServer, type TestUser } from '../helpers/server.js';
import { createRoom, putState, sendText } from './room-helpers.js';

let server: TestServer;
let alice: TestUser;
let other: Database;

before(async () => {
  server = await startTestServer();
  alice = await server.registerUser('hs_alice');
  const url = TEST_DB === 'postgres' ? server.hs.ctx.config.database.url : join(server.dataDir, 'hearth.db');
  other = await connectDatabase({ url, sqliteSynchronous: 'NORMAL', poolSize: 2 });
});
after(async () => {
  await other.close();
  await server.stop();
});

test('current state and forward extremities are read from the same moment', async () => {
  const roomId = await createRoom(server, alice);
  const t1 = (await putState(server, alice, roomId, 'm.room.topic', '', { topic: 'one' })).body.event_id as string;
  const e1 = await sendText(server, alice, roomId, 'one');
  const t2 = (await putState(server, alice, roomId, 'm.room.topic', '', { topic: 'two' })).body.event_id as string;
  const e2 = await sendText(server, alice, roomId, 'two');

  // Another writer flips the room between two consistent moments: (topic t1, extremity e1) and (t2, e2).
  let stop = false;
  let flips = 0;
  const writer = (async () => {
    while (!stop) {
      const [t, ev] = flips % 2 === 0 ? [t1, e1] : [t2, e2];
      await other.db.transaction().execute(async (trx) => {
        await trx.updateTable('current_state').set({ event_id: t }).where('room_id', '=', roomId).where('type', '=', 'm.room.topic').execute();
        await trx.updateTable('forward_extremities').set({ event_id: ev }).where('room_id', '=', roomId).execute();
      });
      flips++;
      // No wait here: on SQLite both sides run as chains of promise callbacks and take turns between them.
      if (flips % 50 === 0) await new Promise((r) => setImmediate(r));
    }
  })();

  let mixed = 0;
  try {
    for (let i = 0; i < 400; i++) {
      const rows = (await readHeadRows(server.hs.ctx, roomId))!;
      const topic = rows.stateRows.find((r) => r.type === 'm.room.topic')!.event_id;
      const extremity = rows.extremities[0]!.event_id;
      if ((extremity === e1) !== (topic === t1)) mixed++;
      if (i % 20 === 0) await new Promise((r) => setImmediate(r));
    }
  } finally {
    stop = true;
    await writer;
  }
  assert.ok(flips > 20, `the writer ran (${flips} flips)`);
  assert.equal(mixed, 0, `${mixed} of 400 heads mixed two moments`);
});
