import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { stateKey } from '../../src/core/types.js';
import { BatchStates } from '../../src/rooms/pipeline/batch-states.js';
import { AuthChainIndex } from '../../src/rooms/state/auth-chain-index.js';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { createRoom, expectStatus, putState, sendText } from './room-helpers.js';

let server: TestServer;
let alice: TestUser;

before(async () => {
  server = await startTestServer();
  alice = await server.registerUser('sr_alice');
});
after(async () => {
  await server.stop();
});

test('state before an event: one prev reuses its group; differing prevs are resolved with the version\'s algorithm', async () => {
  for (const v of ['10', '12']) {
    const roomId = await createRoom(server, alice, { name: 'first', room_version: v });
    const a = await sendText(server, alice, roomId, 'after first name');
    const topic = await putState(server, alice, roomId, 'm.room.topic', '', { topic: 'topic' });
    expectStatus(topic, 200);
    const rename = await putState(server, alice, roomId, 'm.room.name', '', { name: 'second' });
    expectStatus(rename, 200);
    const b = await sendText(server, alice, roomId, 'after second name');

    const core = server.hs.ctx.services.rooms.core;
    const planner = new BatchStates(server.hs.ctx.db, core.events, core.groups, (await core.heads.get(roomId))!.version, new AuthChainIndex().overlay());
    const single = await planner.stateBefore([b]);
    const evB = await core.events.get(b);
    assert.equal(single.group, evB!.stateGroup, 'one prev: its group is reused');
    assert.equal(single.state.get(stateKey('m.room.name', '')), rename.body.event_id);

    // As if `a` and `b` were two forward extremities.
    const forked = await planner.stateBefore([a, b]);
    assert.equal(forked.group, null);
    assert.equal(forked.state.get(stateKey('m.room.topic', '')), topic.body.event_id, 'unconflicted keys are kept');
    assert.equal(forked.state.get(stateKey('m.room.name', '')), rename.body.event_id, 'the later name wins the conflict');
    assert.equal(forked.state.size, single.state.size);
  }
});
