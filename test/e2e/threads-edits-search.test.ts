/**
 * Threads, edits, reactions and search through Hearth with matrix-js-sdk, as
 * Element uses them: a thread with replies and thread receipts, an edit and a
 * reaction seen by a new device through bundled aggregations and /relations,
 * and a search that finds a message but not one sent to a room after the
 * searcher left it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { MatrixClient, MatrixEvent } from 'matrix-js-sdk';
import { type ServerWatch, loginAndStart, sdk, stopClients, waitUntil, waitUntilAsync, watchServer, withTimeout } from '../helpers/matrix-client.js';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';

const STEP = { timeout: 30_000 };

function liveEvent(client: MatrixClient, roomId: string, pred: (e: MatrixEvent) => boolean): MatrixEvent | undefined {
  return client.getRoom(roomId)?.getLiveTimeline().getEvents().find(pred);
}

describe('threads, edits, reactions and search with matrix-js-sdk', { timeout: 120_000 }, () => {
  let server: TestServer;
  let watch: ServerWatch;
  let aliceUser: TestUser;
  let bobUser: TestUser;
  let alice: MatrixClient;
  let bob: MatrixClient;
  let aliceLater: MatrixClient | undefined;
  let roomId: string;
  let rootId: string;
  const replyIds: string[] = [];

  before(async () => {
    server = await startTestServer();
    watch = watchServer(server);
    aliceUser = await server.registerUser(`tes_alice${process.pid}`);
    bobUser = await server.registerUser(`tes_bob${process.pid}`);
    alice = await loginAndStart(server, aliceUser, { threadSupport: true });
    bob = await loginAndStart(server, bobUser, { threadSupport: true });
  });

  after(async () => {
    await stopClients(alice, bob, aliceLater);
    await server?.stop();
    assert.deepEqual(watch.serverErrors, [], 'no request was answered with a 5xx');
  });

  it('alice and bob share a room', STEP, async () => {
    ({ room_id: roomId } = await alice.createRoom({ preset: 'public_chat' as never, name: 'threads' }));
    await waitUntil(() => alice.getRoom(roomId), 'alice sees the room');
    await bob.joinRoom(roomId);
    await waitUntil(() => alice.getRoom(roomId)?.getMember(bobUser.userId)?.membership === 'join', 'alice sees bob join');
  });

  it('a thread with replies from both; each client sees the thread and its replies', STEP, async () => {
    const { THREAD_RELATION_TYPE } = await sdk();
    rootId = (await alice.sendTextMessage(roomId, 'Shall we talk about kites?')).event_id;
    await waitUntil(() => liveEvent(bob, roomId, (e) => e.getId() === rootId), 'bob sees the root');
    const reply = (client: MatrixClient, body: string) =>
      client.sendMessage(roomId, rootId, { msgtype: 'm.text', body, 'm.relates_to': { rel_type: THREAD_RELATION_TYPE.name, event_id: rootId } } as never);
    replyIds.push((await reply(bob, 'Yes, box kites!')).event_id);
    replyIds.push((await reply(alice, 'Delta kites are easier')).event_id);
    replyIds.push((await reply(bob, 'Fine, delta it is')).event_id);

    // Each reply is held as part of the thread, not the SDK's reply count or thread timeline: the
    // SDK adds each live reply to the count it read from the root's summary, and rebuilds the
    // thread's timeline from /relations, so a reply that reaches the summary before the client's
    // sync is counted twice or briefly missing. The server's own summary is checked below.
    for (const client of [alice, bob]) {
      const thread = await waitUntil(() => {
        const room = client.getRoom(roomId);
        const t = room?.getThread(rootId);
        const inThread = replyIds.every((id) => room?.findEventById(id)?.threadRootId === rootId);
        return t && inThread ? t : undefined;
      }, `${client.getUserId()} sees three replies in the thread`, 20_000);
      assert.equal(thread.id, rootId);
    }
    const root = await server.request('GET', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/event/${encodeURIComponent(rootId)}`, { token: aliceUser.accessToken });
    const summary = root.body.unsigned['m.relations']['m.thread'];
    assert.equal(summary.count, 3);
    assert.equal(summary.latest_event.event_id, replyIds[2]);
    assert.equal(summary.current_user_participated, true);
    // The thread replies are not in the main timeline of a thread-aware client.
    assert.equal(liveEvent(alice, roomId, (e) => e.getId() === replyIds[0]), undefined);
  });

  it('thread receipts: bob reads the thread; alice’s client gets the receipt with its thread id', STEP, async () => {
    const { ReceiptType, RoomEvent } = await sdk();
    const reply = await waitUntil(() => bob.getRoom(roomId)?.findEventById(replyIds[1]!), 'bob holds the second reply');
    assert.equal(reply.threadRootId, rootId);
    const seen = new Promise<Record<string, unknown>>((resolve) => {
      alice.on(RoomEvent.Receipt, (event: MatrixEvent) => {
        const mine = event.getContent()[replyIds[1]!]?.[ReceiptType.Read]?.[bobUser.userId];
        if (mine) resolve(mine);
      });
    });
    // The SDK adds the thread's root as thread_id, since the reply is in a thread.
    await bob.sendReceipt(reply, ReceiptType.Read);
    const receipt = await withTimeout(seen, 10_000, 'alice receives bob’s receipt');
    assert.equal(receipt.thread_id, rootId);
    await waitUntil(() => alice.getRoom(roomId)?.getThread(rootId)?.getEventReadUpTo(bobUser.userId, true) === replyIds[1], 'alice’s thread model has bob read up to the second reply');
    // What the server holds: the receipt under the reply, for bob, with the thread's root as thread_id.
    const res = await server.request('GET', `/_matrix/client/v3/sync?timeout=0`, { token: aliceUser.accessToken });
    const receipts = res.body.rooms.join[roomId].ephemeral.events.find((e: { type: string }) => e.type === 'm.receipt');
    assert.equal(receipts.content[replyIds[1]!]['m.read'][bobUser.userId].thread_id, rootId);
  });

  it('an edit and a reaction; a new device sees the thread summary, the edit and the reaction from the server', STEP, async () => {
    const { RelationType, EventType } = await sdk();
    const original = (await alice.sendTextMessage(roomId, 'Kites fly best in April')).event_id;
    await bob.sendEvent(roomId, EventType.Reaction, { 'm.relates_to': { rel_type: RelationType.Annotation, event_id: original, key: '🪁' } } as never);
    const edit = (
      await alice.sendMessage(roomId, {
        msgtype: 'm.text',
        body: '* Kites fly best in March',
        'm.new_content': { msgtype: 'm.text', body: 'Kites fly best in March' },
        'm.relates_to': { rel_type: RelationType.Replace, event_id: original },
      } as never)
    ).event_id;
    // Push the thread and the edited message out of a short initial sync: the server's bundles are what the new device has.
    for (let i = 0; i < 4; i++) await alice.sendTextMessage(roomId, `filler ${i}`);

    aliceLater = await loginAndStart(server, aliceUser, { threadSupport: true, initialSyncLimit: 3 });
    const room = await waitUntil(() => aliceLater!.getRoom(roomId), 'the new device sees the room');
    assert.equal(room.getLiveTimeline().getEvents().some((e) => e.getId() === edit), false, 'the edit is not in the new device’s timeline');

    // Thread list from /threads with the server's summary (count and latest reply).
    // As Element opens the threads panel: the thread list timelines, filled from /threads.
    await room.createThreadsTimelineSets();
    const thread = await waitUntilAsync(async () => {
      await room.fetchRoomThreads();
      const t = room.getThread(rootId);
      return t && t.length === 3 ? t : undefined;
    }, 'the new device lists the thread with three replies');
    assert.equal(thread.rootEvent?.getServerAggregatedRelation<{ count: number }>('m.thread')?.count, 3);
    assert.equal(thread.rootEvent?.getServerAggregatedRelation<{ current_user_participated: boolean }>('m.thread')?.current_user_participated, true);

    // The edited message, fetched and mapped by the SDK, shows the bundled replacement.
    const raw = await aliceLater.fetchRoomEvent(roomId, original);
    const mapped = aliceLater.getEventMapper()(raw);
    assert.equal(mapped.replacingEventId(), edit);
    assert.equal(mapped.getContent().body, 'Kites fly best in March');
    assert.equal(mapped.getOriginalContent().body, 'Kites fly best in April');

    // Reactions are not aggregated by the server (m.annotation): the SDK reads them through /relations.
    const reactions = await aliceLater.relations(roomId, original, RelationType.Annotation, EventType.Reaction);
    assert.deepEqual(reactions.events.map((e) => e.getRelation()?.key), ['🪁']);
    assert.equal(reactions.events[0]!.getSender(), bobUser.userId);
  });

  it('search finds a message, and not one sent to a room after the searcher left', STEP, async () => {
    const other = (await alice.createRoom({ preset: 'public_chat' as never })).room_id;
    await bob.joinRoom(other);
    const before = (await alice.sendTextMessage(other, 'The harbour kite festival is on Sunday')).event_id;
    await waitUntil(() => liveEvent(bob, other, (e) => e.getId() === before), 'bob sees the message');
    await bob.leave(other);
    await waitUntil(() => alice.getRoom(other)?.getMember(bobUser.userId)?.membership === 'leave', 'alice sees bob leave');
    await alice.sendTextMessage(other, 'Secret: the festival moves to Saturday');

    const found = await bob.searchRoomEvents({ term: 'festival' });
    assert.deepEqual(found.results.map((r) => r.context.getEvent().getId()), [before]);
    assert.ok(found.highlights.includes('festival'));
    // The SDK lays the result's context out around it (the SDK asks for one event either side).
    const around = found.results[0]!.context.getTimeline();
    assert.equal(around.length, 3, 'one event either side');
    assert.equal(around[1]!.getId(), before);
    const stamps = around.map((e) => e.getTs());
    assert.deepEqual([...stamps].sort((a, b) => a - b), stamps);
    const forAlice = await alice.searchRoomEvents({ term: 'festival' });
    assert.equal(forAlice.results.length, 2);
    const kites = await bob.searchRoomEvents({ term: 'kites' });
    assert.ok(kites.results.some((r) => r.context.getEvent().getId() === replyIds[0]), 'thread replies are searchable');
  });
});
