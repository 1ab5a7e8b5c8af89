/**
 * Server notices (client-server API, "Server Notices"), sent with the admin API Synapse's tools
 * call: one room per user, tagged m.server_notice, the user invited and unable to reject the
 * invite (M_CANNOT_LEAVE_SERVER_NOTICE_ROOM), notices of msgtype m.server_notice from the system
 * user; a user who left gets the next notice in a new room.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';

const V3 = '/_matrix/client/v3';
const SEND = '/_synapse/admin/v1/send_server_notice';
const enc = encodeURIComponent;

describe('server notices', () => {
  let server: TestServer;
  let admin: TestUser;
  let alice: TestUser;

  before(async () => {
    server = await startTestServer({ config: { server_notices: { system_mxid_localpart: 'notices', room_name: 'Hearth notices' } } });
    admin = await server.registerUser('sn_admin', { admin: true });
    alice = await server.registerUser('sn_alice');
  });
  after(async () => {
    await server.stop();
  });

  const notify = (body: unknown, token = admin.accessToken) => server.request('POST', SEND, { token, body });
  const invitedRooms = async (u: TestUser) => Object.keys((await server.request('GET', `${V3}/sync?timeout=0`, { token: u.accessToken })).body.rooms?.invite ?? {});

  it('only admins send notices; to local, existing users; with a body', async () => {
    const byAlice = await notify({ user_id: alice.userId, content: { body: 'hi' } }, alice.accessToken);
    assert.equal(byAlice.status, 403);
    assert.equal(byAlice.body.errcode, 'M_FORBIDDEN');
    const remote = await notify({ user_id: '@bob:elsewhere.example', content: { body: 'hi' } });
    assert.equal(remote.body.errcode, 'M_INVALID_PARAM');
    const unknown = await notify({ user_id: `@nobody:${server.serverName}`, content: { body: 'hi' } });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.errcode, 'M_NOT_FOUND');
    const noBody = await notify({ user_id: alice.userId, content: {} });
    assert.equal(noBody.body.errcode, 'M_INVALID_PARAM');
    const shape = await notify({ user_id: alice.userId });
    assert.equal(shape.body.errcode, 'M_BAD_JSON');
    assert.deepEqual(await invitedRooms(alice), [], 'nothing was sent');
  });

  it('the first notice invites the user to a tagged room; the invite cannot be rejected; the notice is there once joined', async () => {
    const sent = await notify({ user_id: alice.userId, content: { body: 'Maintenance tonight at 22:00' } });
    assert.equal(sent.status, 200, JSON.stringify(sent.body));
    const [roomId, ...more] = await invitedRooms(alice);
    assert.ok(roomId);
    assert.deepEqual(more, []);
    const tags = await server.request('GET', `${V3}/user/${enc(alice.userId)}/rooms/${enc(roomId)}/tags`, { token: alice.accessToken });
    assert.deepEqual(tags.body.tags, { 'm.server_notice': {} });

    const reject = await server.request('POST', `${V3}/rooms/${enc(roomId)}/leave`, { token: alice.accessToken, body: {} });
    assert.equal(reject.status, 403);
    assert.equal(reject.body.errcode, 'M_CANNOT_LEAVE_SERVER_NOTICE_ROOM');

    assert.equal((await server.request('POST', `${V3}/rooms/${enc(roomId)}/join`, { token: alice.accessToken, body: {} })).status, 200);
    const second = await notify({ user_id: alice.userId, content: { msgtype: 'm.text', body: 'Done' } });
    assert.equal(second.status, 200);
    const messages = await server.request('GET', `${V3}/rooms/${enc(roomId)}/messages?dir=b&limit=50`, { token: alice.accessToken });
    const notices = messages.body.chunk.filter((e: { type: string }) => e.type === 'm.room.message').reverse();
    assert.deepEqual(
      notices.map((e: { sender: string; event_id: string; content: Record<string, unknown> }) => [e.sender, e.event_id, e.content.msgtype, e.content.body]),
      [
        [`@notices:${server.serverName}`, sent.body.event_id, 'm.server_notice', 'Maintenance tonight at 22:00'],
        [`@notices:${server.serverName}`, second.body.event_id, 'm.text', 'Done'],
      ],
    );
    const name = await server.request('GET', `${V3}/rooms/${enc(roomId)}/state/m.room.name/`, { token: alice.accessToken });
    assert.equal(name.body.name, 'Hearth notices');
    // The user reads notices; the room is not for writing back.
    const reply = await server.request('PUT', `${V3}/rooms/${enc(roomId)}/send/m.room.message/r1`, { token: alice.accessToken, body: { msgtype: 'm.text', body: 'ok' } });
    assert.equal(reply.status, 403);

    // Joined, the user may leave; the next notice comes in a new room.
    assert.equal((await server.request('POST', `${V3}/rooms/${enc(roomId)}/leave`, { token: alice.accessToken, body: {} })).status, 200);
    assert.equal((await notify({ user_id: alice.userId, content: { body: 'Again' } })).status, 200);
    const next = await invitedRooms(alice);
    assert.equal(next.length, 1);
    assert.notEqual(next[0], roomId);
  });

  it('a retried PUT with the same transaction id sends one notice', async () => {
    const bob = await server.registerUser('sn_bob');
    const first = await server.request('PUT', `${SEND}/txn-1`, { token: admin.accessToken, body: { user_id: bob.userId, content: { body: 'once' } } });
    const again = await server.request('PUT', `${SEND}/txn-1`, { token: admin.accessToken, body: { user_id: bob.userId, content: { body: 'once' } } });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal(again.body.event_id, first.body.event_id);
  });

  it('without server_notices configured the API answers 404 M_NOT_FOUND', async () => {
    const plain = await startTestServer();
    try {
      const root = await plain.registerUser('sn_root', { admin: true });
      const res = await plain.request('POST', SEND, { token: root.accessToken, body: { user_id: root.userId, content: { body: 'x' } } });
      assert.equal(res.status, 404);
      assert.equal(res.body.errcode, 'M_NOT_FOUND');
    } finally {
      await plain.stop();
    }
  });
});
