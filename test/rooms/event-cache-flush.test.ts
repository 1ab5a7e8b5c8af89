import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ALL_KEYS } from '../../src/cluster/bus.js';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { createRoom, expectStatus, sendText } from './room-helpers.js';

let server: TestServer;
let alice: TestUser;

before(async () => {
  server = await startTestServer();
  alice = await server.registerUser('flush_alice');
});
after(async () => {
  await server.stop();
});

const C = '/_matrix/client/v3';
const e = encodeURIComponent;

test('a flush of every cache (the bus lost track of other nodes\' changes) drops cached events too', async () => {
  const roomId = await createRoom(server, alice);
  const eventId = await sendText(server, alice, roomId, 'kept then redacted');
  expectStatus(await server.request('PUT', `${C}/rooms/${e(roomId)}/redact/${e(eventId)}/r1`, { token: alice.accessToken, body: {} }), 200);
  const get = async () => {
    const res = await server.request('GET', `${C}/rooms/${e(roomId)}/event/${e(eventId)}`, { token: alice.accessToken });
    expectStatus(res, 200);
    return res.body as { content: { body?: string } };
  };
  assert.equal((await get()).content.body, undefined, 'redacted');
  // Another node un-redacts it (as a partial-state fill that withdraws the redaction does) and
  // the invalidation is lost: only the flush tells this node.
  await server.hs.ctx.db.updateTable('events').set({ redacted_by: null }).where('event_id', '=', eventId).execute();
  assert.equal((await get()).content.body, undefined, 'still cached');
  server.hs.ctx.bus.invalidate({ cache: ALL_KEYS, key: ALL_KEYS });
  assert.equal((await get()).content.body, 'kept then redacted');
});
