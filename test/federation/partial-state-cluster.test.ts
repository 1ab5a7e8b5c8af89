// A partial-state join's resync in a cluster (CLUSTER.md 5): it runs under a lease on one node;
// the fill reaches the other node through the bus like any write, waking its long-polls; when the
// node resyncing stops in the middle, another node finds the room still marked and finishes it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { NEEDS_PG, startNodes, stopNodes, syncUntil, untilWaiting } from '../cluster/cluster-helpers.js';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { C, createRoom, e, expectStatus } from '../rooms/room-helpers.js';
import { eventually, freePort, holdingProxy } from './federation-helpers.js';

describe('a partial-state join in a cluster', { skip: NEEDS_PG, timeout: 180_000 }, () => {
  let nodes: TestServer[];
  let a: TestServer;
  let proxy: Awaited<ReturnType<typeof holdingProxy>>;
  let alice: TestUser;

  before(async () => {
    proxy = await holdingProxy('/_matrix/federation/v1/state');
    const pa = await freePort();
    proxy.target(pa);
    nodes = await startNodes(2, { serverName: 'b.test', config: { cluster: { lease_ttl_ms: 3000 }, federation: { resolve: { 'a.test': proxy.url } } } });
    a = await startTestServer({ serverName: 'a.test', config: { listen: `127.0.0.1:${pa}`, federation: { resolve: { 'b.test': nodes[0]!.url } } } });
    alice = await a.registerUser('alice');
  });
  after(async () => {
    proxy.release();
    await a?.stop();
    if (nodes) await stopNodes([nodes[0]!]);
    await proxy.close();
  });

  it('a /sync long-poll on the other node returns with the members learnt as soon as the joining node fills the state in', async () => {
    const roomId = await createRoom(a, alice, { preset: 'public_chat', name: 'Woken' });
    const member = await a.registerUser('woken-member');
    expectStatus(await a.request('POST', `${C}/join/${e(roomId)}`, { token: member.accessToken, body: {} }), 200);
    const [other, joiner] = [nodes[0]!, nodes[1]!];
    const bob = await joiner.registerUser('woken-bob');
    proxy.hold();
    const asked = proxy.heldRequests();
    expectStatus(await joiner.request('POST', `${C}/join/${e(roomId)}?server_name=a.test`, { token: bob.accessToken, body: {} }), 200);
    await eventually(async () => proxy.heldRequests() > asked, 'the joining node asking for the state');

    const first = await other.request('GET', `${C}/sync?timeout=0`, { token: bob.accessToken });
    expectStatus(first, 200);
    const memberState = (body: any) => body.rooms?.join?.[roomId]?.state?.events?.find((ev: any) => ev.type === 'm.room.member' && ev.state_key === member.userId);
    assert.equal(memberState(first.body), undefined, 'the member is left out of the partial state');
    const longPollMs = 60_000;
    const started = Date.now();
    const poll = other.request('GET', `${C}/sync?timeout=${longPollMs}&since=${e(first.body.next_batch)}`, { token: bob.accessToken });
    await untilWaiting(other);
    proxy.release();
    const res = await syncUntil(other, bob, poll, (body) => memberState(body) !== undefined, longPollMs);
    assert.equal(memberState(res.body).content.membership, 'join');
    // Woken by the fill, not by the long-poll's timeout (the resync itself takes a few seconds).
    assert.ok(Date.now() - started < longPollMs / 2, `answered after ${Date.now() - started} ms`);
  });

  it('the node that joined stops during the resync; the other node fills the state in', async () => {
    const roomId = await createRoom(a, alice, { preset: 'public_chat', name: 'Cluster' });
    const members = [alice.userId];
    for (let i = 0; i < 4; i++) {
      const u = await a.registerUser(`m${i}`);
      expectStatus(await a.request('POST', `${C}/join/${e(roomId)}`, { token: u.accessToken, body: {} }), 200);
      members.push(u.userId);
    }
    const [first, joiner] = [nodes[0]!, nodes[1]!];
    const bob = await joiner.registerUser('bob');
    proxy.hold();
    expectStatus(await joiner.request('POST', `${C}/join/${e(roomId)}?server_name=a.test`, { token: bob.accessToken, body: {} }), 200);
    await eventually(async () => proxy.heldRequests() >= 1, 'the joining node asking for the state');
    // The joining node holds the room's lease; it stops (giving its lease up as the request fails).
    await joiner.stop();
    proxy.release();
    const listed = await eventually(async () => {
      const res = await first.request('GET', `${C}/rooms/${e(roomId)}/members`, { token: bob.accessToken });
      return res.status === 200 ? res.body.chunk.map((ev: any) => ev.state_key).sort() : undefined;
    }, 'the members listed by the other node', 60_000);
    assert.deepEqual(listed, [...members, bob.userId].sort());
    assert.ok(proxy.heldRequests() >= 2, 'the other node asked for the state itself');
    const row = await first.hs.ctx.db.selectFrom('partial_state_rooms').selectAll().where('room_id', '=', roomId).executeTakeFirst();
    assert.equal(row, undefined);
  });
});
