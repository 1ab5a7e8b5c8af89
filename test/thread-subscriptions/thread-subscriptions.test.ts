/**
 * Thread subscriptions (MSC4306, unstable `io.element.msc4306`) and their sliding-sync extension
 * (MSC4308, `io.element.msc4308.thread_subscriptions`, as matrix-rust-sdk asks for it): manual and
 * automatic subscriptions, an automatic one refused after a later unsubscription, changes sent
 * once per connection with a `prev_batch` when over the limit, and the companion endpoint that
 * pages back through the rest; a change wakes a waiting sliding sync that has the extension on,
 * and only such a one.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { untilWaiting } from '../cluster/cluster-helpers.js';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { SlidingClient } from '../sliding-sync/client.js';
import { C, createRoom, join, send } from '../sync/util.js';

const U = '/_matrix/client/unstable/io.element.msc4306';
const EXT = 'io.element.msc4308.thread_subscriptions';

describe('thread subscriptions', { timeout: 120_000 }, () => {
  let s: TestServer;
  let alice: TestUser;
  let bob: TestUser;
  let roomId: string;

  before(async () => {
    s = await startTestServer();
    alice = await s.registerUser('ts_alice');
    bob = await s.registerUser('ts_bob');
    roomId = await createRoom(s, alice, { preset: 'public_chat' });
    await join(s, bob, roomId);
  });
  after(async () => {
    await s.stop();
  });

  const path = (root: string) => `${U}/rooms/${encodeURIComponent(roomId)}/thread/${encodeURIComponent(root)}/subscription`;
  const reply = (root: string, body: string, user = bob) =>
    send(s, user, roomId, { msgtype: 'm.text', body, 'm.relates_to': { rel_type: 'm.thread', event_id: root } });
  const put = (root: string, body: Record<string, unknown>, user = alice) => s.request('PUT', path(root), { token: user.accessToken, body });
  const get = (root: string, user = alice) => s.request('GET', path(root), { token: user.accessToken });

  it('is advertised', async () => {
    const v = await s.request('GET', '/_matrix/client/versions');
    assert.equal(v.body.unstable_features['org.matrix.msc4306'], true);
    assert.equal(v.body.unstable_features['org.matrix.msc4308'], true);
  });

  it('manual, automatic, unsubscribe, and an automatic subscription older than the unsubscription', async () => {
    const root = await send(s, bob, roomId, 'a thread');
    const first = await reply(root, `hey ${alice.userId}`);
    assert.equal((await get(root)).status, 404, 'not subscribed yet');

    assert.equal((await put(root, { automatic: first })).status, 200);
    assert.deepEqual((await get(root)).body, { automatic: true });
    assert.equal((await put(root, {})).status, 200);
    assert.deepEqual((await get(root)).body, { automatic: false }, 'manual beats automatic');
    assert.equal((await put(root, { automatic: first })).status, 200);
    assert.deepEqual((await get(root)).body, { automatic: false }, 'automatic does not overwrite a manual subscription');

    const del = await s.request('DELETE', path(root), { token: alice.accessToken });
    assert.equal(del.status, 200);
    assert.equal((await s.request('DELETE', path(root), { token: alice.accessToken })).status, 200, 'idempotent');
    assert.equal((await get(root)).status, 404);

    // A client catching up on the old mention must not undo the unsubscription.
    const conflict = await put(root, { automatic: first });
    assert.equal(conflict.status, 409);
    assert.equal(conflict.body.errcode, 'IO.ELEMENT.MSC4306.M_CONFLICTING_UNSUBSCRIPTION');
    assert.equal((await get(root)).status, 404);
    const later = await reply(root, `again ${alice.userId}`);
    assert.equal((await put(root, { automatic: later })).status, 200, 'a newer mention subscribes again');
    assert.deepEqual((await get(root)).body, { automatic: true });
  });

  it('refuses events outside the thread, unknown threads and rooms the user cannot see', async () => {
    const root = await send(s, bob, roomId, 'another thread');
    const outside = await send(s, bob, roomId, 'not in the thread');
    const notInThread = await put(root, { automatic: outside });
    assert.equal(notInThread.status, 400);
    assert.equal(notInThread.body.errcode, 'IO.ELEMENT.MSC4306.M_NOT_IN_THREAD');
    assert.equal((await put('$nope', {})).status, 404);
    const carol = await s.registerUser('ts_carol');
    assert.equal((await put(root, {}, carol)).status, 404, 'not in the room');
    assert.equal((await put(root, { automatic: 5 })).status, 400);
  });

  it('sliding sync sends changes once, the newest within the limit, and the rest through the companion endpoint', async () => {
    const dave = await s.registerUser('ts_dave');
    await join(s, dave, roomId);
    const roots = [];
    for (let i = 0; i < 3; i++) roots.push(await send(s, bob, roomId, `dave thread ${i}`));
    for (const r of roots) assert.equal((await put(r, {}, dave)).status, 200);

    const c = new SlidingClient(s, dave, 'threads');
    const req = { extensions: { [EXT]: { enabled: true, limit: 2 } } };
    const first = (await c.sync(req)).extensions[EXT];
    assert.deepEqual(Object.keys(first.subscribed[roomId]).sort(), [roots[1], roots[2]].sort(), 'the two newest changes');
    assert.equal(first.subscribed[roomId][roots[2]].automatic, false);
    assert.ok(first.subscribed[roomId][roots[2]].bump_stamp > first.subscribed[roomId][roots[1]].bump_stamp);
    assert.equal(typeof first.prev_batch, 'string');

    const page = await s.request('GET', `/_matrix/client/unstable/io.element.msc4308/thread_subscriptions?dir=b&limit=10&from=${encodeURIComponent(first.prev_batch)}`, { token: dave.accessToken });
    assert.equal(page.status, 200, JSON.stringify(page.body));
    assert.deepEqual(Object.keys(page.body.subscribed[roomId]), [roots[0]]);
    assert.equal(page.body.end, undefined, 'nothing older');

    const quiet = (await c.sync(req)).extensions?.[EXT] ?? {};
    assert.equal(quiet.subscribed, undefined, 'nothing new: nothing sent again');

    assert.equal((await s.request('DELETE', path(roots[0]!), { token: dave.accessToken })).status, 200);
    const next = (await c.sync(req)).extensions[EXT];
    assert.deepEqual(Object.keys(next.unsubscribed[roomId]), [roots[0]]);
    assert.ok(next.unsubscribed[roomId][roots[0]!].bump_stamp > first.subscribed[roomId][roots[2]].bump_stamp);
    assert.equal(next.subscribed, undefined);
    assert.equal(next.prev_batch, undefined);

    const all = await s.request('GET', '/_matrix/client/unstable/io.element.msc4308/thread_subscriptions?dir=b&limit=2', { token: dave.accessToken });
    assert.deepEqual(Object.keys(all.body.unsubscribed[roomId]), [roots[0]]);
    assert.deepEqual(Object.keys(all.body.subscribed[roomId]), [roots[2]]);
    assert.equal(typeof all.body.end, 'string');
    const bad = await s.request('GET', '/_matrix/client/unstable/io.element.msc4308/thread_subscriptions?dir=b&from=xyz', { token: dave.accessToken });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.errcode, 'M_INVALID_PARAM');
  });

  it('a change made on another connection answers a waiting sliding sync with the extension on at once', async () => {
    const erin = await s.registerUser('ts_erin');
    await join(s, erin, roomId);
    const req = { extensions: { [EXT]: { enabled: true } } };
    const c = new SlidingClient(s, erin, 'wake');
    await c.sync(req);
    for (const manual of [true, false]) {
      const root = await send(s, bob, roomId, `erin thread ${manual}`);
      const waiting = s.hs.ctx.services.sync.notifier.waiting;
      const poll = c.sync(req, 20_000);
      await untilWaiting(s, waiting + 1);
      const t0 = performance.now();
      assert.equal((await put(root, manual ? {} : { automatic: root }, erin)).status, 200);
      const ext = (await poll).extensions[EXT];
      const ms = performance.now() - t0;
      assert.ok(ms < 5000, `answered ${ms.toFixed(0)} ms after the change, not at the 20 s timeout`);
      assert.deepEqual(ext.subscribed[roomId][root].automatic, !manual);
    }
    // Unsubscribing wakes it too.
    const root = Object.keys(c.last.extensions[EXT].subscribed[roomId])[0]!;
    const waiting = s.hs.ctx.services.sync.notifier.waiting;
    const poll = c.sync(req, 20_000);
    await untilWaiting(s, waiting + 1);
    assert.equal((await s.request('DELETE', path(root), { token: erin.accessToken })).status, 200);
    assert.deepEqual(Object.keys((await poll).extensions[EXT].unsubscribed[roomId]), [root]);
  });

  it('a change does not answer a waiting sliding sync without the extension, nor a waiting /sync', async () => {
    const fay = await s.registerUser('ts_fay');
    await join(s, fay, roomId);
    const root = await send(s, bob, roomId, 'fay thread');
    const c = new SlidingClient(s, fay, 'plain');
    await c.sync({});
    const initial = await s.request('GET', `${C}/sync?timeout=0`, { token: fay.accessToken });
    const waiting = s.hs.ctx.services.sync.notifier.waiting;
    const t0 = performance.now();
    const slide = c.sync({}, 1500);
    const sync = s.request('GET', `${C}/sync?timeout=1500&since=${encodeURIComponent(initial.body.next_batch)}`, { token: fay.accessToken });
    await untilWaiting(s, waiting + 2);
    assert.equal((await put(root, {}, fay)).status, 200);
    await Promise.all([slide, sync]);
    assert.ok(performance.now() - t0 >= 1400, 'both waited for their timeout');
  });
});
