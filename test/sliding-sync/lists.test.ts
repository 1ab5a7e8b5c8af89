import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { C, createRoom, invite, send, setState } from '../sync/util.js';
import { SS_PATH, SlidingClient } from './client.js';

/** MSC4186 "Lists": the user's rooms ordered by recency, filtered, and cut by ranges. */
describe('sliding sync lists (MSC4186)', { timeout: 240_000 }, () => {
  let s: TestServer;
  let alice: TestUser;
  let bob: TestUser;
  /** Alice's rooms, oldest activity first. */
  const rooms: string[] = [];
  const ALL = { ranges: [[0, 19]], timeline_limit: 1, required_state: [['m.room.name', '']] };

  before(async () => {
    s = await startTestServer();
    alice = await s.registerUser('ss_alice');
    bob = await s.registerUser('ss_bob');
    for (let i = 0; i < 200; i += 10) {
      const batch = await Promise.all(Array.from({ length: 10 }, (_, k) => createRoom(s, alice, { name: `room ${i + k}` })));
      rooms.push(...batch);
    }
    // Activity in a known order: room i's last message comes after room i-1's.
    for (let i = 0; i < rooms.length; i++) await send(s, alice, rooms[i]!, `last in ${i}`);
  });
  after(async () => {
    await s.stop();
  });

  it('is advertised in /versions', async () => {
    const res = await s.request('GET', '/_matrix/client/versions');
    assert.equal(res.body.unstable_features['org.matrix.simplified_msc3575'], true);
  });

  it('a user in 200 rooms gets the 20 most recent in one request', async () => {
    const c = new SlidingClient(s, alice);
    const body = await c.sync({ lists: { all: ALL } });
    assert.equal(body.lists.all.count, 200);
    const expected = rooms.slice(-20).reverse();
    assert.deepEqual(Object.keys(body.rooms).sort(), [...expected].sort());
    assert.deepEqual(c.order(), expected, 'bump_stamp orders them newest first');
    const top = body.rooms[expected[0]!];
    assert.equal(top.initial, true);
    assert.equal(top.name, 'room 199');
    assert.equal(top.membership, 'join');
    assert.deepEqual(top.lists, ['all']);
    assert.equal(top.timeline.length, 1);
    assert.equal(top.timeline[0].content.body, 'last in 199');
    assert.equal(top.limited, true);
    assert.equal(top.joined_count, 1);
    assert.equal(top.required_state.length, 1);
    assert.equal(top.required_state[0].type, 'm.room.name');
  });

  it('a new message moves its room to the top, and wakes a waiting request', async () => {
    const c = new SlidingClient(s, alice);
    await c.sync({ lists: { all: ALL } });
    const old = rooms[50]!;
    assert.ok(!c.rooms.has(old));
    const started = Date.now();
    const waiting = c.sync({ lists: { all: ALL } }, 20_000);
    await new Promise((r) => setTimeout(r, 300));
    await send(s, alice, old, 'back to the top');
    const body = await waiting;
    assert.ok(Date.now() - started < 10_000, 'answered on the send, not at the timeout');
    assert.deepEqual(Object.keys(body.rooms), [old]);
    const r = body.rooms[old];
    assert.equal(r.initial, true, 'never sent on this connection before');
    assert.equal(r.timeline.at(-1).content.body, 'back to the top');
    assert.equal(r.num_live, 1);
    assert.equal(c.order()[0], old);

    // Nothing new: a request without timeout returns at once with no rooms.
    const quiet = await c.sync({ lists: { all: ALL } });
    assert.deepEqual(quiet.rooms, {});

    // A room already sent gets only its new events.
    await send(s, alice, old, 'one more');
    const next = await c.sync({ lists: { all: ALL } }, 10_000);
    assert.equal(next.rooms[old].initial, undefined);
    assert.deepEqual(next.rooms[old].timeline.map((e: any) => e.content.body), ['one more']);
    assert.equal(next.rooms[old].num_live, 1);
    assert.equal(next.rooms[old].limited, undefined);
  });

  it('growing the range sends only the rooms not sent yet', async () => {
    const c = new SlidingClient(s, alice);
    await c.sync({ lists: { all: ALL } });
    const body = await c.sync({ lists: { all: { ...ALL, ranges: [[0, 49]] } } });
    assert.equal(Object.keys(body.rooms).length, 30);
    assert.equal(c.rooms.size, 50);
  });

  it('prev_batch pages back through /messages', async () => {
    const c = new SlidingClient(s, alice);
    const body = await c.sync({ room_subscriptions: { [rooms[10]!]: { timeline_limit: 1, required_state: [] } } });
    const r = body.rooms[rooms[10]!];
    const page = await s.request('GET', `${C}/rooms/${encodeURIComponent(rooms[10]!)}/messages?dir=b&limit=5&from=${encodeURIComponent(r.prev_batch)}`, { token: alice.accessToken });
    assert.equal(page.status, 200, JSON.stringify(page.body));
    assert.ok(page.body.chunk.length > 0);
    assert.ok(!page.body.chunk.some((e: any) => e.event_id === r.timeline[0].event_id), 'the page starts before the timeline');
    assert.ok(page.body.chunk.some((e: any) => e.type === 'm.room.name'));
  });

  it('filters: is_dm, is_encrypted, is_invite, room types and spaces', async () => {
    const carol = await s.registerUser('ss_carol');
    const dm = await createRoom(s, carol, { is_direct: true });
    await invite(s, carol, dm, bob.userId);
    const joinRes = await s.request('POST', `${C}/rooms/${encodeURIComponent(dm)}/join`, { token: bob.accessToken, body: {} });
    assert.equal(joinRes.status, 200);
    await s.request('PUT', `${C}/user/${encodeURIComponent(bob.userId)}/account_data/m.direct`, { token: bob.accessToken, body: { [carol.userId]: [dm] } });
    const enc = await createRoom(s, bob, { initial_state: [{ type: 'm.room.encryption', state_key: '', content: { algorithm: 'm.megolm.v1.aes-sha2' } }] });
    const space = await createRoom(s, bob, { creation_content: { type: 'm.space' }, name: 'a space' });
    const child = await createRoom(s, bob, { name: 'child' });
    await setState(s, bob, space, 'm.space.child', child, { via: [s.serverName] });
    const invitedTo = await createRoom(s, carol, {});
    await invite(s, carol, invitedTo, bob.userId);

    const c = new SlidingClient(s, bob);
    const body = await c.sync({
      lists: {
        dms: { ranges: [[0, 9]], timeline_limit: 0, required_state: [], filters: { is_dm: true } },
        encrypted: { ranges: [[0, 9]], timeline_limit: 0, required_state: [], filters: { is_encrypted: true } },
        invites: { ranges: [[0, 9]], timeline_limit: 0, required_state: [], filters: { is_invite: true } },
        spaces: { ranges: [[0, 9]], timeline_limit: 0, required_state: [], filters: { room_types: ['m.space'] } },
        rooms: { ranges: [[0, 9]], timeline_limit: 0, required_state: [], filters: { not_room_types: ['m.space'], is_invite: false } },
        in_space: { range: [0, 9], timeline_limit: 0, required_state: [], filters: { spaces: [space] } },
      },
    });
    const inList = (name: string) => Object.entries<any>(body.rooms).filter(([, r]) => r.lists?.includes(name)).map(([id]) => id).sort();
    assert.deepEqual(inList('dms'), [dm]);
    assert.equal(body.rooms[dm].is_dm, true);
    assert.deepEqual(inList('encrypted'), [enc]);
    assert.deepEqual(inList('invites'), [invitedTo]);
    assert.equal(body.rooms[invitedTo].membership, 'invite');
    assert.ok(body.rooms[invitedTo].invite_state.some((e: any) => e.type === 'm.room.member' && e.state_key === bob.userId));
    assert.deepEqual(inList('spaces'), [space]);
    assert.deepEqual(inList('rooms'), [dm, enc, child].sort());
    assert.deepEqual(inList('in_space'), [child]);
    assert.equal(body.lists.rooms.count, 3);
  });

  it('filters: tags and not_tags (not_tags wins)', async () => {
    const dave = await s.registerUser('ss_dave');
    const [fav, low, both, none] = await Promise.all([1, 2, 3, 4].map((i) => createRoom(s, dave, { name: `tagged ${i}` })));
    const tag = async (room: string, t: string) => {
      const res = await s.request('PUT', `${C}/user/${encodeURIComponent(dave.userId)}/rooms/${encodeURIComponent(room)}/tags/${t}`, { token: dave.accessToken, body: {} });
      assert.equal(res.status, 200);
    };
    await tag(fav!, 'm.favourite');
    await tag(low!, 'm.lowpriority');
    await tag(both!, 'm.favourite');
    await tag(both!, 'm.lowpriority');
    const body = await new SlidingClient(s, dave).sync({
      lists: {
        favs: { ranges: [[0, 9]], timeline_limit: 0, required_state: [], filters: { tags: ['m.favourite'] } },
        favs_not_low: { ranges: [[0, 9]], timeline_limit: 0, required_state: [], filters: { tags: ['m.favourite'], not_tags: ['m.lowpriority'] } },
        untagged_or_fav: { ranges: [[0, 9]], timeline_limit: 0, required_state: [], filters: { not_tags: ['m.lowpriority'] } },
      },
    });
    const inList = (name: string) => Object.entries<any>(body.rooms).filter(([, r]) => r.lists?.includes(name)).map(([id]) => id).sort();
    assert.deepEqual(inList('favs'), [fav, both].sort());
    assert.deepEqual(inList('favs_not_low'), [fav]);
    assert.deepEqual(inList('untagged_or_fav'), [fav, none].sort());
  });

  it('num_live counts the events since the previous response, also in a room sent in full for the first time', async () => {
    const c = new SlidingClient(s, alice);
    const list = { lists: { top: { ranges: [[0, 0]], timeline_limit: 3, required_state: [] } } };
    const first = await c.sync(list);
    const [top] = Object.keys(first.rooms);
    assert.equal(first.rooms[top!].num_live, 0, 'nothing is live on a new connection');
    const old = rooms[60]!;
    await send(s, alice, old, 'live one');
    const next = await c.sync(list);
    const r = next.rooms[old];
    assert.equal(r.initial, true);
    assert.equal(r.timeline.length, 3, 'two older events come with it');
    assert.equal(r.num_live, 1, 'only the last is live');
    await send(s, alice, old, 'live two');
    await send(s, alice, old, 'live three');
    assert.equal((await c.sync(list)).rooms[old].num_live, 2);
  });

  it('bad requests are Matrix errors', async () => {
    const bad = async (body: unknown, errcode = 'M_INVALID_PARAM') => {
      const res = await s.request('POST', SS_PATH, { token: alice.accessToken, body });
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.equal(res.body.errcode, errcode);
    };
    await bad({ lists: { all: { ranges: [[5, 1]], timeline_limit: 1 } } });
    await bad({ lists: { all: { ranges: [[0, 1]], timeline_limit: -1 } } });
    await bad({ lists: { all: { ranges: [[0, 1]], required_state: [['m.room.name']] } } });
    await bad({ room_subscriptions: { '!a:b': 'no' } });
    // MSC4538: a limit below 1, a since the server never issued.
    await bad({ extensions: { to_device: { enabled: true, limit: 0 } } });
    await bad({ extensions: { to_device: { enabled: true, since: 'not-a-token' } } });
    await bad({ pos: 'nonsense' }, 'M_UNKNOWN_POS');
    const res = await s.request('POST', SS_PATH, { token: alice.accessToken, rawBody: '{"lists":', headers: { 'content-type': 'application/json' } });
    assert.equal(res.body.errcode, 'M_NOT_JSON');
  });
});
