/**
 * MSC4140 beyond scheduling: a sent delayed event carries its delay id in `unsigned`
 * (`org.matrix.msc4140.delay_id` while unstable) for its sender only ("`delay_id` in `unsigned`
 * event data"); the management and lookup endpoints are rate limited; and events due together
 * still pass the sender's message budget when they are sent ("Rate-limiting at the point of
 * sending"), those refused being finalised with the error.
 */
import assert from 'node:assert/strict';
import { after, afterEach, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { C, createRoom } from '../sync/util.js';

const U = '/_matrix/client/unstable/org.matrix.msc4140';
const KEY = 'org.matrix.msc4140.delay_id';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('delayed events: delay id in unsigned, rate limits', { timeout: 120_000 }, () => {
  let s: TestServer | undefined;
  afterEach(async () => {
    await s?.stop();
    s = undefined;
  });
  after(async () => {
    await s?.stop();
  });

  it('the sender sees the delay id in unsigned of the sent event; others do not', async () => {
    s = await startTestServer();
    const server = s;
    const alice = await server.registerUser('du_alice');
    const bob = await server.registerUser('du_bob');
    const roomId = await createRoom(server, alice, { preset: 'public_chat' });
    const room = encodeURIComponent(roomId);
    assert.equal((await server.request('POST', `${C}/rooms/${room}/join`, { token: bob.accessToken, body: {} })).status, 200);
    const bobSince = (await server.request('GET', `${C}/sync?timeout=0`, { token: bob.accessToken })).body.next_batch;
    const aliceSince = (await server.request('GET', `${C}/sync?timeout=0`, { token: alice.accessToken })).body.next_batch;

    const msg = await server.request('PUT', `${C}/rooms/${room}/send/m.room.message/du1?org.matrix.msc4140.delay=60000`, {
      token: alice.accessToken,
      body: { msgtype: 'm.text', body: 'delayed hello' },
    });
    assert.equal(msg.status, 200, JSON.stringify(msg.body));
    const state = await server.request('PUT', `${C}/rooms/${room}/state/org.example.status/${encodeURIComponent(alice.userId)}?org.matrix.msc4140.delay=60000`, {
      token: alice.accessToken,
      body: { away: true },
    });
    assert.equal(state.status, 200, JSON.stringify(state.body));
    const plain = await server.request('PUT', `${C}/rooms/${room}/send/m.room.message/du2`, { token: alice.accessToken, body: { msgtype: 'm.text', body: 'plain' } });
    assert.equal(plain.status, 200);
    for (const id of [msg.body.delay_id, state.body.delay_id]) {
      const r = await server.request('POST', `${U}/delayed_events/${id}/send`, { body: {} });
      assert.equal(r.status, 200, JSON.stringify(r.body));
    }

    const page = await server.request('GET', `${C}/rooms/${room}/messages?dir=b&limit=10`, { token: alice.accessToken });
    const sentMsg = page.body.chunk.find((e: any) => e.content?.body === 'delayed hello');
    const sentState = page.body.chunk.find((e: any) => e.type === 'org.example.status');
    const sentPlain = page.body.chunk.find((e: any) => e.content?.body === 'plain');
    assert.equal(sentMsg.unsigned[KEY], msg.body.delay_id);
    assert.equal(sentMsg.unsigned.transaction_id, undefined, 'no client transaction made this event');
    assert.equal(sentState.unsigned[KEY], state.body.delay_id);
    assert.equal(sentPlain.unsigned[KEY], undefined);
    assert.equal(sentPlain.unsigned.transaction_id, 'du2');

    const aliceSync = await server.request('GET', `${C}/sync?timeout=0&since=${aliceSince}`, { token: alice.accessToken });
    const aliceTimeline = aliceSync.body.rooms.join[roomId].timeline.events;
    assert.equal(aliceTimeline.find((e: any) => e.content?.body === 'delayed hello')?.unsigned[KEY], msg.body.delay_id);

    const bobPage = await server.request('GET', `${C}/rooms/${room}/messages?dir=b&limit=10`, { token: bob.accessToken });
    for (const e of bobPage.body.chunk) assert.equal(e.unsigned?.[KEY], undefined, 'only the sender sees the delay id');
    const bobSync = await server.request('GET', `${C}/sync?timeout=0&since=${bobSince}`, { token: bob.accessToken });
    const bobTimeline = bobSync.body.rooms.join[roomId].timeline.events;
    assert.ok(bobTimeline.some((e: any) => e.content?.body === 'delayed hello'));
    for (const e of bobTimeline) assert.equal(e.unsigned?.[KEY], undefined);
  });

  it('managing and listing delayed events have their own rate limit', async () => {
    s = await startTestServer({ config: { rate_limits: { enabled: true, delayed_events: { per_second: 0.01, burst: 3 } } } });
    const server = s;
    const alice = await server.registerUser('dl_alice');
    const roomId = await createRoom(server, alice, {});
    const put = await server.request('PUT', `${C}/rooms/${encodeURIComponent(roomId)}/send/m.room.message/dl1?org.matrix.msc4140.delay=60000`, {
      token: alice.accessToken,
      body: { msgtype: 'm.text', body: 'heartbeat' },
    });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    const id = put.body.delay_id;
    // Unauthenticated heartbeats (as an SFU would send them) share the caller's address budget.
    for (let i = 0; i < 3; i++) assert.equal((await server.request('POST', `${U}/delayed_events/${id}/restart`, { body: {} })).status, 200);
    const refused = await server.request('POST', `${U}/delayed_events/${id}/restart`, { body: {} });
    assert.equal(refused.status, 429);
    assert.equal(refused.body.errcode, 'M_LIMIT_EXCEEDED');
    assert.ok(refused.body.retry_after_ms > 0);
    // Lookups count per user.
    for (let i = 0; i < 3; i++) assert.equal((await server.request('GET', `${U}/delayed_events`, { token: alice.accessToken })).status, 200);
    assert.equal((await server.request('GET', `${U}/delayed_events/${id}`, { token: alice.accessToken })).status, 429);
  });

  it('events due together pass the message budget; the ones over it end with the error', async () => {
    // Three scheduling requests and one send fit the burst; the later deliveries do not.
    s = await startTestServer({ config: { rate_limits: { enabled: true, message: { per_second: 0.01, burst: 4 }, delayed_events: { per_second: 100, burst: 100 } } } });
    const server = s;
    const alice = await server.registerUser('dm_alice');
    const roomId = await createRoom(server, alice, {});
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await server.request('PUT', `${C}/rooms/${encodeURIComponent(roomId)}/send/m.room.message/dm${i}?org.matrix.msc4140.delay=300`, {
        token: alice.accessToken,
        body: { msgtype: 'm.text', body: `due ${i}` },
      });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      ids.push(r.body.delay_id);
    }
    const deadline = Date.now() + 10_000;
    let finalised: any[] = [];
    while (Date.now() < deadline) {
      finalised = (await server.request('GET', `${U}/delayed_events?status=finalised`, { token: alice.accessToken })).body.delayed_events;
      if (finalised.length === 3) break;
      await sleep(100);
    }
    assert.equal(finalised.length, 3, JSON.stringify(finalised));
    const sent = finalised.filter((e) => e.event_id !== undefined);
    const failed = finalised.filter((e) => e.error !== undefined);
    assert.equal(sent.length, 1, 'one delivery fits the budget left');
    assert.equal(failed.length, 2);
    for (const f of failed) assert.equal(f.error.errcode, 'M_LIMIT_EXCEEDED');
    const page = await server.request('GET', `${C}/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=20`, { token: alice.accessToken });
    assert.equal(page.body.chunk.filter((e: any) => e.type === 'm.room.message').length, 1, 'refused events were not sent later');
  });
});
