/**
 * Call events are ordinary events to sliding sync: an `m.call.invite` is activity that moves its
 * room up the list (MSC4186 `bump_stamp`) while the rest of a call's signalling does not, both
 * reach the other party in the timeline, and MatrixRTC's `org.matrix.msc3401.call.member` state
 * (one key per user and device) comes through `required_state` like any other state.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { createRoom, join, send, setState } from '../sync/util.js';
import { SlidingClient } from './client.js';

describe('sliding sync: call events', { timeout: 60_000 }, () => {
  let s: TestServer;
  let alice: TestUser;
  let bob: TestUser;
  let call: string;
  let other: string;

  before(async () => {
    s = await startTestServer();
    alice = await s.registerUser('ssc_alice');
    bob = await s.registerUser('ssc_bob');
    call = await createRoom(s, alice, { preset: 'public_chat', name: 'the call room' });
    await join(s, bob, call);
    other = await createRoom(s, bob, { name: 'busier' });
  });
  after(async () => {
    await s.stop();
  });

  const list = {
    lists: { all: { ranges: [[0, 9]], timeline_limit: 5, required_state: [['org.matrix.msc3401.call.member', '*']] } },
  };

  it('an m.call.invite moves its room to the top; candidates do not', async () => {
    const c = new SlidingClient(s, bob, 'calls');
    await c.sync(list);
    await send(s, bob, other, 'bob is busy elsewhere');
    await c.sync(list);
    assert.equal(c.order()[0], other);

    await send(s, alice, call, { call_id: 'c1', version: '1', party_id: 'p', lifetime: 60000, offer: { type: 'offer', sdp: 'v=0' } }, 'm.call.invite');
    const invited = await c.sync(list);
    assert.equal(invited.rooms[call].timeline.at(-1).type, 'm.call.invite');
    assert.equal(c.order()[0], call, 'a call invite is activity');

    await send(s, bob, other, 'back to the other room');
    await c.sync(list);
    await send(s, alice, call, { call_id: 'c1', version: '1', party_id: 'p', candidates: [] }, 'm.call.candidates');
    const candidates = await c.sync(list);
    assert.equal(candidates.rooms[call].timeline.at(-1).type, 'm.call.candidates', 'delivered like any event');
    assert.equal(c.order()[0], other, 'signalling is not activity');
  });

  it("a MatrixRTC member's state comes through required_state", async () => {
    const c = new SlidingClient(s, bob, 'rtc');
    await c.sync(list);
    const key = `_${alice.userId}_ALICEDEVICE_m.call`;
    await setState(s, alice, call, 'org.matrix.msc3401.call.member', key, {
      application: 'm.call',
      call_id: '',
      scope: 'm.room',
      device_id: 'ALICEDEVICE',
      focus_active: { type: 'livekit', focus_selection: 'oldest_membership' },
      foci_preferred: [],
    });
    const body = await c.sync(list);
    const member = body.rooms[call].required_state.find((e: any) => e.type === 'org.matrix.msc3401.call.member');
    assert.equal(member?.state_key, key);
    assert.equal(member.content.device_id, 'ALICEDEVICE');

    // Leaving the call empties the content: the client sees the new (empty) state.
    await setState(s, alice, call, 'org.matrix.msc3401.call.member', key, {});
    const left = await c.sync(list);
    assert.deepEqual(left.rooms[call].required_state.find((e: any) => e.state_key === key)?.content, {});
  });
});
