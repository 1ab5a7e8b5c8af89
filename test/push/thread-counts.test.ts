/**
 * Per-thread unread counts (spec: "Threaded read receipts", sync.yaml
 * `unread_thread_notifications`): with the filter flag, the main timeline's
 * counts leave out thread events and each thread has its own; a threaded
 * receipt clears only its thread, an unthreaded one everything up to it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';

const V3 = '/_matrix/client/v3';
const enc = encodeURIComponent;
type Counts = { notification_count: number; highlight_count: number };

describe('per-thread unread counts', () => {
  let server: TestServer;
  let alice: TestUser;
  let bob: TestUser;
  let roomId: string;
  let rootA: string;
  let rootB: string;
  let txn = 0;

  const req = (u: TestUser, method: string, path: string, body?: unknown) => server.request(method, path, { token: u.accessToken, body });
  const send = async (content: Record<string, unknown>) => {
    const res = await req(alice, 'PUT', `${V3}/rooms/${enc(roomId)}/send/m.room.message/t${++txn}`, { msgtype: 'm.text', ...content });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.event_id as string;
  };
  const inThread = (root: string, body: string, extra: Record<string, unknown> = {}) =>
    send({ body, ...extra, 'm.relates_to': { rel_type: 'm.thread', event_id: root, is_falling_back: true, 'm.in_reply_to': { event_id: root } } });
  const counts = async (threads: boolean): Promise<{ main: Counts; threads: Record<string, Counts> | undefined }> => {
    const filter = enc(JSON.stringify({ room: { timeline: { limit: 1, unread_thread_notifications: threads } } }));
    const res = await req(bob, 'GET', `${V3}/sync?timeout=0&filter=${filter}`);
    assert.equal(res.status, 200);
    const room = res.body.rooms.join[roomId];
    return { main: room.unread_notifications, threads: room.unread_thread_notifications };
  };
  const receipt = (eventId: string, threadId?: string) =>
    req(bob, 'POST', `${V3}/rooms/${enc(roomId)}/receipt/m.read/${enc(eventId)}`, threadId === undefined ? {} : { thread_id: threadId });

  before(async () => {
    server = await startTestServer();
    alice = await server.registerUser();
    bob = await server.registerUser();
    roomId = (await req(alice, 'POST', `${V3}/createRoom`, { preset: 'public_chat' })).body.room_id;
    assert.equal((await req(bob, 'POST', `${V3}/rooms/${enc(roomId)}/join`, {})).status, 200);
    rootA = await send({ body: 'root A' });
    rootB = await send({ body: 'root B' });
    await inThread(rootA, 'a1');
    await inThread(rootA, 'a2');
    await inThread(rootB, 'b1 mentions bob', { 'm.mentions': { user_ids: [bob.userId] } });
    await send({ body: 'main 3' });
  });
  after(async () => {
    await server.stop();
  });

  it('without the filter flag, the room count holds every event; no per-thread counts', async () => {
    const c = await counts(false);
    assert.deepEqual(c.main, { notification_count: 6, highlight_count: 1 });
    assert.equal(c.threads, undefined);
  });

  it('with unread_thread_notifications, the main timeline leaves thread events out and each thread counts its own', async () => {
    const c = await counts(true);
    assert.deepEqual(c.main, { notification_count: 3, highlight_count: 0 });
    assert.deepEqual(c.threads, {
      [rootA]: { notification_count: 2, highlight_count: 0 },
      [rootB]: { notification_count: 1, highlight_count: 1 },
    });
  });

  it('a receipt for one thread clears that thread only; "main" clears the main timeline only', async () => {
    const a2 = (await req(bob, 'GET', `${V3}/rooms/${enc(roomId)}/messages?dir=b&limit=10`)).body.chunk.find(
      (e: { content: { body?: string } }) => e.content.body === 'a2',
    ).event_id as string;
    assert.equal((await receipt(a2, rootA)).status, 200);
    let c = await counts(true);
    assert.deepEqual(c.main, { notification_count: 3, highlight_count: 0 });
    assert.deepEqual(c.threads, { [rootB]: { notification_count: 1, highlight_count: 1 } });
    // Without the flag the room's count is what is still unread in any thread.
    assert.deepEqual((await counts(false)).main, { notification_count: 4, highlight_count: 1 });

    assert.equal((await receipt(rootB, 'main')).status, 200);
    c = await counts(true);
    // rootA and rootB are read in the main timeline; 'main 3' is not.
    assert.deepEqual(c.main, { notification_count: 1, highlight_count: 0 });
    assert.deepEqual(c.threads, { [rootB]: { notification_count: 1, highlight_count: 1 } });
  });

  it('a threaded receipt on an event outside its thread is refused with M_INVALID_PARAM', async () => {
    const other = await receipt(rootB, rootA);
    assert.equal(other.status, 400, JSON.stringify(other.body));
    assert.equal(other.body.errcode, 'M_INVALID_PARAM');
    const inA = (await req(bob, 'GET', `${V3}/rooms/${enc(roomId)}/messages?dir=b&limit=20`)).body.chunk.find(
      (e: { content: { body?: string } }) => e.content.body === 'a1',
    ).event_id as string;
    const res = await receipt(inA, 'main');
    assert.equal(res.status, 400);
    assert.equal(res.body.errcode, 'M_INVALID_PARAM');
    assert.equal((await receipt(rootA, rootA)).status, 200, 'the root is in its own thread');
  });

  it('new thread events count again after the thread receipt; an unthreaded receipt clears everything up to it', async () => {
    const a3 = await inThread(rootA, 'a3');
    let c = await counts(true);
    assert.deepEqual(c.threads?.[rootA], { notification_count: 1, highlight_count: 0 });
    assert.equal((await receipt(a3)).status, 200);
    c = await counts(true);
    assert.deepEqual(c.main, { notification_count: 0, highlight_count: 0 });
    assert.equal(c.threads, undefined);
    assert.deepEqual((await counts(false)).main, { notification_count: 0, highlight_count: 0 });
  });

  it('replying in a thread marks that thread read for the one replying, not the main timeline', async () => {
    await inThread(rootB, 'b2');
    await send({ body: 'main 4' });
    let c = await counts(true);
    assert.deepEqual(c.main, { notification_count: 1, highlight_count: 0 });
    assert.deepEqual(c.threads, { [rootB]: { notification_count: 1, highlight_count: 0 } });
    const mine = await req(bob, 'PUT', `${V3}/rooms/${enc(roomId)}/send/m.room.message/bob1`, {
      msgtype: 'm.text',
      body: 'b3 from bob',
      'm.relates_to': { rel_type: 'm.thread', event_id: rootB, is_falling_back: true, 'm.in_reply_to': { event_id: rootB } },
    });
    assert.equal(mine.status, 200);
    c = await counts(true);
    assert.deepEqual(c.main, { notification_count: 1, highlight_count: 0 });
    assert.equal(c.threads, undefined);
  });
});
