import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';

const V3 = '/_matrix/client/v3';

// old_sync.yaml (/events, /initialSync, /events/{eventId}), room_initial_sync.yaml, peeking_events.yaml.
describe('deprecated endpoints still in the spec', () => {
  let server: TestServer;
  let alice: TestUser;
  let bob: TestUser;
  let carol: TestUser;
  let roomId: string;
  let privateId: string;
  let leftId: string;
  let inviteId: string;
  let firstEvent: string;

  const req = (u: TestUser, method: string, path: string, body?: unknown) => server.request(method, path, { token: u.accessToken, body });
  const enc = encodeURIComponent;
  let txn = 0;
  const say = async (u: TestUser, room: string, body: string) => {
    const res = await req(u, 'PUT', `${V3}/rooms/${enc(room)}/send/m.room.message/d${++txn}`, { msgtype: 'm.text', body });
    assert.equal(res.status, 200);
    return res.body.event_id as string;
  };

  before(async () => {
    server = await startTestServer();
    alice = await server.registerUser();
    bob = await server.registerUser();
    carol = await server.registerUser();
    roomId = (await req(alice, 'POST', `${V3}/createRoom`, { preset: 'public_chat', name: 'Old school' })).body.room_id;
    assert.equal((await req(bob, 'POST', `${V3}/rooms/${enc(roomId)}/join`, {})).status, 200);
    firstEvent = await say(alice, roomId, 'one');
    await say(bob, roomId, 'two');
    await say(alice, roomId, 'three');
    privateId = (await req(alice, 'POST', `${V3}/createRoom`, { preset: 'private_chat' })).body.room_id;
    leftId = (await req(alice, 'POST', `${V3}/createRoom`, { preset: 'public_chat', name: 'Left behind' })).body.room_id;
    assert.equal((await req(alice, 'POST', `${V3}/rooms/${enc(leftId)}/leave`, {})).status, 200);
    inviteId = (await req(bob, 'POST', `${V3}/createRoom`, { invite: [alice.userId] })).body.room_id;
  });
  after(async () => {
    await server.stop();
  });

  it('GET /initialSync lists joined rooms with state and latest messages, invites, and left rooms when archived', async () => {
    const res = await req(alice, 'GET', `${V3}/initialSync?limit=2`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(typeof res.body.end, 'string');
    const room = res.body.rooms.find((r: { room_id: string }) => r.room_id === roomId);
    assert.equal(room.membership, 'join');
    assert.deepEqual(room.messages.chunk.map((e: { content: { body: string } }) => e.content.body), ['two', 'three']);
    assert.ok(room.messages.chunk.every((e: { room_id: string }) => e.room_id === roomId));
    assert.equal(typeof room.messages.end, 'string');
    assert.ok(room.state.some((e: { type: string }) => e.type === 'm.room.create'));
    assert.ok(room.state.some((e: { type: string; content: { name?: string } }) => e.type === 'm.room.name' && e.content.name === 'Old school'));
    assert.equal(room.visibility, 'private');
    const invite = res.body.rooms.find((r: { room_id: string }) => r.room_id === inviteId);
    assert.equal(invite.membership, 'invite');
    assert.equal(invite.invite.sender, bob.userId);
    assert.equal(res.body.rooms.find((r: { room_id: string }) => r.room_id === leftId), undefined);
    const archived = await req(alice, 'GET', `${V3}/initialSync?archived=true`);
    assert.equal(archived.body.rooms.find((r: { room_id: string }) => r.room_id === leftId)?.membership, 'leave');
    assert.equal((await req(alice, 'GET', `${V3}/initialSync?limit=many`)).status, 400);
  });

  it('GET /rooms/{roomId}/initialSync answers members, and 403 to others of a private room', async () => {
    const res = await req(bob, 'GET', `${V3}/rooms/${enc(roomId)}/initialSync`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.room_id, roomId);
    assert.equal(res.body.membership, 'join');
    const bodies = res.body.messages.chunk.filter((e: { type: string }) => e.type === 'm.room.message').map((e: { content: { body: string } }) => e.content.body);
    assert.deepEqual(bodies, ['one', 'two', 'three'], 'chronological');
    assert.ok(res.body.state.some((e: { type: string; state_key: string }) => e.type === 'm.room.member' && e.state_key === bob.userId));
    const refused = await req(carol, 'GET', `${V3}/rooms/${enc(privateId)}/initialSync`);
    assert.equal(refused.status, 403);
    assert.equal(refused.body.errcode, 'M_FORBIDDEN');
  });

  it('GET /events streams new events from a token, waiting for them', async () => {
    const start = (await req(bob, 'GET', `${V3}/initialSync?limit=1`)).body.end as string;
    const pending = req(bob, 'GET', `${V3}/events?from=${enc(start)}&timeout=10000`);
    await new Promise((r) => setTimeout(r, 300));
    const sent = await say(alice, roomId, 'live');
    const res = await pending;
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.start, start);
    assert.notEqual(res.body.end, start);
    const ev = res.body.chunk.find((e: { event_id?: string }) => e.event_id === sent);
    assert.ok(ev, 'the new message is in the chunk');
    assert.equal(ev.room_id, roomId);
    const quiet = await req(bob, 'GET', `${V3}/events?from=${enc(res.body.end)}&timeout=0`);
    assert.equal(quiet.status, 200);
    assert.ok(!quiet.body.chunk.some((e: { event_id?: string }) => e.event_id === sent), 'nothing twice');
    const fresh = await req(bob, 'GET', `${V3}/events?timeout=0`);
    assert.equal(fresh.status, 200);
    assert.equal(typeof fresh.body.end, 'string');
    assert.equal((await req(bob, 'GET', `${V3}/events?timeout=soon`)).status, 400);
  });

  it('GET /events/{eventId} gives an event to who may see it, 404 to others', async () => {
    const res = await req(bob, 'GET', `${V3}/events/${enc(firstEvent)}`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.event_id, firstEvent);
    assert.equal(res.body.content.body, 'one');
    const secret = await say(alice, privateId, 'secret');
    const hidden = await req(carol, 'GET', `${V3}/events/${enc(secret)}`);
    assert.equal(hidden.status, 404);
    assert.equal(hidden.body.errcode, 'M_NOT_FOUND');
    assert.equal((await req(carol, 'GET', `${V3}/events/${enc('$missing')}`)).status, 404);
  });
  it('POST /rooms/{roomId}/send/{eventType} (no transaction id) sends a new event each time; outsiders and bad bodies are refused', async () => {
    const post = (u: TestUser, room: string, body: unknown) => req(u, 'POST', `${V3}/rooms/${enc(room)}/send/m.room.message`, body);
    const first = await post(alice, privateId, { msgtype: 'm.text', body: 'posted' });
    const again = await post(alice, privateId, { msgtype: 'm.text', body: 'posted' });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal(again.status, 200);
    assert.notEqual(first.body.event_id, again.body.event_id);
    const messages = await req(alice, 'GET', `${V3}/rooms/${enc(privateId)}/messages?dir=b&limit=10`);
    const posted = messages.body.chunk.filter((e: { content: { body?: string } }) => e.content.body === 'posted').map((e: { event_id: string }) => e.event_id);
    assert.deepEqual(posted.sort(), [first.body.event_id, again.body.event_id].sort());
    const outsider = await post(carol, privateId, { msgtype: 'm.text', body: 'let me in' });
    assert.equal(outsider.status, 403);
    assert.equal(outsider.body.errcode, 'M_FORBIDDEN');
    const notObject = await server.request('POST', `${V3}/rooms/${enc(privateId)}/send/m.room.message`, { token: alice.accessToken, rawBody: '[1]', headers: { 'content-type': 'application/json' } });
    assert.equal(notObject.status, 400);
    assert.equal(notObject.body.errcode, 'M_BAD_JSON');
  });
});
