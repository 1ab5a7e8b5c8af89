import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { C, createRoom, expectStatus, sendText } from '../rooms/room-helpers.js';

let server: TestServer;
let alice: TestUser;

before(async () => {
  server = await startTestServer();
  alice = await server.registerUser('six_alice');
});
after(async () => {
  await server.stop();
});

async function search(term: string) {
  const res = await server.request('POST', `${C}/search`, {
    token: alice.accessToken,
    body: { search_categories: { room_events: { search_term: term, order_by: 'recent', filter: { limit: 100 } } } },
  });
  expectStatus(res, 200);
  return res.body.search_categories.room_events;
}

describe('search indexer', () => {
  test('the index follows the stream in the background and resumes after a restart without indexing twice', async () => {
    const roomId = await createRoom(server, alice);
    const first = await sendText(server, alice, roomId, 'narwhal one');
    // Indexed without a search asking: the indexer follows the events stream.
    const db = server.hs.ctx.db;
    // Up to 10 s: with two nodes the holder of the indexer's lease may be the other one.
    for (let i = 0; i < 1000; i++) {
      const row = await db.selectFrom('event_search').select('event_id').where('event_id', '=', first).executeTakeFirst();
      if (row) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(await db.selectFrom('event_search').select('event_id').where('event_id', '=', first).executeTakeFirst(), 'indexed in the background');

    assert.deepEqual((await search('narwhal')).results.map((r: any) => r.result.event_id), [first]);
    await server.restart();
    const second = await sendText(server, alice, roomId, 'narwhal two');
    const found = await search('narwhal');
    assert.deepEqual(found.results.map((r: any) => r.result.event_id), [second, first]);
    assert.equal(found.count, 2, 'each event indexed once');
  });

  test('history written before the index existed is indexed from the start', async () => {
    const roomId = await createRoom(server, alice);
    for (let i = 0; i < 12; i++) await sendText(server, alice, roomId, `okapi ${i}`);
    await search('okapi');
    // As a database from before search: an empty index and positions at the start.
    const db = server.hs.ctx.db;
    await db.deleteFrom('event_search').execute();
    await db.updateTable('search_index_state').set({ forward_pos: 0, backward_pos: 0 }).execute();
    const found = await search('okapi');
    assert.equal(found.count, 12);
    assert.equal(found.results.length, 12);
    assert.equal(found.results[0].result.content.body, 'okapi 11');
  });
});
