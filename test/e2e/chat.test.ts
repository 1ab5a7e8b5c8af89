/**
 * Two people chat through Hearth with matrix-js-sdk, as they would in Element:
 * invites and joins seen through /sync, messages in order, profile changes,
 * typing, read receipts, unread and highlight counts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { MatrixClient, MatrixEvent } from 'matrix-js-sdk';
import { type ServerWatch, loginAndStart, sdk, stopClients, waitUntil, watchServer } from '../helpers/matrix-client.js';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';

const STEP = { timeout: 20_000 };

function bodies(client: MatrixClient, roomId: string): string[] {
  const room = client.getRoom(roomId);
  if (!room) return [];
  return room
    .getLiveTimeline()
    .getEvents()
    .filter((e) => e.getType() === 'm.room.message')
    .map((e) => String(e.getContent().body));
}

function findMessage(client: MatrixClient, roomId: string, body: string): MatrixEvent | undefined {
  return client
    .getRoom(roomId)
    ?.getLiveTimeline()
    .getEvents()
    .find((e) => e.getType() === 'm.room.message' && e.getContent().body === body);
}

function timelineEventById(client: MatrixClient, roomId: string, eventId: string): MatrixEvent | undefined {
  return client.getRoom(roomId)?.getLiveTimeline().getEvents().find((e) => e.getId() === eventId);
}

/** The unread counts the server itself reports for `roomId` in a fresh /sync. */
async function serverUnreadCounts(server: TestServer, token: string, roomId: string): Promise<{ notification_count?: number; highlight_count?: number }> {
  const filter = encodeURIComponent(JSON.stringify({ room: { timeline: { limit: 1 } }, presence: { not_types: ['*'] } }));
  const res = await server.request('GET', `/_matrix/client/v3/sync?timeout=0&filter=${filter}`, { token });
  assert.equal(res.status, 200, `GET /sync: ${JSON.stringify(res.body)}`);
  const joined = res.body?.rooms?.join?.[roomId];
  assert.ok(joined, `room ${roomId} is in rooms.join of /sync`);
  return joined.unread_notifications ?? {};
}

describe('two people chat with matrix-js-sdk', { timeout: 60_000 }, () => {
  let server: TestServer;
  let watch: ServerWatch;
  let aliceUser: TestUser;
  let bobUser: TestUser;
  let alice: MatrixClient;
  let bob: MatrixClient;
  let roomId: string;
  let bob2: MatrixClient | undefined;

  before(async () => {
    server = await startTestServer();
    watch = watchServer(server);
  });

  after(async () => {
    await stopClients(alice, bob, bob2);
    await server?.stop();
  });

  it('alice and bob log in with matrix-js-sdk and their first sync completes', STEP, async () => {
    aliceUser = await server.registerUser(`alice${process.pid}`);
    bobUser = await server.registerUser(`bob${process.pid}`);
    alice = await loginAndStart(server, aliceUser);
    bob = await loginAndStart(server, bobUser);
    assert.equal(alice.getUserId(), aliceUser.userId);
    assert.equal(bob.getUserId(), bobUser.userId);
    assert.ok(alice.getDeviceId(), 'login gave alice a device id');
    assert.notEqual(alice.getDeviceId(), aliceUser.deviceId, 'the SDK login made a new device');
  });

  it('alice creates a room and invites bob; bob sees the invite through sync', STEP, async () => {
    const { RoomMemberEvent, ClientEvent } = await sdk();
    const seenMembership: string[] = [];
    const seenRooms: string[] = [];
    bob.on(RoomMemberEvent.Membership, (_ev, member) => {
      if (member.userId === bobUser.userId) seenMembership.push(`${member.roomId}:${member.membership}`);
    });
    bob.on(ClientEvent.Room, (room) => seenRooms.push(room.roomId));

    const created = await alice.createRoom({ name: 'Tea party', topic: 'Why is a raven like a writing desk?' });
    roomId = created.room_id;
    // Room version 12 ids are the create event's reference hash, without a server name.
    assert.match(roomId, /^![A-Za-z0-9_\-+/]+(:localhost)?$/);
    await waitUntil(() => alice.getRoom(roomId)?.getMyMembership() === 'join', 'alice sees herself joined');
    await alice.invite(roomId, bobUser.userId);

    await waitUntil(() => bob.getRoom(roomId)?.getMyMembership() === 'invite', 'bob sees the invite');
    assert.ok(seenRooms.includes(roomId), 'bob got a Room event for the invite');
    assert.ok(seenMembership.includes(`${roomId}:invite`), `bob got RoomMember.membership invite (saw ${seenMembership})`);
    const room = bob.getRoom(roomId)!;
    assert.equal(room.name, 'Tea party', 'the invite carries the room name (stripped state)');
    const inviter = room.getMember(bobUser.userId)?.events.member?.getSender();
    assert.equal(inviter, aliceUser.userId, 'the invite is from alice');
  });

  it('bob joins the room and both see each other joined', STEP, async () => {
    assert.ok(roomId, 'an earlier step failed to make the room');
    await bob.joinRoom(roomId);
    await waitUntil(() => bob.getRoom(roomId)?.getMyMembership() === 'join', 'bob sees himself joined');
    await waitUntil(() => alice.getRoom(roomId)?.getMember(bobUser.userId)?.membership === 'join', 'alice sees bob joined');
    assert.deepEqual(
      bob.getRoom(roomId)!.getJoinedMembers().map((m) => m.userId).sort(),
      [aliceUser.userId, bobUser.userId].sort(),
    );
    assert.equal(bob.getRoom(roomId)!.currentState.getStateEvents('m.room.topic', '')?.getContent().topic, 'Why is a raven like a writing desk?');
  });

  it('alice and bob exchange messages and both timelines show them in order', STEP, async () => {
    assert.ok(roomId, 'an earlier step failed to make the room');
    await alice.sendTextMessage(roomId, 'Have some wine');
    await waitUntil(() => bodies(bob, roomId).includes('Have some wine'), 'bob sees the first message');
    await bob.sendTextMessage(roomId, "I don't see any wine");
    await waitUntil(() => bodies(alice, roomId).includes("I don't see any wine"), 'alice sees the reply');
    await alice.sendTextMessage(roomId, "There isn't any");

    const expected = ['Have some wine', "I don't see any wine", "There isn't any"];
    await waitUntil(() => bodies(bob, roomId).length >= 3 && bodies(alice, roomId).length >= 3, 'both see three messages');
    assert.deepEqual(bodies(alice, roomId), expected);
    assert.deepEqual(bodies(bob, roomId), expected);
    assert.equal(findMessage(bob, roomId, "I don't see any wine")?.getSender(), bobUser.userId);
    assert.equal(findMessage(bob, roomId, 'Have some wine')?.getSender(), aliceUser.userId);
    // The local echo was replaced by the server's copy: a real event id, not a txn id.
    assert.match(findMessage(alice, roomId, "There isn't any")!.getId()!, /^\$/);
  });

  it('alice changes her display name and bob sees it', STEP, async () => {
    assert.ok(roomId, 'an earlier step failed to make the room');
    await alice.setDisplayName('Alice Liddell');
    await waitUntil(() => bob.getRoom(roomId)?.getMember(aliceUser.userId)?.name === 'Alice Liddell', "bob sees alice's new name in the room");
    const profile = await bob.getProfileInfo(aliceUser.userId);
    assert.equal(profile.displayname, 'Alice Liddell');
  });

  it('alice types and bob sees her typing, then stop typing', STEP, async () => {
    assert.ok(roomId, 'an earlier step failed to make the room');
    const { RoomMemberEvent } = await sdk();
    const seen: boolean[] = [];
    bob.on(RoomMemberEvent.Typing, (_ev, member) => {
      if (member.roomId === roomId && member.userId === aliceUser.userId) seen.push(member.typing);
    });
    await alice.sendTyping(roomId, true, 20_000);
    await waitUntil(() => seen.includes(true), 'bob gets RoomMember.typing for alice');
    assert.equal(bob.getRoom(roomId)!.getMember(aliceUser.userId)!.typing, true);
    await alice.sendTyping(roomId, false, 0);
    await waitUntil(() => seen.at(-1) === false, 'bob sees alice stop typing');
    assert.equal(bob.getRoom(roomId)!.getMember(aliceUser.userId)!.typing, false);
  });

  it('bob reads the latest message and alice sees his read receipt', STEP, async () => {
    assert.ok(roomId, 'an earlier step failed to make the room');
    const { RoomEvent, ReceiptType } = await sdk();
    await alice.sendTextMessage(roomId, 'Your hair wants cutting');
    await waitUntil(() => findMessage(bob, roomId, 'Your hair wants cutting'), 'bob sees the message');
    const receiptEvents: unknown[] = [];
    alice.on(RoomEvent.Receipt, (event, room) => {
      if (room.roomId === roomId) receiptEvents.push(event.getContent());
    });
    await bob.sendReadReceipt(findMessage(bob, roomId, 'Your hair wants cutting')!, ReceiptType.Read);

    const onAlice = findMessage(alice, roomId, 'Your hair wants cutting')!;
    const room = alice.getRoom(roomId)!;
    await waitUntil(
      () => room.getReceiptsForEvent(onAlice).some((r) => r.userId === bobUser.userId && r.type === ReceiptType.Read),
      "alice sees bob's m.read receipt on the message",
    );
    assert.ok(receiptEvents.length > 0, 'alice got a Room.receipt event');
    const content = JSON.stringify(receiptEvents);
    assert.ok(content.includes(onAlice.getId()!) && content.includes(bobUser.userId), `receipt content names the event and bob: ${content}`);
  });

  it("bob's unread count rises when alice writes and drops to 0 once he reads", STEP, async () => {
    assert.ok(roomId, 'an earlier step failed to make the room');
    const { NotificationCountType, ReceiptType } = await sdk();
    const bobToken = bob.getAccessToken()!;
    const room = bob.getRoom(roomId)!;
    assert.equal((await serverUnreadCounts(server, bobToken, roomId)).notification_count, 0, 'nothing unread after his receipt');

    await alice.sendTextMessage(roomId, 'Why is a raven like a writing desk?');
    await alice.sendTextMessage(roomId, 'Have you guessed the riddle yet?');
    await waitUntil(() => room.getUnreadNotificationCount(NotificationCountType.Total) === 2, `bob's SDK shows 2 unread (has ${room.getUnreadNotificationCount(NotificationCountType.Total)})`);
    const before = await serverUnreadCounts(server, bobToken, roomId);
    assert.equal(before.notification_count, 2, 'the server counts 2 notifying messages');
    assert.equal(before.highlight_count, 0, 'no highlight: nobody mentioned bob');

    await bob.sendReadReceipt(findMessage(bob, roomId, 'Have you guessed the riddle yet?')!, ReceiptType.Read);
    await waitUntil(() => room.getUnreadNotificationCount(NotificationCountType.Total) === 0, "bob's SDK shows 0 unread after reading");
    const afterRead = await serverUnreadCounts(server, bobToken, roomId);
    assert.equal(afterRead.notification_count, 0, 'the server reset the count after the receipt');
  });

  it("bob's read receipt clears his unread count in the very sync that delivers it (20 rounds, raw API)", STEP, async () => {
    assert.ok(roomId, 'an earlier step failed to make the room');
    // A client shows the count of the last sync that named the room: if the sync woken by the
    // receipt still carries the old count, nothing later corrects it until the next message.
    const r = encodeURIComponent(roomId);
    const get = (path: string) => server.request('GET', path, { token: bobUser.accessToken });
    let since = (await get('/_matrix/client/v3/sync?timeout=0')).body.next_batch as string;
    const stale: string[] = [];
    for (let i = 0; i < 20; i++) {
      let last = '';
      for (const n of [1, 2]) {
        const res = await server.request('PUT', `/_matrix/client/v3/rooms/${r}/send/m.room.message/unread-${i}-${n}`, {
          token: aliceUser.accessToken,
          body: { msgtype: 'm.text', body: `unread ${i}.${n}` },
        });
        assert.equal(res.status, 200);
        last = res.body.event_id;
      }
      since = (await get(`/_matrix/client/v3/sync?timeout=0&since=${encodeURIComponent(since)}`)).body.next_batch;
      const poll = get(`/_matrix/client/v3/sync?timeout=5000&since=${encodeURIComponent(since)}`);
      await new Promise((res) => setTimeout(res, 20));
      const receipt = await server.request('POST', `/_matrix/client/v3/rooms/${r}/receipt/m.read/${encodeURIComponent(last)}`, { token: bobUser.accessToken, body: {} });
      assert.equal(receipt.status, 200);
      const woken = (await poll).body;
      since = woken.next_batch;
      const joined = woken.rooms?.join?.[roomId];
      const count = joined?.unread_notifications?.notification_count;
      if (joined && count !== 0) stale.push(`round ${i}: the sync with the receipt says notification_count=${count}`);
    }
    assert.deepEqual(stale, []);
  });

  it('alice mentions bob and bob gets a highlight', STEP, async () => {
    assert.ok(roomId, 'an earlier step failed to make the room');
    const { NotificationCountType } = await sdk();
    const room = bob.getRoom(roomId)!;
    await alice.sendMessage(roomId, {
      msgtype: 'm.text',
      body: 'bob: no, I give it up',
      'm.mentions': { user_ids: [bobUser.userId] },
    } as never);
    await waitUntil(() => findMessage(bob, roomId, 'bob: no, I give it up'), 'bob sees the mention');
    await waitUntil(() => room.getUnreadNotificationCount(NotificationCountType.Highlight) >= 1, 'bob sees a highlight');
    const counts = await serverUnreadCounts(server, bob.getAccessToken()!, roomId);
    assert.equal(counts.highlight_count, 1, 'the server counts one highlight (.m.rule.is_user_mention)');
    assert.equal(counts.notification_count, 1);
    // The SDK agrees that this event highlights, from the push rules the server gave it.
    const actions = bob.getPushActionsForEvent(findMessage(bob, roomId, 'bob: no, I give it up')!);
    assert.equal(actions?.tweaks?.highlight, true);
  });

  it('alice edits a message and bob sees the new text', STEP, async () => {
    assert.ok(roomId, 'an earlier step failed to make the room');
    const { event_id } = await alice.sendTextMessage(roomId, 'Twinkle, twinkle, little bat');
    await waitUntil(() => timelineEventById(bob, roomId, event_id), 'bob sees the original');
    await alice.sendMessage(roomId, {
      msgtype: 'm.text',
      body: '* Twinkle, twinkle, little star',
      'm.new_content': { msgtype: 'm.text', body: 'Twinkle, twinkle, little star' },
      'm.relates_to': { rel_type: 'm.replace', event_id },
    } as never);
    const original = timelineEventById(bob, roomId, event_id)!;
    await waitUntil(() => original.replacingEvent(), "bob's copy of the message is replaced by the edit");
    assert.equal(original.getContent().body, 'Twinkle, twinkle, little star');
    assert.equal(original.replacingEvent()!.getSender(), aliceUser.userId);
  });

  it('alice redacts a message and bob sees it removed', STEP, async () => {
    assert.ok(roomId, 'an earlier step failed to make the room');
    const { event_id } = await alice.sendTextMessage(roomId, 'Off with her head!');
    await waitUntil(() => timelineEventById(bob, roomId, event_id), 'bob sees the message');
    await alice.redactEvent(roomId, event_id, undefined, { reason: 'too harsh' });
    await waitUntil(() => timelineEventById(bob, roomId, event_id)?.isRedacted(), "bob's copy is redacted");
    const ev = timelineEventById(bob, roomId, event_id)!;
    assert.deepEqual(ev.getContent(), {}, 'the redacted content is gone');
    // The server's copy is redacted too.
    const stored = await server.request('GET', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/event/${encodeURIComponent(event_id)}`, {
      token: bobUser.accessToken,
    });
    assert.equal(stored.status, 200);
    assert.deepEqual(stored.body.content, {});
    assert.equal(stored.body.unsigned?.redacted_because?.type, 'm.room.redaction');
  });

  it('bob signs in on a new device (lazy-loaded members, short first sync) and scrolls back through the whole history', STEP, async () => {
    assert.ok(roomId, 'an earlier step failed to make the room');
    const { Direction } = await sdk();
    for (let i = 1; i <= 30; i++) await alice.sendTextMessage(roomId, `line ${i}`);
    bob2 = await loginAndStart(server, bobUser, { initialSyncLimit: 5, lazyLoadMembers: true });
    const room = await waitUntil(() => bob2!.getRoom(roomId), 'the new device sees the room');
    // With lazy loading the SDK fetches the member list from /members when it needs it.
    await room.loadMembersIfNeeded();
    assert.deepEqual(room.getJoinedMembers().map((m) => m.userId).sort(), [aliceUser.userId, bobUser.userId].sort());
    assert.equal(room.getMember(aliceUser.userId)?.name, 'Alice Liddell', "alice's current display name");
    assert.equal(room.name, 'Tea party');
    const live = () => bodies(bob2!, roomId);
    assert.ok(live().length <= 5, `the first sync is limited to 5 events (got ${live().length} messages)`);
    // Element paginates until the server says there is nothing before (no `end` token).
    let pages = 0;
    while (pages++ < 30 && (await bob2.paginateEventTimeline(room.getLiveTimeline(), { backwards: true, limit: 10 })));
    assert.ok(pages < 30, 'pagination ends');
    const all = live();
    const lines = all.filter((b) => b.startsWith('line '));
    assert.deepEqual(lines, Array.from({ length: 30 }, (_, i) => `line ${i + 1}`), 'every line once, in order');
    assert.equal(all[0], 'Have some wine', 'back to the first message of the room');
    assert.equal(new Set(room.getLiveTimeline().getEvents().map((e) => e.getId())).size, room.getLiveTimeline().getEvents().length, 'no event twice');
    assert.equal(room.getLiveTimeline().getEvents()[0].getType(), 'm.room.create', 'pagination reached the start of the room');
    assert.equal(room.getLiveTimeline().getPaginationToken(Direction.Backward), null, 'and the SDK knows there is nothing before it');
  });

  it('bob leaves the room and alice sees him go', STEP, async () => {
    assert.ok(roomId, 'an earlier step failed to make the room');
    await bob.leave(roomId);
    await waitUntil(() => alice.getRoom(roomId)?.getMember(bobUser.userId)?.membership === 'leave', 'alice sees bob leave');
    await waitUntil(() => bob.getRoom(roomId)?.getMyMembership() === 'leave', 'bob sees himself out');
    assert.deepEqual(alice.getRoom(roomId)!.getJoinedMembers().map((m) => m.userId), [aliceUser.userId]);
  });

  it('no request the clients made was answered with a 5xx', () => {
    if (watch.unrecognized.size) console.log(`# chat: the SDK asked for endpoints Hearth does not serve: ${[...watch.unrecognized].sort().join(', ')}`);
    assert.deepEqual(watch.serverErrors, []);
  });
});
