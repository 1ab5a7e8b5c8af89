import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';

const V3 = '/_matrix/client/v3';

// client-server modules/ignore_users.md: no events from ignored users but state events, no invites from them.
describe('ignoring users (m.ignored_user_list) in /sync, /messages and invites', () => {
  let server: TestServer;
  let bob: TestUser;
  let carol: TestUser;
  let roomId: string;

  const req = (u: TestUser, method: string, path: string, body?: unknown) => server.request(method, path, { token: u.accessToken, body });
  const enc = encodeURIComponent;
  let txn = 0;
  const say = async (u: TestUser, body: string) => {
    const res = await req(u, 'PUT', `${V3}/rooms/${enc(roomId)}/send/m.room.message/i${++txn}`, { msgtype: 'm.text', body });
    assert.equal(res.status, 200);
    return res.body.event_id as string;
  };
  const ignore = (users: string[]) =>
    req(bob, 'PUT', `${V3}/user/${enc(bob.userId)}/account_data/m.ignored_user_list`, { ignored_users: Object.fromEntries(users.map((u) => [u, {}])) });
  const messageBodies = async () => {
    const res = await req(bob, 'GET', `${V3}/rooms/${enc(roomId)}/messages?dir=b&limit=50`);
    assert.equal(res.status, 200);
    return res.body.chunk as { type: string; sender: string; content: { body?: string } }[];
  };
  const syncRoom = async (since?: string) => {
    const res = await req(bob, 'GET', `${V3}/sync?timeout=0${since ? `&since=${since}` : ''}`);
    assert.equal(res.status, 200);
    return res.body;
  };

  before(async () => {
    server = await startTestServer();
    bob = await server.registerUser();
    carol = await server.registerUser();
    roomId = (await req(bob, 'POST', `${V3}/createRoom`, { preset: 'public_chat', power_level_content_override: { events: { 'm.room.topic': 0 } } })).body.room_id;
    assert.equal((await req(carol, 'POST', `${V3}/rooms/${enc(roomId)}/join`, {})).status, 200);
  });
  after(async () => {
    await server.stop();
  });

  it("hides an ignored user's messages from /messages and /sync but keeps their state events", async () => {
    await say(carol, 'before ignoring');
    assert.equal((await ignore([carol.userId])).status, 200);
    await say(carol, 'while ignored');
    const topic = await req(carol, 'PUT', `${V3}/rooms/${enc(roomId)}/state/m.room.topic/`, { topic: 'carol set this' });
    assert.equal(topic.status, 200, JSON.stringify(topic.body));
    await say(bob, 'bob speaks');

    const chunk = await messageBodies();
    assert.ok(!chunk.some((e) => e.sender === carol.userId && e.type === 'm.room.message'), 'no message of carol in /messages');
    assert.ok(chunk.some((e) => e.type === 'm.room.topic' && e.sender === carol.userId), "carol's state event stays");
    assert.ok(chunk.some((e) => e.content.body === 'bob speaks'));

    const initial = await syncRoom();
    const timeline = initial.rooms.join[roomId].timeline.events as { type: string; sender: string; content: { body?: string } }[];
    assert.ok(!timeline.some((e) => e.sender === carol.userId && e.type === 'm.room.message'), 'no message of carol in /sync');
    assert.ok(timeline.some((e) => e.content.body === 'bob speaks'));
  });

  it('does not show an invite from an ignored user', async () => {
    const other = (await req(carol, 'POST', `${V3}/createRoom`, { invite: [bob.userId] })).body.room_id as string;
    const s = await syncRoom();
    assert.equal(s.rooms?.invite?.[other], undefined);
  });

  it('un-ignoring resumes delivery of new events', async () => {
    const since = (await syncRoom()).next_batch as string;
    assert.equal((await ignore([])).status, 200);
    await say(carol, 'welcome back');
    const inc = await syncRoom(since);
    const events = (inc.rooms?.join?.[roomId]?.timeline?.events ?? []) as { content: { body?: string } }[];
    assert.ok(events.some((e) => e.content.body === 'welcome back'));
    const chunk = await messageBodies();
    assert.ok(chunk.some((e) => e.content.body === 'while ignored'), '/messages shows the history again');
  });
});
