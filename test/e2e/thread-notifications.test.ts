/**
 * Per-thread notification counts with a thread-aware matrix-js-sdk (as
 * Element shows them): the SDK asks for `unread_thread_notifications`, the
 * main timeline counts only its own events, each thread its own, and bob's
 * threaded receipt clears the thread he read and nothing else.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { MatrixClient } from 'matrix-js-sdk';
import { loginAndStart, sdk, stopClients, waitUntil } from '../helpers/matrix-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

describe('per-thread notification counts with matrix-js-sdk', { timeout: 90_000 }, () => {
  let server: TestServer;
  let alice: MatrixClient;
  let bob: MatrixClient;

  before(async () => {
    server = await startTestServer();
    alice = await loginAndStart(server, await server.registerUser('alice'), { threadSupport: true });
    bob = await loginAndStart(server, await server.registerUser('bob'), { threadSupport: true });
  });
  after(async () => {
    await stopClients(alice, bob);
    await server.stop();
  });

  it('thread replies count in their thread, not the main timeline; a thread receipt clears that thread only', async () => {
    const { NotificationCountType, ReceiptType, THREAD_RELATION_TYPE } = await sdk();
    const { room_id: roomId } = await alice.createRoom({ preset: 'public_chat' as never, name: 'kites' });
    await bob.joinRoom(roomId);
    await waitUntil(() => bob.getRoom(roomId)?.getMyMembership() === 'join', 'bob is joined');
    const rootId = (await alice.sendTextMessage(roomId, 'Kites?')).event_id;
    const reply = (body: string) =>
      alice.sendMessage(roomId, rootId, { msgtype: 'm.text', body, 'm.relates_to': { rel_type: THREAD_RELATION_TYPE.name, event_id: rootId } } as never);
    await reply('box kites');
    const last = (await reply('delta kites')).event_id;

    const room = () => bob.getRoom(roomId)!;
    await waitUntil(
      () => room().getThreadUnreadNotificationCount(rootId, NotificationCountType.Total) === 2,
      `bob's client counts 2 in the thread (has ${room()?.getThreadUnreadNotificationCount(rootId, NotificationCountType.Total)})`,
    );
    assert.equal(room().getRoomUnreadNotificationCount(NotificationCountType.Total), 1, 'the main timeline counts only the root');

    const lastEvent = await waitUntil(() => room().findEventById(last), 'bob holds the last reply');
    await bob.sendReceipt(lastEvent, ReceiptType.Read);
    // A new main-timeline message makes the server send counts again: the thread stays read, the root does not.
    await alice.sendTextMessage(roomId, 'anyone?');
    await waitUntil(() => room().getRoomUnreadNotificationCount(NotificationCountType.Total) === 2, 'bob counts two unread in the main timeline');
    assert.equal(room().getThreadUnreadNotificationCount(rootId, NotificationCountType.Total), 0);
    // What the server says, without the SDK in between.
    const filter = encodeURIComponent(JSON.stringify({ room: { timeline: { limit: 1, unread_thread_notifications: true } } }));
    const res = await server.request('GET', `/_matrix/client/v3/sync?timeout=0&filter=${filter}`, { token: bob.getAccessToken()! });
    assert.deepEqual(res.body.rooms.join[roomId].unread_notifications, { notification_count: 2, highlight_count: 0 });
    assert.equal(res.body.rooms.join[roomId].unread_thread_notifications, undefined);
  });
});
