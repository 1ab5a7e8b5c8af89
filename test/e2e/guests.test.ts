/**
 * Guests with matrix-js-sdk, as a web client lets a visitor in without an
 * account: registerGuest, peekInRoom into a world-readable room (room
 * initialSync, then the /events?room_id= long-poll), and a guest that syncs
 * and joins a room whose guest access is can_join, talking with a member.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { MatrixClient } from 'matrix-js-sdk';
import { type ServerWatch, createSdkClient, loginAndStart, sdk, startSdkClient, stopClients, waitUntil, watchServer } from '../helpers/matrix-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

function bodies(client: MatrixClient, roomId: string): string[] {
  return (
    client
      .getRoom(roomId)
      ?.getLiveTimeline()
      .getEvents()
      .filter((e) => e.getType() === 'm.room.message')
      .map((e) => String(e.getContent().body)) ?? []
  );
}

describe('guests with matrix-js-sdk', { timeout: 90_000 }, () => {
  let server: TestServer;
  let watch: ServerWatch;
  let alice: MatrixClient;
  let peeker: MatrixClient | undefined;
  let guest: MatrixClient | undefined;

  async function guestClient(): Promise<MatrixClient> {
    const { createClient } = await sdk();
    const anon = createClient({ baseUrl: server.url });
    const creds = await anon.registerGuest({ body: { initial_device_display_name: 'visitor' } });
    anon.stopClient();
    const c = await createSdkClient(server.url, { userId: creds.user_id, accessToken: creds.access_token!, deviceId: creds.device_id! });
    c.setGuest(true);
    return c;
  }

  before(async () => {
    server = await startTestServer();
    watch = watchServer(server);
    const user = await server.registerUser('alice');
    alice = await loginAndStart(server, user);
  });
  after(async () => {
    await stopClients(alice, peeker, guest);
    await server.stop();
  });

  it('a guest peeks into a world-readable room and sees new messages arrive', async () => {
    const { room_id: roomId } = await alice.createRoom({
      name: 'Open window',
      preset: 'public_chat' as never,
      initial_state: [{ type: 'm.room.history_visibility', state_key: '', content: { history_visibility: 'world_readable' } }],
    });
    await alice.sendTextMessage(roomId, 'already here');
    peeker = await guestClient();
    const room = await peeker.peekInRoom(roomId);
    assert.equal(room.roomId, roomId);
    assert.equal(room.name, 'Open window');
    assert.ok(bodies(peeker, roomId).includes('already here'), `peeked timeline: ${bodies(peeker, roomId).join(', ')}`);
    // The peek poll (/events?room_id=) is waiting now; a new message wakes it.
    await new Promise((r) => setTimeout(r, 300));
    await alice.sendTextMessage(roomId, 'live while peeking');
    await waitUntil(() => bodies(peeker!, roomId).includes('live while peeking'), 'the peeking guest sees the new message', 15_000);
    peeker.stopPeeking();
  });

  it('a guest cannot peek into a room that is not world-readable', async () => {
    const { room_id: roomId } = await alice.createRoom({ preset: 'private_chat' as never });
    const c = peeker ?? (await guestClient());
    await assert.rejects(c.peekInRoom(roomId), (e: { httpStatus?: number }) => e.httpStatus === 403);
  });

  it('a syncing guest joins a can_join room and talks with a member; a forbidden room refuses it', async () => {
    const { room_id: roomId } = await alice.createRoom({ name: 'Guests welcome', preset: 'public_chat' as never });
    await alice.setGuestAccess(roomId, { allowJoin: true, allowRead: false });
    const { room_id: closed } = await alice.createRoom({ preset: 'public_chat' as never });
    guest = await guestClient();
    await startSdkClient(guest);
    await assert.rejects(guest.joinRoom(closed), (e: { errcode?: string }) => e.errcode === 'M_GUEST_ACCESS_FORBIDDEN');
    await guest.joinRoom(roomId);
    await waitUntil(() => guest!.getRoom(roomId)?.getMyMembership() === 'join', 'the guest is joined in its sync');
    await guest.sendTextMessage(roomId, 'hello from a guest');
    await waitUntil(() => bodies(alice, roomId).includes('hello from a guest'), 'alice sees the guest');
    await alice.sendTextMessage(roomId, 'welcome');
    await waitUntil(() => bodies(guest!, roomId).includes('welcome'), 'the guest sees alice');
    const who = await guest.whoami();
    assert.equal(who.is_guest, true);
    assert.deepEqual(watch.serverErrors, []);
  });
});
