import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ROOMS_PER_BATCH, STREAMED_ABOVE_ROOMS } from '../../src/sync/sync-response.js';
import { entriesJson, PIECE_BYTES, SharedJson, syncJson, type JsonPiece } from '../../src/sync/sync-stream.js';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { C, createRoom, invite, join, leave, send, setState, sync, syncPath, type SyncOpts } from './util.js';

/**
 * An initial sync with more than a few joined rooms is written out a batch of
 * rooms at a time, and identical requests under way together share the
 * rendering. The answer must be the same JSON as the answer built in one
 * piece: here, the union of syncs whose room filters split the rooms so that
 * none is streamed (spec: "Syncing", GET /sync; "Filtering").
 */
describe('an initial sync streamed room by room (spec: Syncing)', () => {
  let s: TestServer;
  let alice: TestUser;
  let bob: TestUser;
  const joined: string[] = [];
  let invited: string;
  let left: string;
  let knocked: string;
  let banned: string;

  before(async () => {
    s = await startTestServer();
    alice = await s.registerUser('stream_alice');
    bob = await s.registerUser('stream_bob');
    const carol = await s.registerUser('stream_carol');
    // More joined rooms than one batch, some with messages from several senders, one with a name.
    for (let i = 0; i < ROOMS_PER_BATCH + 8; i++) {
      const roomId = await createRoom(s, alice, { preset: 'public_chat', ...(i % 3 === 0 ? { name: `room ${i}` } : {}) });
      await join(s, bob, roomId);
      if (i % 4 === 0) await join(s, carol, roomId);
      for (let m = 0; m < i % 5; m++) await send(s, m % 2 === 0 ? alice : bob, roomId, `room ${i} message ${m}`);
      if (i % 4 === 0) await send(s, carol, roomId, `carol in room ${i}`);
      joined.push(roomId);
    }
    invited = await createRoom(s, alice, { preset: 'private_chat', name: 'invited' });
    await invite(s, alice, invited, bob.userId);
    left = await createRoom(s, alice, { preset: 'public_chat', name: 'left' });
    await join(s, bob, left);
    await send(s, alice, left, 'before bob left');
    await leave(s, bob, left);
    banned = await createRoom(s, alice, { preset: 'public_chat' });
    await join(s, bob, banned);
    const ban = await s.request('POST', `${C}/rooms/${encodeURIComponent(banned)}/ban`, { token: alice.accessToken, body: { user_id: bob.userId } });
    assert.equal(ban.status, 200);
    knocked = await createRoom(s, alice, { preset: 'private_chat', room_version: '10' });
    await setState(s, alice, knocked, 'm.room.join_rules', '', { join_rule: 'knock' });
    const knock = await s.request('POST', `${C}/knock/${encodeURIComponent(knocked)}`, { token: bob.accessToken, body: {} });
    assert.equal(knock.status, 200, JSON.stringify(knock.body));
    // Room and global account data, a tag among them.
    const tag = await s.request('PUT', `${C}/user/${encodeURIComponent(bob.userId)}/rooms/${encodeURIComponent(joined[3]!)}/tags/u.work`, { token: bob.accessToken, body: { order: 0.5 } });
    assert.equal(tag.status, 200);
    const ad = await s.request('PUT', `${C}/user/${encodeURIComponent(bob.userId)}/account_data/org.example.setting`, { token: bob.accessToken, body: { on: true } });
    assert.equal(ad.status, 200);
  });
  after(async () => {
    await s.stop();
  });

  /** The sync's raw response: whether it came without a length (streamed) and its body. */
  async function rawSync(o: SyncOpts, token = bob.accessToken): Promise<{ streamed: boolean; body: any }> {
    const res = await fetch(s.url + syncPath(o), { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    const streamed = res.headers.get('content-length') === null;
    return { streamed, body: timeless(JSON.parse(await res.text())) };
  }

  /** The answer without what depends on the moment it was made (event ages, presence activity). */
  function timeless(v: any): any {
    if (Array.isArray(v)) return v.map(timeless);
    if (v === null || typeof v !== 'object') return v;
    const out: any = {};
    for (const [k, x] of Object.entries(v)) if (k !== 'age' && k !== 'last_active_ago') out[k] = timeless(x);
    return out;
  }

  /** The same sync built in one piece: the rooms in groups too small to be streamed, merged. */
  async function inOnePiece(filter: Record<string, any>, o: SyncOpts = {}): Promise<any> {
    const everyRoom = [invited, left, banned, knocked, ...joined];
    const groups: string[][] = [];
    for (let i = 0; i < everyRoom.length; i += STREAMED_ABOVE_ROOMS) groups.push(everyRoom.slice(i, i + STREAMED_ABOVE_ROOMS));
    const parts = (
      await Promise.all(groups.map((rooms) => rawSync({ ...o, filter: { ...filter, room: { ...(filter.room ?? {}), rooms } } })))
    ).map((part) => {
      assert.equal(part.streamed, false, 'a group is sent with its length');
      return part.body;
    });
    const merged = parts[0]!;
    for (const part of parts.slice(1)) {
      for (const section of ['join', 'invite', 'leave', 'knock']) Object.assign(merged.rooms[section], part.rooms[section]);
    }
    for (const part of parts.slice(1)) assert.deepEqual({ ...part, rooms: merged.rooms }, merged, 'the groups agree outside rooms');
    return merged;
  }

  const filters: Array<[string, Record<string, any>, SyncOpts?]> = [
    ['no filter', {}],
    ['lazy-loaded members, timeline limit 3, left rooms included', { room: { state: { lazy_load_members: true }, timeline: { limit: 3 }, include_leave: true } }],
    ['event types and fields', { event_fields: ['type', 'content.body', 'sender', 'state_key'], room: { timeline: { not_types: ['m.room.member'] }, state: { types: ['m.room.name', 'm.room.member'] }, account_data: { types: ['m.tag'] } }, account_data: { not_types: ['m.push_rules'] } }],
    ['use_state_after', { room: { timeline: { limit: 2 }, include_leave: true } }, { use_state_after: true }],
  ];

  for (const [name, filter, opts] of filters) {
    it(`${name}: the streamed answer is the answer built in one piece`, async () => {
      const streamed = await rawSync({ ...opts, filter });
      assert.equal(streamed.streamed, true, 'written without a length');
      const expected = await inOnePiece(filter, opts);
      assert.equal(Object.keys(streamed.body.rooms.join).length, joined.length);
      assert.ok(streamed.body.rooms.invite[invited], 'invited room');
      assert.ok(streamed.body.rooms.knock[knocked], 'knocked room');
      assert.deepEqual(streamed.body, expected);
      assert.deepEqual(Object.keys(streamed.body.rooms.join), Object.keys(expected.rooms.join), 'rooms in the same order');
    });
  }

  it('identical requests at the same moment get the same answer, and each is written whole', async () => {
    const filter = { room: { state: { lazy_load_members: true }, timeline: { limit: 4 } } };
    const answers = await Promise.all(Array.from({ length: 4 }, () => rawSync({ filter })));
    for (const a of answers) {
      assert.equal(a.streamed, true);
      assert.deepEqual(a.body, answers[0]!.body);
    }
    assert.deepEqual(answers[0]!.body, await inOnePiece(filter));
  });

  it('two devices of one user syncing at the same moment each get only their own transaction ids', async () => {
    // spec: ClientEvent `unsigned.transaction_id`, "if the client being given the event is the same one which sent it".
    const login = await s.request('POST', `${C}/login`, {
      body: { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'stream_bob' }, password: bob.password },
    });
    assert.equal(login.status, 200, JSON.stringify(login.body));
    const room = joined[7]!;
    const txnId = `first-device-${process.pid}`;
    const sent = await s.request('PUT', `${C}/rooms/${encodeURIComponent(room)}/send/m.room.message/${txnId}`, {
      token: bob.accessToken,
      body: { msgtype: 'm.text', body: 'from the first device' },
    });
    assert.equal(sent.status, 200);
    const filter = { room: { timeline: { limit: 2 } } };
    const [first, second] = await Promise.all([bob.accessToken, login.body.access_token as string].map((token) => rawSync({ filter }, token)));
    const event = (body: any) => body.rooms.join[room].timeline.events.find((e: any) => e.event_id === sent.body.event_id);
    assert.equal(first.streamed && second.streamed, true);
    assert.equal(event(first.body).unsigned.transaction_id, txnId);
    assert.equal(event(second.body).unsigned.transaction_id, undefined, 'not the device that sent it');
  });

  it('a small initial sync keeps its length, and an incremental one after a streamed one carries only what is new', async () => {
    const first = await rawSync({ filter: { room: { rooms: joined.slice(0, 3) } } });
    assert.equal(first.streamed, false);
    // Well under one batch, but more rooms than a piece of text holds: written as it is made.
    const some = await rawSync({ filter: { room: { rooms: joined.slice(0, STREAMED_ABOVE_ROOMS + 1) } } });
    assert.equal(some.streamed, true);
    assert.deepEqual(Object.keys(some.body.rooms.join).sort(), joined.slice(0, STREAMED_ABOVE_ROOMS + 1).sort());
    const token = (await rawSync({ filter: { room: { state: { lazy_load_members: true } } } })).body.next_batch;
    await send(s, alice, joined[5]!, 'after the streamed sync');
    const next = await sync(s, bob, { since: token, filter: { room: { state: { lazy_load_members: true } } } });
    assert.deepEqual(Object.keys(next.rooms.join), [joined[5]]);
    const events = next.rooms.join[joined[5]!].timeline.events;
    assert.equal(events.at(-1).content.body, 'after the streamed sync');
  });
});

describe('SharedJson and syncJson', () => {
  async function all(it: AsyncIterable<JsonPiece>): Promise<string> {
    const parts: Buffer[] = [];
    for await (const x of it) parts.push(typeof x === 'string' ? Buffer.from(x) : Buffer.from(x));
    return Buffer.concat(parts).toString('utf8');
  }

  it('every reader gets every piece; once all readers took the first piece, no new reader can start', async () => {
    const json = new SharedJson();
    const a = json.read();
    const b = json.read();
    json.push('"!a":1');
    assert.equal((await a.next()).value, '"!a":1');
    assert.equal(json.joinable(), true, 'b has not taken it yet');
    assert.equal((await b.next()).value, '"!a":1');
    assert.equal(json.joinable(), false);
    assert.throws(() => json.read());
    json.push('"!b":2');
    json.end();
    assert.deepEqual([(await a.next()).value, (await a.next()).done], ['"!b":2', true]);
    assert.deepEqual([(await b.next()).value, (await b.next()).done], ['"!b":2', true]);
  });

  it('a failure reaches every reader', async () => {
    const json = new SharedJson();
    const readers = [all(json.read()), all(json.read())];
    json.push('x');
    json.fail(new Error('database down'));
    for (const r of readers) await assert.rejects(r, /database down/);
  });

  it('syncJson writes the joined rooms into the answer at their place, as JSON.stringify would', async () => {
    const body = { next_batch: 's1', rooms: { join: {}, invite: { '!i': { invite_state: { events: [] } } }, leave: {}, knock: {} }, to_device: { events: ['\u0000join'] } };
    async function* pieces() {
      yield '"!a":{"n":1}';
      yield '';
      yield '"!b":{"n":2},"!c":{}';
    }
    const text = await all(syncJson(body, pieces()));
    assert.equal(text, JSON.stringify({ ...body, rooms: { ...body.rooms, join: { '!a': { n: 1 }, '!b': { n: 2 }, '!c': {} } } }));
    assert.equal(await all(syncJson(body, (async function* () {})())), JSON.stringify(body), 'no joined rooms');
  });

  it('entriesJson cuts a batch of rooms into pieces of at most 64 KB, which syncJson joins into the same JSON', async () => {
    // Not all ASCII: pieces are counted in bytes.
    const entry = (i: number) => ({ timeline: { events: [{ type: 'm.room.message', content: { body: `${'x'.repeat(3000 + i)} é ☃` } }] } });
    const entries: Array<[string, any]> = Array.from({ length: 100 }, (_, i) => [`!r${i}:hs`, entry(i)]);
    // A room larger than a piece is a piece of its own.
    entries.splice(50, 0, ['!big:hs', { timeline: { events: [{ content: { body: 'y'.repeat(PIECE_BYTES * 2) } }] } }]);
    const pieces = entriesJson(entries);
    assert.ok(pieces.length > 5, `${pieces.length} pieces`);
    for (const p of pieces) assert.ok(p.length <= PIECE_BYTES || !p.includes('"!r'), `a piece of ${p.length} bytes`);
    const body = { next_batch: 's1', rooms: { join: {}, invite: {}, leave: {}, knock: {} } };
    const text = await all(
      syncJson(
        body,
        (async function* () {
          yield* pieces;
        })(),
      ),
    );
    assert.equal(text, JSON.stringify({ ...body, rooms: { ...body.rooms, join: Object.fromEntries(entries) } }));
  });
});
