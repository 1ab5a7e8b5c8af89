import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { C, createRoom, join, restart, sleep, sync, syncPath } from './util.js';

describe('typing notifications (spec: Typing Notifications)', () => {
  let s: TestServer;
  let alice: TestUser;
  let bob: TestUser;
  let eve: TestUser;
  let roomId: string;

  before(async () => {
    s = await startTestServer();
    alice = await s.registerUser('typing_alice');
    bob = await s.registerUser('typing_bob');
    eve = await s.registerUser('typing_eve');
    roomId = await createRoom(s, alice, { preset: 'public_chat' });
    await join(s, bob, roomId);
  });
  after(async () => {
    await s.stop();
  });

  const typing = (u: TestUser, body: unknown, userId = u.userId, room = roomId) =>
    s.request('PUT', `${C}/rooms/${encodeURIComponent(room)}/typing/${encodeURIComponent(userId)}`, { token: u.accessToken, body });
  const typingIn = (body: any): string[] | undefined =>
    body.rooms.join[roomId]?.ephemeral.events.find((e: any) => e.type === 'm.typing')?.content.user_ids;

  it('a typing user shows in the m.typing ephemeral event of others, waking their long-poll', async () => {
    const token = (await sync(s, bob)).next_batch;
    const poll = s.request('GET', syncPath({ since: token, timeout: 10000 }), { token: bob.accessToken });
    await sleep(50);
    const started = Date.now();
    const res = await typing(alice, { typing: true, timeout: 30000 });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, {});
    const r = await poll;
    assert.ok(Date.now() - started < 3000);
    assert.deepEqual(typingIn(r.body), [alice.userId]);

    const stop = await typing(alice, { typing: false });
    assert.equal(stop.status, 200);
    const after = await sync(s, bob, { since: r.body.next_batch });
    assert.deepEqual(typingIn(after), [], 'stopping replaces the list with an empty one');
    const quiet = await sync(s, bob, { since: after.next_batch });
    assert.equal(typingIn(quiet), undefined, 'no change: no m.typing event');
  });

  it('typing expires after its timeout, and the expiry reaches syncing clients', async () => {
    const token = (await sync(s, bob)).next_batch;
    assert.equal((await typing(alice, { typing: true, timeout: 300 })).status, 200);
    const first = await sync(s, bob, { since: token });
    assert.deepEqual(typingIn(first), [alice.userId]);
    const started = Date.now();
    const r = await s.request('GET', syncPath({ since: first.next_batch, timeout: 5000 }), { token: bob.accessToken });
    assert.equal(r.status, 200);
    assert.ok(Date.now() - started < 2000, 'the expiry woke the long-poll');
    assert.deepEqual(typingIn(r.body), []);
    const initial = await sync(s, bob);
    assert.equal(typingIn(initial), undefined);
  });

  it('typing for someone else is 403; outside the room is 403; a bad body is 400 M_BAD_JSON', async () => {
    const other = await typing(alice, { typing: true, timeout: 1000 }, bob.userId);
    assert.equal(other.status, 403);
    assert.equal(other.body.errcode, 'M_FORBIDDEN');
    const outsider = await typing(eve, { typing: true, timeout: 1000 });
    assert.equal(outsider.status, 403);
    assert.equal(outsider.body.errcode, 'M_FORBIDDEN');
    for (const body of [{}, { typing: 'yes' }, { typing: true, timeout: 'long' }]) {
      const bad = await typing(alice, body);
      assert.equal(bad.status, 400, JSON.stringify(body));
      assert.equal(bad.body.errcode, 'M_BAD_JSON');
    }
  });

  it('the typing stream position never goes backwards across a restart', async () => {
    assert.equal((await typing(alice, { typing: true, timeout: 30000 })).status, 200);
    const before = (await sync(s, bob)).next_batch.split('_')[5];
    await restart(s);
    assert.equal((await typing(bob, { typing: true, timeout: 30000 })).status, 200);
    const body = await sync(s, alice);
    const afterPos = body.next_batch.split('_')[5];
    assert.ok(Number(afterPos) > Number(before), `${afterPos} > ${before}`);
    // Notices live in the table the nodes share, so a restarted node still knows alice types.
    assert.deepEqual([...(typingIn(body) ?? [])].sort(), [alice.userId, bob.userId].sort());
  });
});
