import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';

const V3 = '/_matrix/client/v3';

describe('Notification counts (spec: modules/push.md "Receiving notifications", "Marking notifications as read", "Server behaviour")', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await server.stop();
  });

  let txn = 0;
  async function send(u: TestUser, roomId: string, content: Record<string, unknown>, type = 'm.room.message'): Promise<string> {
    const res = await server.request('PUT', `${V3}/rooms/${encodeURIComponent(roomId)}/send/${type}/t${++txn}`, { token: u.accessToken, body: content });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.event_id;
  }

  /** A room `creator` made with everyone in `others` joined. */
  async function room(creator: TestUser, ...others: TestUser[]): Promise<string> {
    const res = await server.request('POST', `${V3}/createRoom`, { token: creator.accessToken, body: { preset: 'public_chat' } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    for (const o of others) {
      const j = await server.request('POST', `${V3}/join/${encodeURIComponent(res.body.room_id)}`, { token: o.accessToken, body: {} });
      assert.equal(j.status, 200, JSON.stringify(j.body));
    }
    return res.body.room_id;
  }

  const counts = async (u: TestUser, roomId: string) =>
    (await server.hs.ctx.services.push.getUnreadCounts(u.userId, [roomId])).get(roomId);

  const receipt = (u: TestUser, roomId: string, eventId: string, type = 'm.read') =>
    server.request('POST', `${V3}/rooms/${encodeURIComponent(roomId)}/receipt/${type}/${encodeURIComponent(eventId)}`, { token: u.accessToken, body: {} });

  it("another user's message increases notification_count; the sender's own does not count for them", async () => {
    const alice = await server.registerUser();
    const bob = await server.registerUser();
    const roomId = await room(alice, bob);
    await send(alice, roomId, { msgtype: 'm.text', body: 'hello' });
    assert.deepEqual(await counts(bob, roomId), { notification_count: 1, highlight_count: 0 });
    assert.deepEqual(await counts(alice, roomId), { notification_count: 0, highlight_count: 0 });
    await send(alice, roomId, { msgtype: 'm.text', body: 'again' });
    assert.deepEqual(await counts(bob, roomId), { notification_count: 2, highlight_count: 0 });
  });

  it('a mention (m.mentions.user_ids) highlights; an @room mention by a sender with enough power highlights everyone', async () => {
    const alice = await server.registerUser();
    const bob = await server.registerUser();
    const carol = await server.registerUser();
    const roomId = await room(alice, bob, carol);
    await send(alice, roomId, { msgtype: 'm.text', body: 'hi bob', 'm.mentions': { user_ids: [bob.userId] } });
    assert.deepEqual(await counts(bob, roomId), { notification_count: 1, highlight_count: 1 });
    assert.deepEqual(await counts(carol, roomId), { notification_count: 1, highlight_count: 0 });
    // The creator has power 100 >= notifications.room (50).
    await send(alice, roomId, { msgtype: 'm.text', body: 'hi all', 'm.mentions': { room: true } });
    assert.deepEqual(await counts(carol, roomId), { notification_count: 2, highlight_count: 1 });
    // Bob has power 0: his @room does not highlight.
    await send(bob, roomId, { msgtype: 'm.text', body: 'hi all', 'm.mentions': { room: true } });
    assert.deepEqual(await counts(carol, roomId), { notification_count: 3, highlight_count: 1 });
  });

  it('a read receipt (m.read or m.read.private) clears the counts up to and including its event', async () => {
    const alice = await server.registerUser();
    const bob = await server.registerUser();
    const roomId = await room(alice, bob);
    const first = await send(alice, roomId, { msgtype: 'm.text', body: 'one', 'm.mentions': { user_ids: [bob.userId] } });
    await send(alice, roomId, { msgtype: 'm.text', body: 'two' });
    const third = await send(alice, roomId, { msgtype: 'm.text', body: 'three' });
    assert.deepEqual(await counts(bob, roomId), { notification_count: 3, highlight_count: 1 });
    assert.equal((await receipt(bob, roomId, first)).status, 200);
    assert.deepEqual(await counts(bob, roomId), { notification_count: 2, highlight_count: 0 });
    assert.equal((await receipt(bob, roomId, third, 'm.read.private')).status, 200);
    assert.deepEqual(await counts(bob, roomId), { notification_count: 0, highlight_count: 0 });
    // An older receipt does not bring notifications back.
    assert.equal((await receipt(bob, roomId, first)).status, 200);
    assert.deepEqual(await counts(bob, roomId), { notification_count: 0, highlight_count: 0 });
  });

  it('onReadUpTo only moves forward', async () => {
    const alice = await server.registerUser();
    const bob = await server.registerUser();
    const roomId = await room(alice, bob);
    await send(alice, roomId, { msgtype: 'm.text', body: 'one' });
    const push = server.hs.ctx.services.push;
    const head = (await server.hs.ctx.services.rooms.getTimeline({ roomId, fromPos: 0, toPos: Number.MAX_SAFE_INTEGER, limit: 1, viewer: bob })).events;
    const pos = (await server.hs.ctx.services.rooms.getEventStreamPos(head[head.length - 1].event_id))!;
    await push.onReadUpTo(bob.userId, roomId, pos);
    assert.deepEqual(await counts(bob, roomId), { notification_count: 0, highlight_count: 0 });
    await push.onReadUpTo(bob.userId, roomId, 1);
    assert.deepEqual(await counts(bob, roomId), { notification_count: 0, highlight_count: 0 });
  });

  it("sending a message marks the room read for the sender (spec: 'either by using the API or by sending an event')", async () => {
    const alice = await server.registerUser();
    const bob = await server.registerUser();
    const roomId = await room(alice, bob);
    await send(bob, roomId, { msgtype: 'm.text', body: 'question?' });
    assert.equal((await counts(alice, roomId))?.notification_count, 1);
    await send(alice, roomId, { msgtype: 'm.text', body: 'answer' });
    assert.equal((await counts(alice, roomId))?.notification_count, 0);
  });

  it('a push rule change applies to the next event (rules cache invalidated)', async () => {
    const alice = await server.registerUser();
    const bob = await server.registerUser();
    const roomId = await room(alice, bob);
    await send(alice, roomId, { msgtype: 'm.text', body: 'one' });
    assert.equal((await counts(bob, roomId))?.notification_count, 1);
    const mute = await server.request('PUT', `${V3}/pushrules/global/room/${encodeURIComponent(roomId)}`, { token: bob.accessToken, body: { actions: [] } });
    assert.equal(mute.status, 200);
    await send(alice, roomId, { msgtype: 'm.text', body: 'two' });
    assert.equal((await counts(bob, roomId))?.notification_count, 1, 'muted room: no new notification');
    await server.request('DELETE', `${V3}/pushrules/global/room/${encodeURIComponent(roomId)}`, { token: bob.accessToken });
    await send(alice, roomId, { msgtype: 'm.text', body: 'three' });
    assert.equal((await counts(bob, roomId))?.notification_count, 2);
  });

  it('notices (.m.rule.suppress_notices) and edits do not notify', async () => {
    const alice = await server.registerUser();
    const bob = await server.registerUser();
    const roomId = await room(alice, bob);
    const orig = await send(alice, roomId, { msgtype: 'm.text', body: 'x' });
    await send(alice, roomId, { msgtype: 'm.notice', body: 'bot says' });
    await send(alice, roomId, { msgtype: 'm.text', body: '* y', 'm.new_content': { msgtype: 'm.text', body: 'y' }, 'm.relates_to': { rel_type: 'm.replace', event_id: orig } });
    assert.equal((await counts(bob, roomId))?.notification_count, 1);
  });

  it('/sync reports unread_notifications for the room', async () => {
    const alice = await server.registerUser();
    const bob = await server.registerUser();
    const roomId = await room(alice, bob);
    await send(alice, roomId, { msgtype: 'm.text', body: 'hi', 'm.mentions': { user_ids: [bob.userId] } });
    const res = await server.request('GET', `${V3}/sync`, { token: bob.accessToken });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.rooms.join[roomId].unread_notifications, { notification_count: 1, highlight_count: 1 });
  });

  it('GET /notifications lists notifying events newest first with read flags, paginated by next_token; only=highlight filters', async () => {
    const alice = await server.registerUser();
    const bob = await server.registerUser();
    const roomId = await room(alice, bob);
    const e1 = await send(alice, roomId, { msgtype: 'm.text', body: 'one' });
    const e2 = await send(alice, roomId, { msgtype: 'm.text', body: 'two', 'm.mentions': { user_ids: [bob.userId] } });
    const e3 = await send(alice, roomId, { msgtype: 'm.text', body: 'three' });
    await receipt(bob, roomId, e1);

    const page1 = await server.request('GET', `${V3}/notifications?limit=2`, { token: bob.accessToken });
    assert.equal(page1.status, 200);
    assert.deepEqual(page1.body.notifications.map((n: { event: { event_id: string } }) => n.event.event_id), [e3, e2]);
    const n2 = page1.body.notifications[1];
    assert.equal(n2.room_id, roomId);
    assert.equal(n2.read, false);
    assert.equal(n2.event.room_id, undefined, 'events come without room_id');
    assert.ok(n2.actions.includes('notify'));
    assert.ok(n2.actions.some((a: { set_tweak?: string }) => a.set_tweak === 'highlight'));
    assert.equal(typeof n2.ts, 'number');
    assert.equal(typeof page1.body.next_token, 'string');

    const page2 = await server.request('GET', `${V3}/notifications?limit=2&from=${page1.body.next_token}`, { token: bob.accessToken });
    assert.deepEqual(page2.body.notifications.map((n: { event: { event_id: string } }) => n.event.event_id), [e1]);
    assert.equal(page2.body.notifications[0].read, true);
    assert.equal(page2.body.next_token, undefined);

    const hl = await server.request('GET', `${V3}/notifications?only=highlight`, { token: bob.accessToken });
    assert.deepEqual(hl.body.notifications.map((n: { event: { event_id: string } }) => n.event.event_id), [e2]);
    const bad = await server.request('GET', `${V3}/notifications?from=abc`, { token: bob.accessToken });
    assert.equal(bad.status, 400);
  });
});
