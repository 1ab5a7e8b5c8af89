import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { JsonObject } from '../../src/core/types.js';
import { readStreamPositions } from '../../src/db/stream-positions.js';
import type { SyncResponder } from '../../src/sync/sync-response.js';
import { parseSyncToken } from '../../src/sync/token.js';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { bodies, createRoom, invite, join, leave, send, setState, sync } from './util.js';

/** `unsigned.age` depends on when an event is formatted: everything else must be equal. */
function withoutAge(v: unknown): unknown {
  return JSON.parse(JSON.stringify(v, (k, x) => (k === 'age' ? undefined : x)));
}

/**
 * A long-poll woken by new events reads the timelines of the rooms the
 * wake-up named early, alongside the membership reads. The response must be
 * the one the same sync computes without that hint.
 */
describe('a woken sync answers as an unhinted one (spec: Syncing, incremental sync)', () => {
  let s: TestServer;
  let alice: TestUser;
  let bob: TestUser;
  let busy: string;
  let quiet: string;
  let still: string;
  let fresh: string;
  let rejoined: string;
  let since: string;

  const responder = () => (s.hs.ctx.services.sync as unknown as { responder: SyncResponder }).responder;

  async function build(o: { filter?: string; fullState?: boolean; useStateAfter?: boolean }, eventRooms: string[]): Promise<JsonObject> {
    const filter = await s.hs.ctx.services.sync.filters.resolve(bob.userId, o.filter);
    const heads = await readStreamPositions(s.hs.ctx.db);
    const r = await responder().build(
      { userId: bob.userId, deviceId: bob.deviceId, since: parseSyncToken(since), filter, fullState: o.fullState === true, useStateAfter: o.useStateAfter === true },
      heads,
      eventRooms,
    );
    return r.body;
  }

  before(async () => {
    s = await startTestServer();
    alice = await s.registerUser('woken_alice');
    bob = await s.registerUser('woken_bob');
    busy = await createRoom(s, alice, { preset: 'public_chat', name: 'busy' });
    quiet = await createRoom(s, alice, { preset: 'public_chat' });
    still = await createRoom(s, alice, { preset: 'public_chat' });
    rejoined = await createRoom(s, alice, { preset: 'public_chat' });
    for (const r of [busy, quiet, still, rejoined]) await join(s, bob, r);
    await send(s, alice, rejoined, 'before the token');
    since = (await sync(s, bob)).next_batch;
    // Left and joined again after the token: rendered in full, from the start of the room.
    await leave(s, bob, rejoined);
    await join(s, bob, rejoined);
    await send(s, alice, rejoined, 'after the rejoin');
    // More than a timeline's worth in `busy`, with a topic change in the gap; one message in `quiet`.
    await setState(s, alice, busy, 'm.room.topic', '', { topic: 'in the gap' });
    for (let i = 0; i < 14; i++) await send(s, alice, busy, `busy ${i}`);
    await send(s, alice, quiet, 'quiet one');
    // A room bob joins after the token: rendered in full even though the wake-up names it.
    fresh = await createRoom(s, alice, { preset: 'private_chat', name: 'fresh' });
    await invite(s, alice, fresh, bob.userId);
    await join(s, bob, fresh);
    await send(s, alice, fresh, 'welcome');
  });
  after(async () => {
    await s.stop();
  });

  for (const [name, o] of [
    ['default filter', {}],
    ['a small timeline limit with a type filter', { filter: JSON.stringify({ room: { timeline: { limit: 3, types: ['m.room.message'] } } }) }],
    ['use_state_after', { useStateAfter: true }],
    ['full_state', { fullState: true }],
  ] as const) {
    it(`${name}: the same response with and without the wake-up's rooms`, async () => {
      const hinted = await build(o, [busy, quiet, fresh, rejoined, '!unknown:localhost']);
      const plain = await build(o, []);
      assert.deepEqual(withoutAge(hinted), withoutAge(plain));
      const join = (hinted.rooms as any).join;
      // full_state lists every joined room; otherwise only those where something happened.
      assert.deepEqual(Object.keys(join).sort(), (o.fullState ? [busy, fresh, quiet, rejoined, still] : [busy, fresh, quiet, rejoined]).sort());
      assert.ok(bodies(join[rejoined].timeline.events).includes('before the token'), 'a rejoined room is rendered from its start');
      assert.equal(join[busy].timeline.limited, true);
      assert.deepEqual(bodies(join[quiet].timeline.events), ['quiet one']);
      assert.deepEqual(bodies(join[fresh].timeline.events), ['welcome']);
      const freshState = [...(join[fresh].state?.events ?? join[fresh].state_after?.events), ...join[fresh].timeline.events];
      assert.ok(freshState.some((e: any) => e.type === 'm.room.create'), 'a newly joined room comes with its full state');
      if (!o.useStateAfter) assert.ok(join[busy].state.events.some((e: any) => e.type === 'm.room.topic'), 'the gap state of a limited timeline');
      assert.equal(join[quiet].unread_notifications.notification_count, 1);
    });
  }
});
