import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';

const V3 = '/_matrix/client/v3';

// report_content.yaml: events (joined members only), rooms and users; kept for the server's admins.
describe('reporting events, rooms and users', () => {
  let server: TestServer;
  let admin: TestUser;
  let alice: TestUser;
  let bob: TestUser;
  let carol: TestUser;
  let roomId: string;
  let eventId: string;

  const req = (u: TestUser, method: string, path: string, body?: unknown) => server.request(method, path, { token: u.accessToken, body });
  const enc = encodeURIComponent;

  before(async () => {
    server = await startTestServer();
    admin = await server.registerUser(undefined, { admin: true });
    alice = await server.registerUser();
    bob = await server.registerUser();
    carol = await server.registerUser();
    roomId = (await req(alice, 'POST', `${V3}/createRoom`, { preset: 'public_chat' })).body.room_id;
    assert.equal((await req(bob, 'POST', `${V3}/rooms/${enc(roomId)}/join`, {})).status, 200);
    eventId = (await req(alice, 'PUT', `${V3}/rooms/${enc(roomId)}/send/m.room.message/r1`, { msgtype: 'm.text', body: 'rude' })).body.event_id;
  });
  after(async () => {
    await server.stop();
  });

  it('a member reports an event; a non-member or an unknown event gets 404 M_NOT_FOUND', async () => {
    const ok = await req(bob, 'POST', `${V3}/rooms/${enc(roomId)}/report/${enc(eventId)}`, { reason: 'this makes me sad' });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.deepEqual(ok.body, {});
    const noReason = await req(bob, 'POST', `${V3}/rooms/${enc(roomId)}/report/${enc(eventId)}`, {});
    assert.equal(noReason.status, 200);
    const outsider = await req(carol, 'POST', `${V3}/rooms/${enc(roomId)}/report/${enc(eventId)}`, { reason: 'x' });
    assert.equal(outsider.status, 404);
    assert.equal(outsider.body.errcode, 'M_NOT_FOUND');
    const unknown = await req(bob, 'POST', `${V3}/rooms/${enc(roomId)}/report/${enc('$nope')}`, { reason: 'x' });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.errcode, 'M_NOT_FOUND');
  });

  it('anyone reports a room or a user; unknown ones get 404 M_NOT_FOUND; reason is required', async () => {
    assert.equal((await req(carol, 'POST', `${V3}/rooms/${enc(roomId)}/report`, { reason: 'spam room' })).status, 200);
    assert.equal((await req(carol, 'POST', `${V3}/users/${enc(alice.userId)}/report`, { reason: '' })).status, 200);
    const noRoom = await req(carol, 'POST', `${V3}/rooms/${enc(`!missing:${server.serverName}`)}/report`, { reason: 'x' });
    assert.equal(noRoom.status, 404);
    assert.equal(noRoom.body.errcode, 'M_NOT_FOUND');
    const noUser = await req(carol, 'POST', `${V3}/users/${enc(`@ghost:${server.serverName}`)}/report`, { reason: 'x' });
    assert.equal(noUser.status, 404);
    assert.equal(noUser.body.errcode, 'M_NOT_FOUND');
    const missingReason = await req(carol, 'POST', `${V3}/rooms/${enc(roomId)}/report`, {});
    assert.equal(missingReason.status, 400);
    const badUser = await req(carol, 'POST', `${V3}/users/not-a-user/report`, { reason: 'x' });
    assert.equal(badUser.status, 400);
  });

  it('admins read the stored reports, newest first, paginated; others may not', async () => {
    const refused = await req(alice, 'GET', '/_hearth/admin/v1/reports');
    assert.equal(refused.status, 403);
    const all = await req(admin, 'GET', '/_hearth/admin/v1/reports');
    assert.equal(all.status, 200, JSON.stringify(all.body));
    const kinds = all.body.reports.map((r: { kind: string }) => r.kind);
    assert.deepEqual([...kinds].sort(), ['event', 'event', 'room', 'user']);
    const ev = all.body.reports.find((r: { kind: string; reason: string | null }) => r.kind === 'event' && r.reason !== null);
    assert.deepEqual(
      { reporter: ev.reporter, room_id: ev.room_id, event_id: ev.event_id, target: ev.target_user_id, reason: ev.reason },
      { reporter: bob.userId, room_id: roomId, event_id: eventId, target: alice.userId, reason: 'this makes me sad' },
    );
    const user = all.body.reports.find((r: { kind: string }) => r.kind === 'user');
    assert.equal(user.target_user_id, alice.userId);
    const page1 = await req(admin, 'GET', '/_hearth/admin/v1/reports?limit=3');
    assert.equal(page1.body.reports.length, 3);
    const page2 = await req(admin, 'GET', `/_hearth/admin/v1/reports?limit=3&from=${page1.body.next_token}`);
    assert.equal(page2.body.reports.length, 1);
    assert.equal(page2.body.next_token, undefined);
    assert.equal((await req(admin, 'GET', '/_hearth/admin/v1/reports?limit=zero')).status, 400);
  });
});
