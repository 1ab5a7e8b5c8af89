import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { selectPresence, updatePresenceTimes } from '../../src/sync/presence-store.js';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { statusPath } from './presence-helpers.js';
import { syncPath } from './util.js';

let s: TestServer;
let alice: TestUser;

before(async () => {
  s = await startTestServer();
  alice = await s.registerUser('race_alice');
});
after(async () => {
  await s.stop();
});

test('a timeout decided from a row that a sync has since moved is dropped, not written over it', async () => {
  const res = await s.request('GET', syncPath({ timeout: 0 }), { token: alice.accessToken });
  assert.equal(res.status, 200);
  const { db } = s.hs.ctx;
  const seen = await selectPresence(db, alice.userId);
  assert.equal(seen?.presence, 'online');
  // The sweep read `seen`; meanwhile alice synced through another node, which moved her timestamps.
  const later = seen!.last_sync_ts + 1000;
  await updatePresenceTimes(db, alice.userId, later, later);
  const lease = await s.hs.ctx.leases.acquire('presence_timeouts');
  assert.ok(lease);
  await s.hs.ctx.services.sync.presence.write({ ...seen!, presence: 'offline' }, { lease, seen: seen! });
  const status = await s.request('GET', statusPath(alice.userId), { token: alice.accessToken });
  assert.equal(status.body.presence, 'online');
  assert.equal((await selectPresence(db, alice.userId))?.last_sync_ts, later);
  // Decided from the row as it is, the timeout applies.
  const now = (await selectPresence(db, alice.userId))!;
  await s.hs.ctx.services.sync.presence.write({ ...now, presence: 'offline' }, { lease, seen: now });
  assert.equal((await s.request('GET', statusPath(alice.userId), { token: alice.accessToken })).body.presence, 'offline');
});
