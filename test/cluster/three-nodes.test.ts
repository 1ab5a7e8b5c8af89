import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { TestServer, TestUser } from '../helpers/server.js';
import { C, createRoom, e, expectStatus, join, membershipAction, sendText } from '../rooms/room-helpers.js';
import { NEEDS_PG, startNodes, stopNodes, syncUntil, untilWaiting } from './cluster-helpers.js';

/** Three nodes on one database: every node hears every other (CLUSTER.md 2 and 3). */
describe('three nodes', { skip: NEEDS_PG }, () => {
  let nodes: TestServer[];
  let users: TestUser[];

  before(async () => {
    nodes = await startNodes(3);
    users = await Promise.all(nodes.map((n, i) => n.registerUser(`tri_${i}`)));
  });
  after(async () => {
    await stopNodes(nodes);
  });

  async function since(node: TestServer, user: TestUser): Promise<string> {
    const res = await node.request('GET', `${C}/sync?timeout=0`, { token: user.accessToken });
    expectStatus(res, 200);
    return res.body.next_batch;
  }

  test('a message through one node wakes long-polls on the two others; members and typing agree everywhere', async () => {
    const [a, b, c] = nodes as [TestServer, TestServer, TestServer];
    const [ua, ub, uc] = users as [TestUser, TestUser, TestUser];
    const ready = await b.request('GET', '/ready');
    assert.equal(ready.status, 200);
    const ids = await Promise.all(nodes.map(async (n) => (await n.request('GET', '/health')).body.node as string));
    assert.deepEqual([...ready.body.nodes].sort(), [...ids].sort(), 'each node sees the three alive');
    const roomId = await createRoom(a, ua, { preset: 'public_chat' });
    expectStatus(await join(b, ub, roomId), 200);
    expectStatus(await join(c, uc, roomId), 200);

    const polls = [] as Promise<any>[];
    let eventId = '';
    for (const [node, user] of [[b, ub], [c, uc]] as const) {
      const token = await since(node, user);
      const waiting = node.hs.ctx.services.sync.notifier.waiting;
      const poll = node.request('GET', `${C}/sync?timeout=10000&since=${e(token)}`, { token: user.accessToken });
      await untilWaiting(node, waiting + 1);
      polls.push(poll.then((first) => syncUntil(node, user, Promise.resolve(first), (body) => eventId !== '' && body.rooms?.join?.[roomId]?.timeline?.events?.some((ev: any) => ev.event_id === eventId))));
    }
    const t0 = performance.now();
    eventId = await sendText(a, ua, roomId, 'to everyone');
    await Promise.all(polls);
    console.log(`A -> B and C woke in ${(performance.now() - t0).toFixed(1)} ms`);

    // C's user leaves through B; A and C both stop listing them at once.
    expectStatus(await membershipAction(b, uc, roomId, 'leave'), 200);
    for (const node of [a, c]) {
      const joined = await node.request('GET', `${C}/rooms/${e(roomId)}/joined_members`, { token: ua.accessToken });
      expectStatus(joined, 200);
      assert.deepEqual(Object.keys(joined.body.joined).sort(), [ua.userId, ub.userId].sort());
    }

    // Typing through B is seen through A and through B alike.
    expectStatus(await b.request('PUT', `${C}/rooms/${e(roomId)}/typing/${e(ub.userId)}`, { token: ub.accessToken, body: { typing: true, timeout: 30000 } }), 200);
    const typists = await Promise.all(
      [a, b].map(async (node) => {
        const res = await node.request('GET', `${C}/sync?timeout=0`, { token: ua.accessToken });
        return res.body.rooms.join[roomId].ephemeral.events.find((x: any) => x.type === 'm.typing')?.content.user_ids;
      }),
    );
    assert.deepEqual(typists, [[ub.userId], [ub.userId]]);
  });
});
