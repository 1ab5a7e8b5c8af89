/**
 * GET /v1/mutual_rooms (mutual_rooms.yaml) and GET /v1/rooms/{roomId}/timestamp_to_event
 * (room_event_by_timestamp.yaml).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MUTUAL_ROOMS_BATCH } from '../../src/rooms/mutual-rooms.js';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';

const V1 = '/_matrix/client/v1';
const V3 = '/_matrix/client/v3';
const enc = encodeURIComponent;

describe('mutual rooms', () => {
  let server: TestServer;
  let alice: TestUser;
  let bob: TestUser;
  let carol: TestUser;
  const shared: string[] = [];
  before(async () => {
    server = await startTestServer();
    alice = await server.registerUser();
    bob = await server.registerUser();
    carol = await server.registerUser();
    for (let i = 0; i < 3; i++) {
      const id = (await server.request('POST', `${V3}/createRoom`, { token: alice.accessToken, body: { preset: 'public_chat' } })).body.room_id;
      assert.equal((await server.request('POST', `${V3}/join/${enc(id)}`, { token: bob.accessToken, body: {} })).status, 200);
      shared.push(id);
    }
    // Alice alone, bob invited only, and one bob left: none is shared.
    await server.request('POST', `${V3}/createRoom`, { token: alice.accessToken, body: {} });
    await server.request('POST', `${V3}/createRoom`, { token: alice.accessToken, body: { invite: [bob.userId] } });
    const left = (await server.request('POST', `${V3}/createRoom`, { token: alice.accessToken, body: { preset: 'public_chat' } })).body.room_id;
    await server.request('POST', `${V3}/join/${enc(left)}`, { token: bob.accessToken, body: {} });
    await server.request('POST', `${V3}/rooms/${enc(left)}/leave`, { token: bob.accessToken, body: {} });
  });
  after(async () => {
    await server.stop();
  });

  it('lists the rooms both are joined to, with the count', async () => {
    const res = await server.request('GET', `${V1}/mutual_rooms?user_id=${enc(bob.userId)}`, { token: alice.accessToken });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body, { joined: [...shared].sort(), count: 3 });
    const none = await server.request('GET', `${V1}/mutual_rooms?user_id=${enc(carol.userId)}`, { token: alice.accessToken });
    assert.deepEqual(none.body, { joined: [], count: 0 });
    // An unknown user is an empty list, not an error (the spec's MUST).
    const unknown = await server.request('GET', `${V1}/mutual_rooms?user_id=${enc('@nobody:elsewhere.example')}`, { token: alice.accessToken });
    assert.deepEqual(unknown.body, { joined: [], count: 0 });
  });

  it('refuses a missing, malformed or own user id, and a bad token', async () => {
    for (const q of ['', '?user_id=bob', `?user_id=${enc(alice.userId)}`, `?user_id=${enc(bob.userId)}&from=garbage`]) {
      const res = await server.request('GET', `${V1}/mutual_rooms${q}`, { token: alice.accessToken });
      assert.equal(res.status, 400, q);
      assert.match(res.body.errcode, /^M_(INVALID|MISSING)_PARAM$/, q);
    }
  });

  it(`batches by ${MUTUAL_ROOMS_BATCH} with next_batch`, async () => {
    // Enough rooms shared by carol and bob for two batches, a few at a time.
    const extra = MUTUAL_ROOMS_BATCH + 2;
    const shareOne = async () => {
      const created = await server.request('POST', `${V3}/createRoom`, { token: carol.accessToken, body: { preset: 'public_chat' } });
      assert.equal((await server.request('POST', `${V3}/join/${enc(created.body.room_id)}`, { token: bob.accessToken, body: {} })).status, 200);
    };
    for (let i = 0; i < extra; i += 6) await Promise.all(Array.from({ length: Math.min(6, extra - i) }, shareOne));
    const first = await server.request('GET', `${V1}/mutual_rooms?user_id=${enc(bob.userId)}`, { token: carol.accessToken });
    assert.equal(first.body.joined.length, MUTUAL_ROOMS_BATCH);
    assert.equal(first.body.count, extra);
    assert.equal(typeof first.body.next_batch, 'string');
    const second = await server.request('GET', `${V1}/mutual_rooms?user_id=${enc(bob.userId)}&from=${enc(first.body.next_batch)}`, { token: carol.accessToken });
    assert.equal(second.body.joined.length, extra - MUTUAL_ROOMS_BATCH);
    assert.equal(second.body.next_batch, undefined);
    assert.equal(new Set([...first.body.joined, ...second.body.joined]).size, extra);
  });
});

describe('timestamp_to_event', () => {
  let server: TestServer;
  let alice: TestUser;
  let eve: TestUser;
  let roomId: string;
  const sent: { id: string; ts: number }[] = [];
  before(async () => {
    server = await startTestServer();
    alice = await server.registerUser();
    eve = await server.registerUser();
    roomId = (await server.request('POST', `${V3}/createRoom`, { token: alice.accessToken, body: { preset: 'private_chat' } })).body.room_id;
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 15));
      const id = (await server.request('PUT', `${V3}/rooms/${enc(roomId)}/send/m.room.message/t${i}`, { token: alice.accessToken, body: { msgtype: 'm.text', body: `m${i}` } })).body.event_id;
      const ev = await server.request('GET', `${V3}/rooms/${enc(roomId)}/event/${enc(id)}`, { token: alice.accessToken });
      sent.push({ id, ts: ev.body.origin_server_ts });
    }
  });
  after(async () => {
    await server.stop();
  });

  const ask = (token: string, ts: number | string, dir: string, room = roomId) =>
    server.request('GET', `${V1}/rooms/${enc(room)}/timestamp_to_event?ts=${ts}&dir=${dir}`, { token });

  it('finds the nearest event before or after a timestamp', async () => {
    const back = await ask(alice.accessToken, sent[1].ts, 'b');
    assert.equal(back.status, 200, JSON.stringify(back.body));
    assert.deepEqual(back.body, { event_id: sent[1].id, origin_server_ts: sent[1].ts });
    const fwd = await ask(alice.accessToken, sent[1].ts + 1, 'f');
    assert.deepEqual(fwd.body, { event_id: sent[2].id, origin_server_ts: sent[2].ts });
    const latest = await ask(alice.accessToken, Date.now() + 60_000, 'b');
    assert.equal(latest.body.event_id, sent[2].id);
  });

  it('answers 404 M_NOT_FOUND when nothing lies in that direction', async () => {
    const res = await ask(alice.accessToken, Date.now() + 60_000, 'f');
    assert.equal(res.status, 404);
    assert.equal(res.body.errcode, 'M_NOT_FOUND');
    const unknownRoom = await ask(alice.accessToken, 1, 'f', '!nowhere:localhost');
    assert.equal(unknownRoom.status, 404);
    assert.equal(unknownRoom.body.errcode, 'M_NOT_FOUND');
  });

  it('shows nothing to someone who was never in a private room', async () => {
    const res = await ask(eve.accessToken, sent[2].ts, 'b');
    assert.equal(res.status, 403);
    assert.equal(res.body.errcode, 'M_FORBIDDEN');
  });

  it('checks ts and dir', async () => {
    for (const [ts, dir] of [['soon', 'b'], [String(sent[0].ts), 'sideways'], [String(sent[0].ts), '']]) {
      const res = await ask(alice.accessToken, ts, dir);
      assert.equal(res.status, 400, `${ts} ${dir}`);
      assert.equal(res.body.errcode, 'M_INVALID_PARAM');
    }
  });
});
