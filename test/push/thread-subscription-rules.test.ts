/**
 * MSC4306's push rules over HTTP: served under the `postcontent` kind with their unstable ids,
 * closed to client rules, and evaluated for events in threads with the thread's subscribers as
 * they are when the event is sent (unread counts in /sync show the outcome).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';

const V3 = '/_matrix/client/v3';
const TS = '/_matrix/client/unstable/io.element.msc4306';
const enc = encodeURIComponent;
const UNSUB = '.io.element.msc4306.rule.unsubscribed_thread';
const SUB = '.io.element.msc4306.rule.subscribed_thread';
type Counts = { notification_count: number; highlight_count: number };

describe('MSC4306 thread subscription push rules', { timeout: 120_000 }, () => {
  let server: TestServer;
  let alice: TestUser;
  let bob: TestUser;
  let carol: TestUser;
  let txn = 0;

  const req = (u: TestUser, method: string, path: string, body?: unknown) => server.request(method, path, { token: u.accessToken, body });
  const send = async (roomId: string, content: Record<string, unknown>) => {
    const res = await req(alice, 'PUT', `${V3}/rooms/${enc(roomId)}/send/m.room.message/p${++txn}`, { msgtype: 'm.text', ...content });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.event_id as string;
  };
  const inThread = (roomId: string, root: string, body: string, extra: Record<string, unknown> = {}) =>
    send(roomId, { body, ...extra, 'm.relates_to': { rel_type: 'm.thread', event_id: root, is_falling_back: true, 'm.in_reply_to': { event_id: root } } });
  const counts = async (u: TestUser, roomId: string): Promise<Counts> => {
    const res = await req(u, 'GET', `${V3}/sync?timeout=0`);
    assert.equal(res.status, 200);
    return res.body.rooms.join[roomId].unread_notifications;
  };
  const subscribe = async (u: TestUser, roomId: string, root: string) =>
    assert.equal((await req(u, 'PUT', `${TS}/rooms/${enc(roomId)}/thread/${enc(root)}/subscription`, {})).status, 200);
  const newRoom = async (): Promise<string> => {
    const roomId = (await req(alice, 'POST', `${V3}/createRoom`, { preset: 'public_chat' })).body.room_id as string;
    for (const u of [bob, carol]) assert.equal((await req(u, 'POST', `${V3}/rooms/${enc(roomId)}/join`, {})).status, 200);
    return roomId;
  };
  /** Marks the room read for `u` at `eventId`, so counts start from zero. */
  const readUpTo = async (u: TestUser, roomId: string, eventId: string) =>
    assert.equal((await req(u, 'POST', `${V3}/rooms/${enc(roomId)}/receipt/m.read/${enc(eventId)}`, {})).status, 200);

  before(async () => {
    server = await startTestServer({ config: { push: { thread_subscription_rules: true } } });
    alice = await server.registerUser();
    bob = await server.registerUser();
    carol = await server.registerUser();
  });
  after(async () => {
    await server.stop();
  });

  it('are served under postcontent, in order, and clients may toggle them but not add to the kind', async () => {
    const g = (await req(bob, 'GET', `${V3}/pushrules/`)).body.global;
    assert.deepEqual(
      g.postcontent.map((r: { rule_id: string }) => r.rule_id),
      [UNSUB, SUB],
    );
    assert.deepEqual(g.postcontent[0].conditions, [{ kind: 'io.element.msc4306.thread_subscription', subscribed: false }]);
    assert.deepEqual(g.postcontent[1].actions, ['notify', { set_tweak: 'sound', value: 'default' }]);
    const rule = `${V3}/pushrules/global/postcontent/${enc(SUB)}`;
    assert.deepEqual((await req(bob, 'GET', `${rule}/enabled`)).body, { enabled: true });
    const added = await req(bob, 'PUT', `${V3}/pushrules/global/postcontent/mine`, { actions: ['notify'], conditions: [] });
    assert.equal(added.status, 400);
    assert.equal(added.body.errcode, 'M_INVALID_PARAM');
    assert.equal((await req(bob, 'DELETE', rule)).status, 404);
  });

  it('a thread message notifies its subscribers, even in a room they muted, and not the others unless mentioned', async () => {
    const roomId = await newRoom();
    const root = await send(roomId, { body: 'root' });
    await subscribe(bob, roomId, root);
    // Bob mutes the room: only what a rule before `room` says still notifies him.
    assert.equal((await req(bob, 'PUT', `${V3}/pushrules/global/room/${enc(roomId)}`, { actions: [] })).status, 200);
    for (const u of [bob, carol]) await readUpTo(u, roomId, root);

    await inThread(roomId, root, 'one');
    await inThread(roomId, root, 'two');
    assert.deepEqual(await counts(bob, roomId), { notification_count: 2, highlight_count: 0 });
    assert.deepEqual(await counts(carol, roomId), { notification_count: 0, highlight_count: 0 }, 'not subscribed: thread chatter is no activity');

    await inThread(roomId, root, 'carol?', { 'm.mentions': { user_ids: [carol.userId] } });
    assert.deepEqual(await counts(carol, roomId), { notification_count: 1, highlight_count: 1 }, 'a mention still notifies');

    await send(roomId, { body: 'main timeline' });
    assert.deepEqual(await counts(carol, roomId), { notification_count: 2, highlight_count: 1 });
    assert.deepEqual(await counts(bob, roomId), { notification_count: 3, highlight_count: 0 }, 'the muted room itself stays quiet');
  });

  it('the subscription as it is when the message is sent counts; unsubscribing, or disabling the quiet rule, changes later ones', async () => {
    const roomId = await newRoom();
    const root = await send(roomId, { body: 'root' });
    await subscribe(carol, roomId, root);
    for (const u of [bob, carol]) await readUpTo(u, roomId, root);
    await inThread(roomId, root, 'before');
    assert.equal((await req(carol, 'DELETE', `${TS}/rooms/${enc(roomId)}/thread/${enc(root)}/subscription`)).status, 200);
    await inThread(roomId, root, 'after');
    assert.deepEqual(await counts(carol, roomId), { notification_count: 1, highlight_count: 0 });

    // Without the quiet rule, a thread message falls through to `.m.rule.message` as before MSC4306.
    assert.equal((await req(bob, 'PUT', `${V3}/pushrules/global/postcontent/${enc(UNSUB)}/enabled`, { enabled: false })).status, 200);
    await inThread(roomId, root, 'for everyone');
    assert.deepEqual(await counts(bob, roomId), { notification_count: 1, highlight_count: 0 });
    assert.deepEqual(await counts(carol, roomId), { notification_count: 1, highlight_count: 0 });
  });
});

describe('push.thread_subscription_rules off (the default)', { timeout: 60_000 }, () => {
  let server: TestServer;
  let alice: TestUser;
  let bob: TestUser;

  before(async () => {
    server = await startTestServer();
    alice = await server.registerUser();
    bob = await server.registerUser();
  });
  after(async () => {
    await server.stop();
  });

  it('serves no postcontent rules, and thread messages notify as the spec\'s own rules say', async () => {
    const req = (u: TestUser, method: string, path: string, body?: unknown) => server.request(method, path, { token: u.accessToken, body });
    assert.deepEqual((await req(bob, 'GET', `${V3}/pushrules/`)).body.global.postcontent, []);
    const roomId = (await req(alice, 'POST', `${V3}/createRoom`, { preset: 'public_chat' })).body.room_id as string;
    assert.equal((await req(bob, 'POST', `${V3}/rooms/${enc(roomId)}/join`, {})).status, 200);
    const root = (await req(alice, 'PUT', `${V3}/rooms/${enc(roomId)}/send/m.room.message/r`, { msgtype: 'm.text', body: 'root' })).body.event_id as string;
    assert.equal((await req(bob, 'POST', `${V3}/rooms/${enc(roomId)}/receipt/m.read/${enc(root)}`, {})).status, 200);
    const reply = await req(alice, 'PUT', `${V3}/rooms/${enc(roomId)}/send/m.room.message/t`, {
      msgtype: 'm.text',
      body: 'in the thread',
      'm.relates_to': { rel_type: 'm.thread', event_id: root },
    });
    assert.equal(reply.status, 200);
    const res = await req(bob, 'GET', `${V3}/sync?timeout=0`);
    assert.deepEqual(res.body.rooms.join[roomId].unread_notifications, { notification_count: 1, highlight_count: 0 });
  });
});
