import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { createRoom, e, expectStatus, join, membershipAction, putState, send, sendText } from '../rooms/room-helpers.js';

const V1 = '/_matrix/client/v1';
let server: TestServer;
let alice: TestUser;
let bob: TestUser;
let carol: TestUser;

before(async () => {
  server = await startTestServer();
  alice = await server.registerUser('thr_alice');
  bob = await server.registerUser('thr_bob');
  carol = await server.registerUser('thr_carol');
});
after(async () => {
  await server.stop();
});

const reply = (user: TestUser, roomId: string, root: string, body: string) =>
  send(server, user, roomId, { msgtype: 'm.text', body, 'm.relates_to': { rel_type: 'm.thread', event_id: root } });

async function threads(user: TestUser, roomId: string, query: Record<string, string | number> = {}) {
  const qs = new URLSearchParams(Object.entries(query).map(([k, v]): [string, string] => [k, String(v)])).toString();
  return server.request('GET', `${V1}/rooms/${e(roomId)}/threads${qs ? `?${qs}` : ''}`, { token: user.accessToken });
}

describe('GET /threads', () => {
  test('roots ordered by latest reply, with summaries; participated; pagination', async () => {
    const roomId = await createRoom(server, alice, { preset: 'public_chat' });
    expectStatus(await join(server, bob, roomId), 200);
    const t1 = await sendText(server, alice, roomId, 'thread 1');
    const t2 = await sendText(server, bob, roomId, 'thread 2');
    const t3 = await sendText(server, bob, roomId, 'thread 3');
    await sendText(server, alice, roomId, 'no thread here');
    await reply(bob, roomId, t1, 'a');
    await reply(bob, roomId, t2, 'b');
    await reply(bob, roomId, t3, 'c');
    await reply(alice, roomId, t2, 'd');
    await reply(bob, roomId, t1, 'e');
    // Latest replies: t1 (e), then t2 (d), then t3 (c).

    const all = await threads(alice, roomId);
    expectStatus(all, 200);
    assert.deepEqual(all.body.chunk.map((ev: any) => ev.event_id), [t1, t2, t3]);
    assert.equal(all.body.next_batch, undefined);
    const s1 = all.body.chunk[0].unsigned['m.relations']['m.thread'];
    assert.equal(s1.count, 2);
    assert.equal(s1.latest_event.content.body, 'e');
    assert.equal(s1.current_user_participated, true);

    const mine = await threads(alice, roomId, { include: 'participated' });
    assert.deepEqual(mine.body.chunk.map((ev: any) => ev.event_id), [t1, t2], 'alice started t1 and replied in t2');

    const p1 = await threads(alice, roomId, { limit: 2 });
    assert.deepEqual(p1.body.chunk.map((ev: any) => ev.event_id), [t1, t2]);
    assert.equal(typeof p1.body.next_batch, 'string');
    const p2 = await threads(alice, roomId, { limit: 2, from: p1.body.next_batch });
    assert.deepEqual(p2.body.chunk.map((ev: any) => ev.event_id), [t3]);
    assert.equal(p2.body.next_batch, undefined);

    const pm1 = await threads(bob, roomId, { include: 'participated', limit: 1 });
    assert.deepEqual(pm1.body.chunk.map((ev: any) => ev.event_id), [t1]);
    const pm2 = await threads(bob, roomId, { include: 'participated', limit: 5, from: pm1.body.next_batch });
    assert.deepEqual(pm2.body.chunk.map((ev: any) => ev.event_id), [t2, t3]);
  });

  test('threads whose root the viewer may not see are left out', async () => {
    const roomId = await createRoom(server, alice, { preset: 'public_chat' });
    await putState(server, alice, roomId, 'm.room.history_visibility', '', { history_visibility: 'joined' });
    const before = await sendText(server, alice, roomId, 'before carol');
    await reply(alice, roomId, before, 'x');
    expectStatus(await join(server, carol, roomId), 200);
    const afterRoot = await sendText(server, alice, roomId, 'after carol');
    await reply(alice, roomId, afterRoot, 'y');
    await reply(alice, roomId, before, 'z');
    const seen = await threads(carol, roomId);
    assert.deepEqual(seen.body.chunk.map((ev: any) => ev.event_id), [afterRoot]);
  });

  test('a root sent by an ignored user is served redacted', async () => {
    const roomId = await createRoom(server, bob, { preset: 'public_chat' });
    expectStatus(await join(server, carol, roomId), 200);
    const root = await sendText(server, bob, roomId, 'ignore me');
    await reply(carol, roomId, root, 'carol replies');
    const put = await server.request('PUT', `/_matrix/client/v3/user/${e(carol.userId)}/account_data/m.ignored_user_list`, {
      token: carol.accessToken,
      body: { ignored_users: { [bob.userId]: {} } },
    });
    expectStatus(put, 200);
    const seen = await threads(carol, roomId);
    assert.equal(seen.body.chunk[0].event_id, root);
    assert.deepEqual(seen.body.chunk[0].content, {});
    assert.equal(seen.body.chunk[0].unsigned['m.relations']['m.thread'].count, 1);
    const forBob = await threads(bob, roomId);
    assert.equal(forBob.body.chunk[0].content.body, 'ignore me');
  });

  test('errors: bad include, limit and token; a room the user cannot read', async () => {
    const roomId = await createRoom(server, alice, { preset: 'private_chat' });
    expectStatus(await threads(alice, roomId, { include: 'some' }), 400, 'M_INVALID_PARAM');
    expectStatus(await threads(alice, roomId, { limit: 0 }), 400, 'M_INVALID_PARAM');
    expectStatus(await threads(alice, roomId, { from: 'nope' }), 400, 'M_INVALID_PARAM');
    expectStatus(await threads(carol, roomId), 403, 'M_FORBIDDEN');
    const left = await createRoom(server, alice, { preset: 'public_chat' });
    expectStatus(await join(server, carol, left), 200);
    expectStatus(await membershipAction(server, carol, left, 'leave'), 200);
    expectStatus(await threads(carol, left), 200);
  });
});
