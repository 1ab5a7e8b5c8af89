// A room head loaded while another node's change to the room is announced: the load may have read
// the state from before that change, and the announcement found nothing cached to drop, so the
// loaded head must not stay cached (else a guest_access or ban set through one node is missed by
// the other until the room's next event).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { HEAD_CACHE } from '../../src/rooms/state/room-head.js';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { createRoom } from './room-helpers.js';

let server: TestServer;
let alice: TestUser;

before(async () => {
  server = await startTestServer();
  alice = await server.registerUser('hlr_alice');
});
after(async () => {
  await server.stop();
});

test('a head loaded while its room is invalidated is answered but not cached', async () => {
  const heads = server.hs.ctx.services.rooms.core.heads;
  const roomId = await createRoom(server, alice);
  for (const drop of [() => heads.invalidate(roomId), () => server.hs.ctx.bus.invalidate({ cache: HEAD_CACHE, key: roomId })]) {
    heads.invalidate(roomId);
    const loading = heads.get(roomId);
    drop();
    assert.equal((await loading)?.roomId, roomId, 'the load still answers');
    assert.equal(heads.peek(roomId), undefined, 'but is not kept');
    assert.equal((await heads.get(roomId))?.roomId, roomId);
    assert.ok(heads.peek(roomId), 'the next load is kept');
  }
});
