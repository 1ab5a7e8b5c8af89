import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { deleteSearchDoc, insertSearchDocs } from '../../src/search/search-table.js';
import { startTestServer, TEST_DB, type TestServer, type TestUser } from '../helpers/server.js';
import { C, createRoom, e, expectStatus, join, membershipAction, putState, send, sendText } from '../rooms/room-helpers.js';

let server: TestServer;
let alice: TestUser;
let bob: TestUser;
let carol: TestUser;

before(async () => {
  server = await startTestServer();
  alice = await server.registerUser('se_alice');
  bob = await server.registerUser('se_bob');
  carol = await server.registerUser('se_carol');
});
after(async () => {
  await server.stop();
});

async function search(user: TestUser, criteria: Record<string, unknown>, nextBatch?: string) {
  const q = nextBatch === undefined ? '' : `?next_batch=${e(nextBatch)}`;
  return server.request('POST', `${C}/search${q}`, { token: user.accessToken, body: { search_categories: { room_events: criteria } } });
}

const ids = (res: any) => res.body.search_categories.room_events.results.map((r: any) => r.result.event_id);
const bodies = (res: any) => res.body.search_categories.room_events.results.map((r: any) => r.result.content.body);

describe('POST /search', () => {
  test('finds words (stemmed) in messages, names and topics; all words must match; keys narrow the search', async () => {
    const roomId = await createRoom(server, alice, { preset: 'private_chat', name: 'Martian embassy', topic: 'Talks about martians' });
    const m1 = await sendText(server, alice, roomId, 'The martians landed near the river');
    await sendText(server, alice, roomId, 'Men walked on the moon');
    const m3 = await sendText(server, alice, roomId, 'Martians and men shook hands');

    const res = await search(alice, { search_term: 'martian' });
    expectStatus(res, 200);
    const found = res.body.search_categories.room_events;
    assert.equal(found.count, 4, 'two messages, the name and the topic');
    assert.ok(ids(res).includes(m1) && ids(res).includes(m3));
    assert.ok(found.highlights.includes('martian'));
    for (const r of found.results) assert.equal(typeof r.rank, 'number');

    const both = await search(alice, { search_term: 'martians men' });
    assert.deepEqual(ids(both), [m3]);
    const bodyOnly = await search(alice, { search_term: 'martian', keys: ['content.body'] });
    assert.deepEqual(new Set(ids(bodyOnly)), new Set([m1, m3]));
    const topicOnly = await search(alice, { search_term: 'martians', keys: ['content.topic'] });
    assert.equal(topicOnly.body.search_categories.room_events.results[0].result.type, 'm.room.topic');
    const nothing = await search(alice, { search_term: 'zeppelin' });
    assert.deepEqual(ids(nothing), []);
    assert.equal(nothing.body.search_categories.room_events.count, 0);
    // Query syntax is taken as words, never as an FTS expression.
    expectStatus(await search(alice, { search_term: 'martians" OR NEAR(* -' }), 200);
  });

  test('recent order pages with next_batch; rank order pages too; groups by room and sender', async () => {
    const r1 = await createRoom(server, alice, { preset: 'public_chat' });
    const r2 = await createRoom(server, bob, { preset: 'public_chat' });
    expectStatus(await join(server, alice, r2), 200);
    expectStatus(await join(server, bob, r1), 200);
    const sent: string[] = [];
    for (let i = 0; i < 7; i++) sent.push(await sendText(server, i % 2 ? bob : alice, i < 4 ? r1 : r2, `pelican number ${i}`));

    const filter = { limit: 3 };
    const p1 = await search(alice, { search_term: 'pelican', order_by: 'recent', filter });
    assert.deepEqual(ids(p1), [sent[6], sent[5], sent[4]]);
    const nb1 = p1.body.search_categories.room_events.next_batch;
    assert.equal(typeof nb1, 'string');
    const p2 = await search(alice, { search_term: 'pelican', order_by: 'recent', filter }, nb1);
    assert.deepEqual(ids(p2), [sent[3], sent[2], sent[1]]);
    const p3 = await search(alice, { search_term: 'pelican', order_by: 'recent', filter }, p2.body.search_categories.room_events.next_batch);
    assert.deepEqual(ids(p3), [sent[0]]);
    assert.equal(p3.body.search_categories.room_events.next_batch, undefined);

    const seen = new Set<string>();
    let token: string | undefined;
    for (let i = 0; i < 5; i++) {
      const page = await search(alice, { search_term: 'pelican', order_by: 'rank', filter }, token);
      for (const id of ids(page)) seen.add(id);
      token = page.body.search_categories.room_events.next_batch;
      if (!token) break;
    }
    assert.deepEqual([...seen].sort(), [...sent].sort(), 'rank order pages over every match once');

    const grouped = await search(alice, {
      search_term: 'pelican',
      order_by: 'recent',
      groupings: { group_by: [{ key: 'room_id' }, { key: 'sender' }] },
    });
    const groups = grouped.body.search_categories.room_events.groups;
    assert.deepEqual(groups.room_id[r2].results, [sent[6], sent[5], sent[4]]);
    assert.deepEqual(groups.room_id[r1].results, [sent[3], sent[2], sent[1], sent[0]]);
    assert.equal(groups.room_id[r2].order, 1);
    assert.deepEqual(new Set(groups.sender[bob.userId].results), new Set([sent[1], sent[3], sent[5]]));

    const onlyR1 = await search(alice, { search_term: 'pelican', filter: { rooms: [r1], senders: [bob.userId] } });
    assert.deepEqual(new Set(ids(onlyR1)), new Set([sent[1], sent[3]]));
    // A token from the other order is refused.
    expectStatus(await search(alice, { search_term: 'pelican', order_by: 'rank' }, nb1), 400, 'M_INVALID_PARAM');
  });

  test('event context with profiles, and current state on request', async () => {
    const roomId = await createRoom(server, alice, { preset: 'public_chat' });
    await server.request('PUT', `${C}/profile/${e(alice.userId)}/displayname`, { token: alice.accessToken, body: { displayname: 'Alice Old' } });
    await sendText(server, alice, roomId, 'one before');
    await sendText(server, alice, roomId, 'two before');
    const hit = await sendText(server, alice, roomId, 'the quokka smiled');
    await sendText(server, alice, roomId, 'one after');
    await server.request('PUT', `${C}/profile/${e(alice.userId)}/displayname`, { token: alice.accessToken, body: { displayname: 'Alice New' } });

    const res = await search(alice, {
      search_term: 'quokka',
      event_context: { before_limit: 2, after_limit: 2, include_profile: true },
      include_state: true,
    });
    expectStatus(res, 200);
    const r = res.body.search_categories.room_events.results[0];
    assert.equal(r.result.event_id, hit);
    assert.deepEqual(r.context.events_before.map((x: any) => x.content.body), ['two before', 'one before'], 'nearest first, as /context');
    assert.equal(r.context.events_after[0].content.body, 'one after');
    assert.equal(r.context.events_after.length, 2);
    assert.equal(typeof r.context.start, 'string');
    assert.equal(typeof r.context.end, 'string');
    assert.equal(r.context.profile_info[alice.userId].displayname, 'Alice Old', 'the profile as it was at the event');
    const state = res.body.search_categories.room_events.state[roomId];
    assert.ok(state.some((x: any) => x.type === 'm.room.create'));
  });

  test('only rooms the user has been in, and only what they could see: nothing sent after they left', async () => {
    const roomId = await createRoom(server, alice, { preset: 'public_chat' });
    await putState(server, alice, roomId, 'm.room.history_visibility', '', { history_visibility: 'joined' });
    await sendText(server, alice, roomId, 'wombat before carol joined');
    expectStatus(await join(server, carol, roomId), 200);
    const during = await sendText(server, alice, roomId, 'wombat while carol is here');
    expectStatus(await membershipAction(server, carol, roomId, 'leave'), 200);
    await sendText(server, alice, roomId, 'wombat after carol left');
    const other = await createRoom(server, alice, { preset: 'private_chat' });
    await sendText(server, alice, other, 'wombat in a room carol never joined');

    const res = await search(carol, { search_term: 'wombat' });
    expectStatus(res, 200);
    assert.deepEqual(ids(res), [during]);
    // The approximate count leaves out what was sent after carol left (what came before she joined is counted).
    assert.equal(res.body.search_categories.room_events.count, 2);
    const all = await search(alice, { search_term: 'wombat' });
    assert.equal(ids(all).length, 4);
  });

  test('a redacted message is no longer found', async () => {
    const roomId = await createRoom(server, alice);
    const id = await sendText(server, alice, roomId, 'ephemeral platypus');
    assert.deepEqual(ids(await search(alice, { search_term: 'platypus' })), [id]);
    expectStatus(await server.request('PUT', `${C}/rooms/${e(roomId)}/redact/${e(id)}/rd1`, { token: alice.accessToken, body: {} }), 200);
    assert.deepEqual(ids(await search(alice, { search_term: 'platypus' })), []);
  });

  test('results carry bundled aggregations', async () => {
    const roomId = await createRoom(server, alice);
    const id = await sendText(server, alice, roomId, 'an axolotl');
    const edit = await send(server, alice, roomId, {
      msgtype: 'm.text',
      body: '* an axolotl!',
      'm.new_content': { msgtype: 'm.text', body: 'an axolotl!' },
      'm.relates_to': { rel_type: 'm.replace', event_id: id },
    });
    const res = await search(alice, { search_term: 'axolotl', keys: ['content.body'], order_by: 'recent' });
    const original = res.body.search_categories.room_events.results.find((r: any) => r.result.event_id === id);
    assert.equal(original.result.unsigned['m.relations']['m.replace'].event_id, edit);
    assert.deepEqual(bodies(res).sort(), ['* an axolotl!', 'an axolotl'].sort());
  });

  test('bad requests are Matrix errors', async () => {
    const noCategories = await server.request('POST', `${C}/search`, { token: alice.accessToken, body: {} });
    assert.equal(noCategories.status, 400);
    assert.match(noCategories.body.errcode, /^M_/);
    const noTerm = await search(alice, { keys: ['content.body'] });
    assert.equal(noTerm.status, 400);
    assert.match(noTerm.body.errcode, /^M_/);
    expectStatus(await search(alice, { search_term: 'x', keys: ['content.other'] }), 400);
    expectStatus(await search(alice, { search_term: 'x', order_by: 'loudest' }), 400);
    expectStatus(await search(alice, { search_term: 'x', groupings: { group_by: [{ key: 'type' }] } }), 400);
    expectStatus(await search(alice, { search_term: 'x' }, 'garbage'), 400, 'M_INVALID_PARAM');
    expectStatus(await search(alice, { search_term: 'x', filter: { rooms: 'nope' } }), 400);
    const empty = await server.request('POST', `${C}/search`, { token: alice.accessToken, body: { search_categories: {} } });
    expectStatus(empty, 200);
  });
});

// SQLite only: FTS5 indexes nothing but the text, so a delete by event_id read every row of the index.
describe('a redaction takes its message out of the index by key', { skip: TEST_DB !== 'sqlite' }, () => {
  /** Median ms of deleting an event's index row (one the index lacks: the work is finding it). */
  async function deleteTimes(): Promise<number> {
    const runs: number[] = [];
    for (let i = 0; i < 9; i++) {
      const t0 = performance.now();
      await server.hs.ctx.db.transaction().execute((trx) => deleteSearchDoc(trx, '$not-indexed'));
      runs.push(performance.now() - t0);
    }
    return runs.sort((a, b) => a - b)[4]!;
  }

  test('50,000 other rows in the index do not slow it down', async () => {
    const before = await deleteTimes();
    const docs = Array.from({ length: 50_000 }, (_, i) => ({
      event_id: `$filler${i}`,
      room_id: '!filler:test',
      sender: '@filler:test',
      key: 'content.body',
      value: `filler words ${i}`,
      stream_pos: 1_000_000_000 + i,
      origin_server_ts: 0,
    }));
    await server.hs.ctx.db.transaction().execute((trx) => insertSearchDocs(trx, 'sqlite', docs));
    const after = await deleteTimes();
    // Reading every row took 15-30 ms here, against a fraction of one by key.
    assert.ok(after < Math.max(3, before * 4), `a delete took ${after.toFixed(2)} ms (${before.toFixed(2)} ms before)`);
  });

  test('a redaction still removes exactly its own row', async () => {
    const roomId = await createRoom(server, alice);
    const keep = await sendText(server, alice, roomId, 'numbat one');
    const gone = await sendText(server, alice, roomId, 'numbat two');
    assert.deepEqual(new Set(ids(await search(alice, { search_term: 'numbat' }))), new Set([keep, gone]));
    expectStatus(await server.request('PUT', `${C}/rooms/${e(roomId)}/redact/${e(gone)}/rq1`, { token: alice.accessToken, body: {} }), 200);
    assert.deepEqual(ids(await search(alice, { search_term: 'numbat' })), [keep]);
  });
});
