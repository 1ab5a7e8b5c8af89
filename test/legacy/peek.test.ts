/**
 * Room previews (spec: modules/room_previews, peeking_events.yaml): a user
 * who has not joined a world-readable room reads it through the room
 * initialSync and GET /events?room_id=, and only the events sent while the
 * history was world_readable; other rooms are refused.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';

const V3 = '/_matrix/client/v3';
const enc = encodeURIComponent;

describe('peeking into world-readable rooms', () => {
  let server: TestServer;
  let alice: TestUser;
  let carol: TestUser;
  let guestToken: string;
  let openRoom: string;
  let privateRoom: string;
  let hiddenEvent: string;
  let firstVisible: string;
  let txn = 0;

  const req = (token: string, method: string, path: string, body?: unknown) => server.request(method, path, { token, body });
  const say = async (room: string, body: string) => {
    const res = await req(alice.accessToken, 'PUT', `${V3}/rooms/${enc(room)}/send/m.room.message/p${++txn}`, { msgtype: 'm.text', body });
    assert.equal(res.status, 200);
    return res.body.event_id as string;
  };
  const setVisibility = (room: string, v: string) =>
    req(alice.accessToken, 'PUT', `${V3}/rooms/${enc(room)}/state/m.room.history_visibility/`, { history_visibility: v });

  before(async () => {
    server = await startTestServer();
    alice = await server.registerUser();
    carol = await server.registerUser();
    guestToken = (await server.request('POST', `${V3}/register?kind=guest`, { body: {} })).body.access_token;
    openRoom = (await req(alice.accessToken, 'POST', `${V3}/createRoom`, { preset: 'public_chat', name: 'Window' })).body.room_id;
    hiddenEvent = await say(openRoom, 'before world_readable');
    assert.equal((await setVisibility(openRoom, 'world_readable')).status, 200);
    firstVisible = await say(openRoom, 'first visible');
    privateRoom = (await req(alice.accessToken, 'POST', `${V3}/createRoom`, { preset: 'private_chat' })).body.room_id;
    await say(privateRoom, 'secret');
  });
  after(async () => {
    await server.stop();
  });

  for (const who of ['a guest', 'a user who never joined'] as const) {
    it(`${who} reads the room initialSync, /messages, /context, /event and /state, without events from before world_readable`, async () => {
      const token = who === 'a guest' ? guestToken : carol.accessToken;
      const init = await req(token, 'GET', `${V3}/rooms/${enc(openRoom)}/initialSync`);
      assert.equal(init.status, 200, JSON.stringify(init.body));
      assert.equal(init.body.membership, undefined);
      const ids = init.body.messages.chunk.map((e: { event_id: string }) => e.event_id);
      assert.ok(ids.includes(firstVisible));
      assert.ok(!ids.includes(hiddenEvent), 'an event from before world_readable is not shown');
      assert.ok(init.body.state.some((e: { type: string }) => e.type === 'm.room.name'));
      const msgs = await req(token, 'GET', `${V3}/rooms/${enc(openRoom)}/messages?dir=b&limit=50`);
      assert.equal(msgs.status, 200);
      assert.ok(!msgs.body.chunk.some((e: { event_id: string }) => e.event_id === hiddenEvent));
      assert.equal((await req(token, 'GET', `${V3}/rooms/${enc(openRoom)}/event/${enc(firstVisible)}`)).status, 200);
      assert.equal((await req(token, 'GET', `${V3}/rooms/${enc(openRoom)}/event/${enc(hiddenEvent)}`)).status, 404);
      assert.equal((await req(token, 'GET', `${V3}/rooms/${enc(openRoom)}/context/${enc(firstVisible)}`)).status, 200);
      assert.equal((await req(token, 'GET', `${V3}/rooms/${enc(openRoom)}/state`)).status, 200);
      for (const path of ['initialSync', 'messages?dir=b', 'state', `event/${enc(hiddenEvent)}`, `context/${enc(hiddenEvent)}`]) {
        const res = await req(token, 'GET', `${V3}/rooms/${enc(privateRoom)}/${path}`);
        assert.ok(res.status === 403 || res.status === 404, `${path} of a private room: ${res.status}`);
      }
    });

    it(`${who} follows new events with GET /events?room_id= from the initialSync token`, async () => {
      const token = who === 'a guest' ? guestToken : carol.accessToken;
      const init = await req(token, 'GET', `${V3}/rooms/${enc(openRoom)}/initialSync`);
      const from = init.body.messages.end as string;
      const pending = req(token, 'GET', `${V3}/events?room_id=${enc(openRoom)}&from=${enc(from)}&timeout=10000`);
      await new Promise((r) => setTimeout(r, 300));
      const live = await say(openRoom, `live for ${who}`);
      const res = await pending;
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.start, from);
      assert.deepEqual(res.body.chunk.map((e: { event_id: string }) => e.event_id), [live]);
      assert.equal(res.body.chunk[0].room_id, openRoom);
      const quiet = await req(token, 'GET', `${V3}/events?room_id=${enc(openRoom)}&from=${enc(res.body.end)}&timeout=0`);
      assert.equal(quiet.status, 200);
      assert.deepEqual(quiet.body.chunk, []);
      // Events of other rooms never show, even when something happens there meanwhile.
      await say(privateRoom, 'still secret');
      const again = await req(token, 'GET', `${V3}/events?room_id=${enc(openRoom)}&from=${enc(res.body.end)}&timeout=0`);
      assert.deepEqual(again.body.chunk, []);
      const refused = await req(token, 'GET', `${V3}/events?room_id=${enc(privateRoom)}&timeout=0`);
      assert.equal(refused.status, 403);
    });
  }

  it('stops serving events once the history is no longer world_readable', async () => {
    const init = await req(carol.accessToken, 'GET', `${V3}/rooms/${enc(openRoom)}/initialSync`);
    const from = init.body.messages.end as string;
    assert.equal((await setVisibility(openRoom, 'shared')).status, 200);
    await say(openRoom, 'members only now');
    const res = await req(carol.accessToken, 'GET', `${V3}/events?room_id=${enc(openRoom)}&from=${enc(from)}&timeout=0`);
    assert.equal(res.status, 403);
    const msgs = await req(carol.accessToken, 'GET', `${V3}/rooms/${enc(openRoom)}/messages?dir=b`);
    assert.equal(msgs.status, 403);
  });
});
