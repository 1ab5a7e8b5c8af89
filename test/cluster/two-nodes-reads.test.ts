import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { TestServer, TestUser } from '../helpers/server.js';
import { C, createRoom, e, expectStatus, join, membershipAction, sendText } from '../rooms/room-helpers.js';
import { median, NEEDS_PG, startNodes, stopNodes, syncUntil, untilWaiting } from './cluster-helpers.js';

/**
 * Two nodes on one database must read as one server (CLUSTER.md 3 and 9):
 * whatever a write through node A changed, a request through node B made
 * after A answered sees it, whatever B had cached.
 */
describe('reads across two nodes', { skip: NEEDS_PG }, () => {
  let a: TestServer;
  let b: TestServer;
  let alice: TestUser;
  let bob: TestUser;

  before(async () => {
    [a, b] = await startNodes(2);
    alice = await a.registerUser('cr_alice');
    bob = await b.registerUser('cr_bob');
  });
  after(async () => {
    await stopNodes([a, b]);
  });

  async function syncToken(node: TestServer, user: TestUser): Promise<string> {
    const res = await node.request('GET', `${C}/sync?timeout=0`, { token: user.accessToken });
    expectStatus(res, 200);
    return res.body.next_batch as string;
  }

  /** Milliseconds from starting a send through `writer` to the long-poll on `reader` answering with it. */
  async function wakeLatency(writer: TestServer, reader: TestServer, roomId: string, i: number): Promise<number> {
    const since = await syncToken(reader, bob);
    const waiting = reader.hs.ctx.services.sync.notifier.waiting;
    const poll = reader.request('GET', `${C}/sync?timeout=20000&since=${e(since)}`, { token: bob.accessToken });
    await untilWaiting(reader, waiting + 1);
    const t0 = performance.now();
    await sendText(writer, alice, roomId, `wake ${i}`);
    await syncUntil(reader, bob, poll, (body) => (body.rooms?.join?.[roomId]?.timeline?.events ?? []).some((ev: any) => ev.content?.body === `wake ${i}`));
    return performance.now() - t0;
  }

  test('a long-poll on B wakes for a message sent through A, about as fast as on one node', async () => {
    const roomId = await createRoom(a, alice, { preset: 'public_chat' });
    expectStatus(await join(b, bob, roomId), 200);
    const single: number[] = [];
    const cross: number[] = [];
    for (let i = 0; i < 7; i++) {
      single.push(await wakeLatency(a, a, roomId, i));
      cross.push(await wakeLatency(a, b, roomId, 100 + i));
    }
    const p50Single = median(single);
    const p50Cross = median(cross);
    console.log(`sync wake-up p50: one node ${p50Single.toFixed(1)} ms, A->B ${p50Cross.toFixed(1)} ms`);
    // Without the bus, B answers only when the long-poll times out (20 s).
    assert.ok(p50Cross <= 2 * p50Single + 15, `A->B wake-up ${p50Cross.toFixed(1)} ms is within 2x of one node's ${p50Single.toFixed(1)} ms`);
  });

  test('typing through A is seen by a long-poll on B, and so is its end', async () => {
    const roomId = await createRoom(a, alice, { preset: 'public_chat' });
    expectStatus(await join(b, bob, roomId), 200);
    const typingIn = (res: any): string[] | undefined =>
      res.body.rooms?.join?.[roomId]?.ephemeral?.events?.find((ev: any) => ev.type === 'm.typing')?.content?.user_ids;
    let since = await syncToken(b, bob);
    for (const typing of [true, false]) {
      const waiting = b.hs.ctx.services.sync.notifier.waiting;
      const poll = b.request('GET', `${C}/sync?timeout=10000&since=${e(since)}`, { token: bob.accessToken });
      await untilWaiting(b, waiting + 1);
      const t0 = performance.now();
      expectStatus(await a.request('PUT', `${C}/rooms/${e(roomId)}/typing/${e(alice.userId)}`, { token: alice.accessToken, body: { typing, timeout: 30000 } }), 200);
      const res = await syncUntil(b, bob, poll, (body) => typingIn({ body }) !== undefined);
      console.log(`typing ${typing} A->B in ${(performance.now() - t0).toFixed(1)} ms`);
      assert.deepEqual(typingIn(res), typing ? [alice.userId] : []);
      since = res.body.next_batch;
    }
  });

  test('a node started later knows who is typing', async () => {
    const roomId = await createRoom(a, alice, { preset: 'public_chat' });
    expectStatus(await join(b, bob, roomId), 200);
    expectStatus(await a.request('PUT', `${C}/rooms/${e(roomId)}/typing/${e(alice.userId)}`, { token: alice.accessToken, body: { typing: true, timeout: 30000 } }), 200);
    await b.restart();
    const res = await b.request('GET', `${C}/sync?timeout=0`, { token: bob.accessToken });
    expectStatus(res, 200);
    const ev = res.body.rooms?.join?.[roomId]?.ephemeral?.events?.find((x: any) => x.type === 'm.typing');
    assert.deepEqual(ev?.content?.user_ids, [alice.userId]);
  });

  test('a user who left through A cannot read new messages through B and is no longer a member there', async () => {
    const roomId = await createRoom(a, alice, { preset: 'public_chat', initial_state: [{ type: 'm.room.history_visibility', state_key: '', content: { history_visibility: 'joined' } }] });
    expectStatus(await join(b, bob, roomId), 200);
    await sendText(a, alice, roomId, 'before');
    // B has the room cached with bob in it.
    expectStatus(await b.request('GET', `${C}/rooms/${e(roomId)}/messages?dir=b&limit=10`, { token: bob.accessToken }), 200);
    const membersBefore = await b.request('GET', `${C}/rooms/${e(roomId)}/joined_members`, { token: alice.accessToken });
    assert.ok(bob.userId in membersBefore.body.joined);

    expectStatus(await membershipAction(a, bob, roomId, 'leave'), 200);
    const secret = await sendText(a, alice, roomId, 'after bob left');

    const ev = await b.request('GET', `${C}/rooms/${e(roomId)}/event/${e(secret)}`, { token: bob.accessToken });
    assert.ok(ev.status === 404 || ev.status === 403, `bob cannot fetch the new event through B (got ${ev.status})`);
    const msgs = await b.request('GET', `${C}/rooms/${e(roomId)}/messages?dir=b&limit=20`, { token: bob.accessToken });
    if (msgs.status === 200) {
      assert.ok(!msgs.body.chunk.some((x: any) => x.event_id === secret), 'the new message is not in what B shows bob');
    }
    const members = await b.request('GET', `${C}/rooms/${e(roomId)}/joined_members`, { token: alice.accessToken });
    expectStatus(members, 200);
    assert.ok(!(bob.userId in members.body.joined), 'B no longer lists bob as joined');
  });

  test('a user who joined through B can leave through A', async () => {
    const roomId = await createRoom(a, alice, { preset: 'public_chat' });
    // A has the room cached without bob.
    await sendText(a, alice, roomId, 'hello');
    expectStatus(await join(b, bob, roomId), 200);
    expectStatus(await membershipAction(a, bob, roomId, 'leave'), 200);
    const state = await a.request('GET', `${C}/rooms/${e(roomId)}/state/m.room.member/${e(bob.userId)}`, { token: alice.accessToken });
    expectStatus(state, 200);
    assert.equal(state.body.membership, 'leave');
  });

  test('a message redacted through A is served pruned by B, though B had already formatted it for a sync', async () => {
    const roomId = await createRoom(a, alice, { preset: 'public_chat', name: 'redacted across nodes' });
    expectStatus(await join(b, bob, roomId), 200);
    const doomed = await sendText(a, alice, roomId, 'to be redacted');
    const filter = e(JSON.stringify({ room: { rooms: [roomId], state: { lazy_load_members: true }, timeline: { limit: 10 } } }));
    const served = async (): Promise<any> => {
      const res = await b.request('GET', `${C}/sync?filter=${filter}`, { token: bob.accessToken });
      expectStatus(res, 200);
      return res.body.rooms.join[roomId].timeline.events.find((x: any) => x.event_id === doomed);
    };
    // B reads the message for bob's initial sync, and keeps its client form.
    assert.equal((await served()).content.body, 'to be redacted');
    const redaction = await a.request('PUT', `${C}/rooms/${e(roomId)}/redact/${e(doomed)}/cr1`, { token: alice.accessToken, body: { reason: 'gone' } });
    expectStatus(redaction, 200);
    const after = await served();
    assert.deepEqual(after.content, {}, 'the content is pruned');
    assert.equal(after.unsigned?.redacted_because?.event_id, redaction.body.event_id);
  });

  test('retries of one transaction through both nodes at once answer one event', async () => {
    // A client whose answer was lost retries through whichever node the balancer picks: the nodes
    // race to write the same transaction, the unique index refuses all but one, and the others
    // answer the stored event.
    const roomId = await createRoom(a, alice, { preset: 'public_chat' });
    const txnId = `race-${Date.now()}`;
    const path = `${C}/rooms/${e(roomId)}/send/m.room.message/${txnId}`;
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, i) => (i % 2 === 0 ? a : b).request('PUT', path, { token: alice.accessToken, body: { msgtype: 'm.text', body: 'raced' } })),
    );
    for (const res of answers) expectStatus(res, 200);
    assert.equal(new Set(answers.map((r) => r.body.event_id)).size, 1);
    const msgs = await b.request('GET', `${C}/rooms/${e(roomId)}/messages?dir=b&limit=20`, { token: alice.accessToken });
    assert.equal(msgs.body.chunk.filter((ev: any) => ev.content?.body === 'raced').length, 1);
  });

  test("a display name changed through A shows in B's member list", async () => {
    const roomId = await createRoom(a, alice, { preset: 'public_chat' });
    expectStatus(await join(b, bob, roomId), 200);
    const before = await b.request('GET', `${C}/rooms/${e(roomId)}/joined_members`, { token: bob.accessToken });
    expectStatus(before, 200);
    expectStatus(await a.request('PUT', `${C}/profile/${e(alice.userId)}/displayname`, { token: alice.accessToken, body: { displayname: 'Alice on A' } }), 200);
    const joined = await b.request('GET', `${C}/rooms/${e(roomId)}/joined_members`, { token: bob.accessToken });
    expectStatus(joined, 200);
    assert.equal(joined.body.joined[alice.userId]?.display_name, 'Alice on A');
    const members = await b.request('GET', `${C}/rooms/${e(roomId)}/members`, { token: bob.accessToken });
    expectStatus(members, 200);
    const ev = members.body.chunk.find((m: any) => m.state_key === alice.userId);
    assert.equal(ev?.content?.displayname, 'Alice on A');
  });

  test('an access token logged out on A is refused on B at once', async () => {
    const carol = await a.registerUser('cr_carol');
    // B has the token cached.
    expectStatus(await b.request('GET', `${C}/account/whoami`, { token: carol.accessToken }), 200);
    expectStatus(await a.request('POST', `${C}/logout`, { token: carol.accessToken, body: {} }), 200);
    expectStatus(await b.request('GET', `${C}/account/whoami`, { token: carol.accessToken }), 401, 'M_UNKNOWN_TOKEN');
  });

  test('push rules changed through A apply on B', async () => {
    const rule = `${C}/pushrules/global/override/.m.rule.master/enabled`;
    const read = async () => (await b.request('GET', `${C}/pushrules/global/override/.m.rule.master`, { token: alice.accessToken })).body.enabled;
    assert.equal(await read(), false);
    expectStatus(await a.request('PUT', rule, { token: alice.accessToken, body: { enabled: true } }), 200);
    assert.equal(await read(), true);
  });
});
