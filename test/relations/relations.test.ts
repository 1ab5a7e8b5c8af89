import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { C, createRoom, e, expectStatus, join, membershipAction, messages, putState, send, sendText } from '../rooms/room-helpers.js';

const V1 = '/_matrix/client/v1';
let server: TestServer;
let alice: TestUser;
let bob: TestUser;
let carol: TestUser;

before(async () => {
  server = await startTestServer();
  alice = await server.registerUser('rel_alice');
  bob = await server.registerUser('rel_bob');
  carol = await server.registerUser('rel_carol');
});
after(async () => {
  await server.stop();
});

function relatesTo(relType: string, eventId: string, extra: Record<string, unknown> = {}) {
  return { 'm.relates_to': { rel_type: relType, event_id: eventId, ...extra } };
}

async function relations(user: TestUser, roomId: string, eventId: string, tail = '', query: Record<string, string | number | boolean> = {}) {
  const qs = new URLSearchParams(Object.entries(query).map(([k, v]): [string, string] => [k, String(v)])).toString();
  return server.request('GET', `${V1}/rooms/${e(roomId)}/relations/${e(eventId)}${tail}${qs ? `?${qs}` : ''}`, { token: user.accessToken });
}

async function getEvent(user: TestUser, roomId: string, eventId: string) {
  const res = await server.request('GET', `${C}/rooms/${e(roomId)}/event/${e(eventId)}`, { token: user.accessToken });
  expectStatus(res, 200);
  return res.body;
}

async function redact(user: TestUser, roomId: string, eventId: string) {
  const res = await server.request('PUT', `${C}/rooms/${e(roomId)}/redact/${e(eventId)}/r${Date.now()}${Math.random()}`, { token: user.accessToken, body: {} });
  expectStatus(res, 200);
}

async function sharedRoom(): Promise<string> {
  const roomId = await createRoom(server, alice, { preset: 'public_chat' });
  expectStatus(await join(server, bob, roomId), 200);
  return roomId;
}

describe('GET /relations', () => {
  test('children by rel type and event type, newest first, paged both ways with next_batch', async () => {
    const roomId = await sharedRoom();
    const root = await sendText(server, alice, roomId, 'root');
    const replies: string[] = [];
    for (let i = 0; i < 5; i++) {
      replies.push(await send(server, i % 2 ? bob : alice, roomId, { msgtype: 'm.text', body: `r${i}`, ...relatesTo('m.thread', root) }));
    }
    const reaction = await send(server, bob, roomId, relatesTo('m.annotation', root, { key: '👍' }), 'm.reaction');
    await sendText(server, alice, roomId, 'unrelated');

    const all = await relations(alice, roomId, root);
    expectStatus(all, 200);
    assert.deepEqual(all.body.chunk.map((ev: any) => ev.event_id), [reaction, ...[...replies].reverse()]);
    assert.equal(all.body.next_batch, undefined);
    assert.equal(all.body.recursion_depth, undefined, 'absent unless recurse was given');

    const threadOnly = await relations(alice, roomId, root, '/m.thread');
    assert.deepEqual(threadOnly.body.chunk.map((ev: any) => ev.event_id), [...replies].reverse());
    const reactions = await relations(alice, roomId, root, `/m.annotation/m.reaction`);
    assert.deepEqual(reactions.body.chunk.map((ev: any) => ev.event_id), [reaction]);
    const none = await relations(alice, roomId, root, `/m.annotation/m.room.message`);
    assert.deepEqual(none.body.chunk, []);

    // Backwards in pages of two.
    const p1 = await relations(alice, roomId, root, '/m.thread', { limit: 2 });
    assert.deepEqual(p1.body.chunk.map((ev: any) => ev.content.body), ['r4', 'r3']);
    assert.equal(typeof p1.body.next_batch, 'string');
    const p2 = await relations(alice, roomId, root, '/m.thread', { limit: 2, from: p1.body.next_batch });
    assert.deepEqual(p2.body.chunk.map((ev: any) => ev.content.body), ['r2', 'r1']);
    assert.equal(p2.body.prev_batch, p1.body.next_batch);
    const p3 = await relations(alice, roomId, root, '/m.thread', { limit: 2, from: p2.body.next_batch });
    assert.deepEqual(p3.body.chunk.map((ev: any) => ev.content.body), ['r0']);
    assert.equal(p3.body.next_batch, undefined);
    // `to` stops the walk: from page 1's token to page 2's covers page 2 only.
    const bounded = await relations(alice, roomId, root, '/m.thread', { from: p1.body.next_batch, to: p2.body.next_batch });
    assert.deepEqual(bounded.body.chunk.map((ev: any) => ev.content.body), ['r2', 'r1']);

    // Forwards, oldest first.
    const f1 = await relations(alice, roomId, root, '/m.thread', { dir: 'f', limit: 3 });
    assert.deepEqual(f1.body.chunk.map((ev: any) => ev.content.body), ['r0', 'r1', 'r2']);
    const f2 = await relations(alice, roomId, root, '/m.thread', { dir: 'f', limit: 3, from: f1.body.next_batch });
    assert.deepEqual(f2.body.chunk.map((ev: any) => ev.content.body), ['r3', 'r4']);
    assert.equal(f2.body.next_batch, undefined);
  });

  test('recurse follows children of children; without it only direct children', async () => {
    const roomId = await sharedRoom();
    const root = await sendText(server, alice, roomId, 'root');
    const child = await send(server, bob, roomId, { msgtype: 'm.text', body: 'child', ...relatesTo('m.reference', root) });
    const grandchild = await send(server, alice, roomId, { msgtype: 'm.text', body: 'gc', ...relatesTo('m.reference', child) });
    const editOfGc = await send(server, alice, roomId, { msgtype: 'm.text', body: '* gc2', 'm.new_content': { msgtype: 'm.text', body: 'gc2' }, ...relatesTo('m.replace', grandchild) });
    const level4 = await send(server, bob, roomId, relatesTo('m.annotation', editOfGc, { key: 'x' }), 'm.reaction');

    const direct = await relations(alice, roomId, root, '', { recurse: false });
    assert.deepEqual(direct.body.chunk.map((ev: any) => ev.event_id), [child]);
    assert.equal(direct.body.recursion_depth, 1);
    const deep = await relations(alice, roomId, root, '', { recurse: true });
    assert.equal(deep.body.recursion_depth, 3);
    assert.deepEqual(deep.body.chunk.map((ev: any) => ev.event_id), [editOfGc, grandchild, child]);
    assert.ok(!deep.body.chunk.some((ev: any) => ev.event_id === level4), 'three levels only');
    const refs = await relations(alice, roomId, root, '/m.reference', { recurse: true });
    assert.deepEqual(refs.body.chunk.map((ev: any) => ev.event_id), [grandchild, child]);
  });

  test('unknown parent, hidden parent and bad parameters are Matrix errors', async () => {
    const roomId = await createRoom(server, alice, { preset: 'private_chat' });
    const root = await sendText(server, alice, roomId, 'secret');
    expectStatus(await relations(alice, roomId, '$nope'), 404, 'M_NOT_FOUND');
    expectStatus(await relations(carol, roomId, root), 404, 'M_NOT_FOUND');
    expectStatus(await relations(alice, '!unknown:localhost', root), 404, 'M_NOT_FOUND');
    expectStatus(await relations(alice, roomId, root, '', { dir: 'x' }), 400, 'M_INVALID_PARAM');
    expectStatus(await relations(alice, roomId, root, '', { limit: 0 }), 400, 'M_INVALID_PARAM');
    expectStatus(await relations(alice, roomId, root, '', { from: 'garbage!' }), 400, 'M_INVALID_PARAM');
    const bad = await relations(alice, roomId, root, '', { limit: 'many' });
    assert.equal(bad.status, 400);
    assert.match(bad.body.errcode, /^M_/);
  });

  test('children sent after a member left are not served to them', async () => {
    const roomId = await sharedRoom();
    await putState(server, alice, roomId, 'm.room.history_visibility', '', { history_visibility: 'joined' });
    const root = await sendText(server, alice, roomId, 'root');
    const early = await send(server, alice, roomId, { msgtype: 'm.text', body: 'early', ...relatesTo('m.thread', root) });
    expectStatus(await membershipAction(server, bob, roomId, 'leave'), 200);
    await send(server, alice, roomId, { msgtype: 'm.text', body: 'late', ...relatesTo('m.thread', root) });
    const seen = await relations(bob, roomId, root);
    expectStatus(seen, 200);
    assert.deepEqual(seen.body.chunk.map((ev: any) => ev.event_id), [early]);
    const rootForBob = await getEvent(bob, roomId, root);
    assert.equal(rootForBob.unsigned['m.relations']['m.thread'].count, 1);
    assert.equal(rootForBob.unsigned['m.relations']['m.thread'].latest_event.event_id, early);
    const rootForAlice = await getEvent(alice, roomId, root);
    assert.equal(rootForAlice.unsigned['m.relations']['m.thread'].count, 2);
  });
});

describe('bundled aggregations', () => {
  test('m.replace: the latest valid edit by the same sender; edits of edits and others’ edits ignored; redaction reverts', async () => {
    const roomId = await sharedRoom();
    const original = await sendText(server, alice, roomId, 'hello');
    const edit = (user: TestUser, target: string, body: string) =>
      send(server, user, roomId, { msgtype: 'm.text', body: `* ${body}`, 'm.new_content': { msgtype: 'm.text', body }, ...relatesTo('m.replace', target) });
    const e1 = await edit(alice, original, 'hello 1');
    const e2 = await edit(alice, original, 'hello 2');
    await edit(bob, original, 'bob was here');
    await edit(alice, e2, 'edit of an edit');
    // No m.new_content: not a valid replacement.
    await send(server, alice, roomId, { msgtype: 'm.text', body: '* bare', ...relatesTo('m.replace', original) });

    let ev = await getEvent(alice, roomId, original);
    assert.equal(ev.content.body, 'hello', 'the original content is left intact');
    assert.equal(ev.unsigned['m.relations']['m.replace'].event_id, e2);
    assert.equal(ev.unsigned['m.relations']['m.replace'].content['m.new_content'].body, 'hello 2');
    const e2Served = await getEvent(alice, roomId, e2);
    assert.equal(e2Served.unsigned['m.relations'], undefined, 'an edit of an edit is not a valid replacement');

    // The same bundle on /messages and /context.
    const page = await messages(server, alice, roomId, { dir: 'b', limit: 20 });
    const fromMessages = page.body.chunk.find((x: any) => x.event_id === original);
    assert.equal(fromMessages.unsigned['m.relations']['m.replace'].event_id, e2);
    const ctxRes = await server.request('GET', `${C}/rooms/${e(roomId)}/context/${e(original)}?limit=4`, { token: bob.accessToken });
    expectStatus(ctxRes, 200);
    assert.equal(ctxRes.body.event.unsigned['m.relations']['m.replace'].event_id, e2);

    await redact(alice, roomId, e2);
    ev = await getEvent(alice, roomId, original);
    assert.equal(ev.unsigned['m.relations']['m.replace'].event_id, e1, 'redacting the latest edit reverts to the one before');
    await redact(alice, roomId, original);
    ev = await getEvent(alice, roomId, original);
    assert.equal(ev.unsigned['m.relations']?.['m.replace'], undefined, 'a redacted original bundles no edit');
  });

  test('m.thread summary with count, latest event (with its own edit) and participation; m.reference chunk; annotations not aggregated', async () => {
    const roomId = await sharedRoom();
    const root = await sendText(server, bob, roomId, 'thread root');
    const r1 = await send(server, bob, roomId, { msgtype: 'm.text', body: 'one', ...relatesTo('m.thread', root) });
    const r2 = await send(server, bob, roomId, { msgtype: 'm.text', body: 'two', ...relatesTo('m.thread', root) });
    const r2Edit = await send(server, bob, roomId, { msgtype: 'm.text', body: '* two!', 'm.new_content': { msgtype: 'm.text', body: 'two!' }, ...relatesTo('m.replace', r2) });
    const ref = await send(server, alice, roomId, { msgtype: 'm.text', body: 'see above', ...relatesTo('m.reference', root) });
    await send(server, alice, roomId, relatesTo('m.annotation', root, { key: '🎉' }), 'm.reaction');

    const forAlice = (await getEvent(alice, roomId, root)).unsigned['m.relations'];
    assert.equal(forAlice['m.thread'].count, 2);
    assert.equal(forAlice['m.thread'].current_user_participated, false);
    assert.equal(forAlice['m.thread'].latest_event.event_id, r2);
    assert.equal(forAlice['m.thread'].latest_event.unsigned['m.relations']['m.replace'].event_id, r2Edit);
    assert.deepEqual(forAlice['m.reference'], { chunk: [{ event_id: ref }] });
    assert.equal(forAlice['m.annotation'], undefined);
    const forBob = (await getEvent(bob, roomId, root)).unsigned['m.relations'];
    assert.equal(forBob['m.thread'].current_user_participated, true, 'the root sender participated');

    await send(server, alice, roomId, { msgtype: 'm.text', body: 'me too', ...relatesTo('m.thread', root) });
    const after = (await getEvent(alice, roomId, root)).unsigned['m.relations'];
    assert.equal(after['m.thread'].count, 3);
    assert.equal(after['m.thread'].current_user_participated, true);

    // A redacted reply leaves the count; the latest falls back.
    await redact(alice, roomId, after['m.thread'].latest_event.event_id);
    const redacted = (await getEvent(alice, roomId, root)).unsigned['m.relations'];
    assert.equal(redacted['m.thread'].count, 2);
    assert.equal(redacted['m.thread'].latest_event.event_id, r2);
    assert.ok(r1);
  });

  test('ignored users are left out of thread summaries', async () => {
    const roomId = await sharedRoom();
    const root = await sendText(server, alice, roomId, 'root');
    await send(server, alice, roomId, { msgtype: 'm.text', body: 'mine', ...relatesTo('m.thread', root) });
    await send(server, bob, roomId, { msgtype: 'm.text', body: 'noise', ...relatesTo('m.thread', root) });
    const put = await server.request('PUT', `${C}/user/${e(alice.userId)}/account_data/m.ignored_user_list`, {
      token: alice.accessToken,
      body: { ignored_users: { [bob.userId]: {} } },
    });
    expectStatus(put, 200);
    const t = (await getEvent(alice, roomId, root)).unsigned['m.relations']['m.thread'];
    assert.equal(t.count, 1);
    assert.equal(t.latest_event.content.body, 'mine');
    const unignore = await server.request('PUT', `${C}/user/${e(alice.userId)}/account_data/m.ignored_user_list`, { token: alice.accessToken, body: { ignored_users: {} } });
    expectStatus(unignore, 200);
    assert.equal((await getEvent(alice, roomId, root)).unsigned['m.relations']['m.thread'].count, 2);
  });

  test('/sync bundles for a limited timeline only', async () => {
    const roomId = await sharedRoom();
    const root = await sendText(server, alice, roomId, 'root');
    await send(server, alice, roomId, { msgtype: 'm.text', body: 'reply', ...relatesTo('m.thread', root) });
    for (let i = 0; i < 3; i++) await sendText(server, alice, roomId, `after ${i}`);
    const filter = encodeURIComponent(JSON.stringify({ room: { timeline: { limit: 5 } } }));
    const limited = await server.request('GET', `${C}/sync?filter=${filter}`, { token: alice.accessToken });
    expectStatus(limited, 200);
    const tl = limited.body.rooms.join[roomId].timeline;
    assert.equal(tl.limited, true);
    const rootEv = tl.events.find((x: any) => x.event_id === root);
    assert.equal(rootEv.unsigned['m.relations']['m.thread'].count, 1);
    const wide = encodeURIComponent(JSON.stringify({ room: { timeline: { limit: 50 } } }));
    const full = await server.request('GET', `${C}/sync?filter=${wide}`, { token: alice.accessToken });
    const tl2 = full.body.rooms.join[roomId].timeline;
    assert.equal(tl2.limited, false);
    assert.equal(tl2.events.find((x: any) => x.event_id === root).unsigned['m.relations'], undefined);
  });
});

describe('sending related events', () => {
  test('a second identical annotation is M_DUPLICATE_ANNOTATION until the first is redacted; a retried send answers its event', async () => {
    const roomId = await sharedRoom();
    const target = await sendText(server, alice, roomId, 'react to me');
    const body = relatesTo('m.annotation', target, { key: '👍' });
    const first = await send(server, bob, roomId, body, 'm.reaction', 'dup-txn-1');
    assert.equal(await send(server, bob, roomId, body, 'm.reaction', 'dup-txn-1'), first, 'the same transaction is answered, not refused');
    const again = await server.request('PUT', `${C}/rooms/${e(roomId)}/send/m.reaction/dup-txn-2`, { token: bob.accessToken, body });
    expectStatus(again, 400, 'M_DUPLICATE_ANNOTATION');
    await send(server, alice, roomId, body, 'm.reaction');
    await send(server, bob, roomId, relatesTo('m.annotation', target, { key: '👎' }), 'm.reaction');
    await redact(bob, roomId, first);
    await send(server, bob, roomId, body, 'm.reaction');
  });

  test('a thread cannot start from an event with a relation', async () => {
    const roomId = await sharedRoom();
    const root = await sendText(server, alice, roomId, 'root');
    const reply = await send(server, bob, roomId, { msgtype: 'm.text', body: 'in thread', ...relatesTo('m.thread', root) });
    const res = await server.request('PUT', `${C}/rooms/${e(roomId)}/send/m.room.message/t-${Date.now()}`, {
      token: alice.accessToken,
      body: { msgtype: 'm.text', body: 'nested', ...relatesTo('m.thread', reply) },
    });
    expectStatus(res, 400, 'M_UNKNOWN');
  });
});
