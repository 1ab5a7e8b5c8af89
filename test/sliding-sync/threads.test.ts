/**
 * MSC4360, the sliding-sync `threads` extension (unstable `io.element.msc4360.threads`, and the
 * stable `threads` it names) and its companion `/thread_updates`: one update per thread of the
 * user's joined rooms with replies since the connection's last response (all on a new one); a
 * `prev_batch` per thread that `/relations` pages back from, just before the latest reply; the
 * root with its `m.thread` summary with `include_roots`; threads whose replies came in a room
 * timeline of the same response left out without `include_roots`; the extension omitted when
 * there is nothing to say; a `prev_batch` over the limit that `/thread_updates` continues from,
 * with the request's `pos` as `to`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { createRoom, join, leave, send } from '../sync/util.js';
import { SlidingClient } from './client.js';

const EXT = 'io.element.msc4360.threads';
const UNSTABLE = '/_matrix/client/unstable/io.element.msc4360/thread_updates';
const STABLE = '/_matrix/client/v1/thread_updates';

describe('sliding sync threads extension (MSC4360)', { timeout: 120_000 }, () => {
  let s: TestServer;
  let alice: TestUser;
  let bob: TestUser;
  let roomId: string;

  before(async () => {
    s = await startTestServer();
    alice = await s.registerUser('sst_alice');
    bob = await s.registerUser('sst_bob');
    roomId = await createRoom(s, alice, { preset: 'public_chat' });
    await join(s, bob, roomId);
  });
  after(async () => {
    await s.stop();
  });

  const reply = (root: string, body: string, user = bob, room = roomId) =>
    send(s, user, room, { msgtype: 'm.text', body, 'm.relates_to': { rel_type: 'm.thread', event_id: root } });
  /** A request whose list sends no timelines: thread replies reach the client only through the extension. */
  const quiet = (ext: Record<string, unknown> = { enabled: true }, name = EXT, timeline_limit = 0) => ({
    lists: { all: { ranges: [[0, 19]], timeline_limit, required_state: [] } },
    extensions: { [name]: ext },
  });
  const relations = async (root: string, from: string, to?: string) => {
    const q = `dir=b&from=${encodeURIComponent(from)}${to ? `&to=${encodeURIComponent(to)}` : ''}`;
    const res = await s.request('GET', `/_matrix/client/v1/rooms/${encodeURIComponent(roomId)}/relations/${encodeURIComponent(root)}?${q}`, {
      token: alice.accessToken,
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.chunk.map((e: any) => e.content.body);
  };

  it('is advertised', async () => {
    const v = await s.request('GET', '/_matrix/client/versions');
    assert.equal(v.body.unstable_features['org.matrix.msc4360'], true);
  });

  it('is omitted when no thread was updated', async () => {
    const c = new SlidingClient(s, alice, 'none');
    assert.equal((await c.sync(quiet())).extensions[EXT], undefined);
    await send(s, bob, roomId, 'not in a thread');
    assert.equal((await c.sync(quiet())).extensions[EXT], undefined);
  });

  it('a new connection gets every updated thread, with a prev_batch that /relations pages back from', async () => {
    const root = await send(s, alice, roomId, 'first thread');
    await reply(root, 'r1');
    await reply(root, 'r2');
    await reply(root, 'r3');
    const body = await new SlidingClient(s, alice, 'initial').sync(quiet());
    const update = body.extensions[EXT].updates[roomId][root];
    assert.ok(update, JSON.stringify(body.extensions));
    assert.equal(update.thread_root, undefined, 'no root without include_roots');
    assert.deepEqual(await relations(root, update.prev_batch), ['r2', 'r1'], 'the replies before the latest, newest first');
  });

  it('an incremental response has the threads replied to since, a prev_batch only when more than one reply; the stable name too', async () => {
    const one = await send(s, alice, roomId, 'one reply');
    const two = await send(s, alice, roomId, 'two replies');
    const c = new SlidingClient(s, alice, 'incremental');
    await c.sync(quiet({ enabled: true }, 'threads'));
    await reply(one, 'only');
    await reply(two, 'a');
    await reply(two, 'b');
    const body = await c.sync(quiet({ enabled: true }, 'threads'));
    const updates = body.extensions.threads.updates[roomId];
    assert.deepEqual(Object.keys(updates).sort(), [one, two].sort(), 'only the threads replied to since the last response');
    assert.deepEqual(updates[one], {}, 'a single reply: nothing to page');
    assert.deepEqual(await relations(two, updates[two].prev_batch), ['a']);
    assert.equal(body.extensions[EXT], undefined, 'answered under the name asked for');
    assert.equal((await c.sync(quiet({ enabled: true }, 'threads'))).extensions.threads, undefined, 'sent once');
  });

  it('turned on partway through a connection, it sends the threads updated before too (MSC4508: an extension may be deferred)', async () => {
    const root = await send(s, alice, roomId, 'deferred');
    const c = new SlidingClient(s, alice, 'deferred');
    const without = { lists: { all: { ranges: [[0, 19]], timeline_limit: 0, required_state: [] } } };
    await c.sync(without);
    await reply(root, 'while the extension was off');
    await c.sync(without);
    const on = await c.sync(quiet());
    assert.ok(on.extensions[EXT].updates[roomId][root], 'the earlier reply is news to the extension');
    assert.equal((await c.sync(quiet())).extensions[EXT], undefined, 'then only what changes');
  });

  it('include_roots sends the root with its m.thread summary, even when the reply is in the timeline', async () => {
    const root = await send(s, alice, roomId, 'rooted');
    const c = new SlidingClient(s, alice, 'roots');
    const withRoots = quiet({ enabled: true, include_roots: true }, EXT, 5);
    await c.sync(withRoots);
    const latest = await reply(root, 'the latest');
    const body = await c.sync(withRoots);
    assert.ok(body.rooms[roomId].timeline.some((e: any) => e.event_id === latest), 'the reply came in the timeline');
    const threadRoot = body.extensions[EXT].updates[roomId][root].thread_root;
    assert.equal(threadRoot.event_id, root);
    assert.equal(threadRoot.content.body, 'rooted');
    assert.equal(threadRoot.unsigned['m.relations']['m.thread'].latest_event.event_id, latest);
    assert.equal(threadRoot.unsigned['m.relations']['m.thread'].count, 1);
  });

  it('without include_roots, a thread whose replies came in the timeline is left out; one cut off by the limit is not', async () => {
    const root = await send(s, alice, roomId, 'in view');
    const c = new SlidingClient(s, alice, 'covered');
    const small = quiet({ enabled: true }, EXT, 2);
    await c.sync(small);
    await reply(root, 'seen');
    const seen = await c.sync(small);
    const seenPos = c.pos!;
    assert.ok(seen.rooms[roomId].timeline.some((e: any) => e.content.body === 'seen'));
    assert.equal(seen.extensions[EXT], undefined, 'the client has the reply already');

    // Three replies and two more messages: the timeline of 2 holds none of the replies.
    await reply(root, 'x1');
    await reply(root, 'x2');
    await reply(root, 'x3');
    await send(s, alice, roomId, 'after 1');
    await send(s, alice, roomId, 'after 2');
    const cut = await c.sync(small);
    assert.equal(cut.rooms[roomId].limited, true);
    // Paging on goes back through the thread's older replies too; the `pos` it had bounds it (MSC4186: a pos is a /relations token).
    const prevBatch = cut.extensions[EXT].updates[roomId][root].prev_batch;
    assert.deepEqual(await relations(root, prevBatch), ['x2', 'x1', 'seen']);
    assert.deepEqual(await relations(root, prevBatch, seenPos), ['x2', 'x1']);
  });

  it("only threads of rooms the user is joined to, and only replies they may see", async () => {
    const carol = await s.registerUser('sst_carol');
    const theirs = await createRoom(s, carol, { preset: 'private_chat' });
    const theirRoot = await send(s, carol, theirs, 'private thread');
    await reply(theirRoot, 'hidden', carol, theirs);
    const shared = await createRoom(s, carol, { preset: 'public_chat' });
    await join(s, alice, shared);
    const sharedRoot = await send(s, carol, shared, 'shared thread');
    const c = new SlidingClient(s, alice, 'joined');
    await c.sync(quiet());
    await leave(s, alice, shared);
    await reply(sharedRoot, 'after alice left', carol, shared);
    await reply(theirRoot, 'still hidden', carol, theirs);
    const body = await c.sync(quiet());
    const rooms = Object.keys(body.extensions[EXT]?.updates ?? {});
    assert.ok(!rooms.includes(theirs), 'never joined');
    assert.ok(!rooms.includes(shared), 'left before the reply');
  });

  it('over the limit: a prev_batch that /thread_updates continues from, back to the pos of the request', async () => {
    const room = await createRoom(s, alice, {});
    const c = new SlidingClient(s, alice, 'many');
    const limited = { lists: { all: { ranges: [[0, 0]], timeline_limit: 0, required_state: [] } }, extensions: { [EXT]: { enabled: true, limit: 2 } } };
    await c.sync(limited);
    const before = await send(s, alice, room, 'older than the window');
    await reply(before, 'old reply', alice, room);
    await c.sync(limited);
    const roots: string[] = [];
    for (let i = 0; i < 5; i++) {
      const root = await send(s, alice, room, `thread ${i}`);
      await reply(root, `reply ${i}`, alice, room);
      roots.push(root);
    }
    const sentPos = c.pos!;
    const body = await c.sync(limited);
    const ext = body.extensions[EXT];
    assert.deepEqual(Object.keys(ext.updates[room]), [roots[4], roots[3]], 'the two most recently replied to');
    assert.ok(ext.prev_batch);

    // The client keeps syncing: the pos it sent is gone, the window stays in the token.
    await c.sync(limited);
    await c.sync(limited);
    const seen: string[] = [];
    let from: string | undefined = ext.prev_batch;
    let path = UNSTABLE;
    for (let i = 0; from && i < 5; i++) {
      const res = await s.request('GET', `${path}?dir=b&limit=2&from=${encodeURIComponent(from)}&to=${encodeURIComponent(sentPos)}`, { token: alice.accessToken });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      for (const [root, u] of Object.entries<any>(res.body.chunk[room] ?? {})) {
        assert.equal(u.thread_root.event_id, root, 'the endpoint sends roots');
        seen.push(root);
      }
      from = res.body.next_batch;
      path = STABLE;
    }
    assert.deepEqual(seen, [roots[2], roots[1], roots[0]], 'the rest, newest first, and nothing from before the window');
    assert.ok(!seen.includes(before));

    // Without `from`: from the newest, back to `to` when it is a position still known.
    const fresh = await s.request('GET', `${UNSTABLE}?dir=b&to=${encodeURIComponent(c.pos!)}`, { token: alice.accessToken });
    assert.deepEqual(fresh.body.chunk, {}, 'nothing since the current position');
    const all = await s.request('GET', `${STABLE}?dir=b&limit=100`, { token: alice.accessToken });
    assert.ok(Object.keys(all.body.chunk[room]).includes(before), 'without to: back to the start');
  });

  it('a thread reply wakes a waiting request that has the extension on', async () => {
    const root = await send(s, alice, roomId, 'wake me');
    const c = new SlidingClient(s, alice, 'wake');
    await c.sync(quiet());
    const started = Date.now();
    const waiting = c.sync(quiet(), 20_000);
    await new Promise((r) => setTimeout(r, 300));
    await reply(root, 'wakey');
    const body = await waiting;
    assert.ok(Date.now() - started < 10_000, 'answered on the reply, not at the timeout');
    assert.deepEqual(Object.keys(body.extensions[EXT].updates[roomId]), [root]);
  });

  it('bad requests are Matrix errors', async () => {
    const bad = async (path: string, errcode = 'M_INVALID_PARAM') => {
      const res = await s.request('GET', path, { token: alice.accessToken });
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.equal(res.body.errcode, errcode);
    };
    await bad(`${UNSTABLE}?dir=f`);
    await bad(`${UNSTABLE}?dir=b&from=nonsense`);
    await bad(`${UNSTABLE}?dir=b&limit=0`);
    const res = await new SlidingClient(s, alice, 'bad').raw({ extensions: { [EXT]: { enabled: true, limit: 0 } } });
    assert.equal(res.body.errcode, 'M_INVALID_PARAM');
  });
});
