import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { IDLE_MS, OFFLINE_MS, presenceOf, statusPath, TIMEOUT_CONFIG, watchPresence } from './presence-helpers.js';
import { createRoom, join, sleep, sync, syncPath } from './util.js';

/**
 * The idle and offline timeouts (spec: Presence, "Idle timeout"), shortened through the config so
 * that they pass within a test: an online user who goes quiet becomes `unavailable`, then
 * `offline`, as another user sees in /sync and GET /presence/{userId}/status.
 */

describe('presence timeouts (spec: Presence, "Idle timeout")', () => {
  let s: TestServer;
  let alice: TestUser;
  let bob: TestUser;
  let carol: TestUser;

  before(async () => {
    s = await startTestServer({ config: TIMEOUT_CONFIG });
    alice = await s.registerUser('idle_alice');
    bob = await s.registerUser('idle_bob');
    carol = await s.registerUser('idle_carol');
    const roomId = await createRoom(s, alice, { preset: 'public_chat' });
    await join(s, bob, roomId);
    await join(s, carol, roomId);
  });
  after(async () => {
    await s.stop();
  });

  it('a user who stops syncing goes unavailable after the idle timeout, then offline', async () => {
    const since = (await sync(s, bob, { set_presence: 'offline' })).next_batch;
    // Past the interval at which activity is written, so that this sync is alice's last activity.
    await sleep(700);
    const t0 = Date.now();
    await sync(s, alice);
    assert.equal((await s.request('GET', statusPath(alice.userId), { token: bob.accessToken })).body.presence, 'online');

    const { seen } = await watchPresence(s, bob, alice.userId, since, t0, OFFLINE_MS + 6000);
    const states = seen.map((x) => x.presence).filter((p, i, all) => i === 0 || all[i - 1] !== p);
    assert.deepEqual(states.slice(-2), ['unavailable', 'offline'], JSON.stringify(seen));
    const idleAt = seen.find((x) => x.presence === 'unavailable')!.at;
    const offlineAt = seen.find((x) => x.presence === 'offline')!.at;
    assert.ok(idleAt >= IDLE_MS, `unavailable after ${idleAt} ms, not before the idle timeout`);
    assert.ok(offlineAt >= OFFLINE_MS, `offline after ${offlineAt} ms, not before the offline timeout`);
    assert.ok(offlineAt < OFFLINE_MS + 3000, `offline ${offlineAt} ms after the last sync`);

    const got = await s.request('GET', statusPath(alice.userId), { token: bob.accessToken });
    assert.equal(got.status, 200);
    assert.equal(got.body.presence, 'offline');
    assert.ok(got.body.last_active_ago >= OFFLINE_MS, JSON.stringify(got.body));
    assert.equal(got.body.currently_active, undefined);
  });

  it('an idle user seen in GET /presence is unavailable, and syncing again brings them back online', async () => {
    await sync(s, alice);
    await sleep(IDLE_MS + 1000);
    const idle = await s.request('GET', statusPath(alice.userId), { token: bob.accessToken });
    assert.equal(idle.body.presence, 'unavailable', JSON.stringify(idle.body));
    assert.ok(idle.body.last_active_ago >= IDLE_MS);
    await sync(s, alice);
    const back = await s.request('GET', statusPath(alice.userId), { token: bob.accessToken });
    assert.equal(back.body.presence, 'online');
    assert.equal(back.body.currently_active, true);
  });

  it('a user who keeps syncing stays online past both timeouts', async () => {
    const since = (await sync(s, bob, { set_presence: 'offline' })).next_batch;
    const start = Date.now();
    let token: string | undefined;
    while (Date.now() - start < OFFLINE_MS + 2000) {
      // Long-polls shorter than the idle timeout, as a client's loop would make them.
      const body = await sync(s, carol, { since: token, timeout: 300 });
      token = body.next_batch;
      const got = await s.request('GET', statusPath(carol.userId), { token: bob.accessToken });
      assert.equal(got.body.presence, 'online', `${Date.now() - start} ms: ${JSON.stringify(got.body)}`);
    }
    const changes = await s.request('GET', syncPath({ since, set_presence: 'offline' }), { token: bob.accessToken });
    assert.deepEqual(
      presenceOf(changes.body, carol.userId).map((e: any) => e.content.presence),
      ['online'],
      'the only change others saw is carol coming online',
    );
  });
});
