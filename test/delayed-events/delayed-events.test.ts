/**
 * Delayed events (MSC4140, unstable prefix as matrix-js-sdk calls it):
 * scheduled through /send and /state with `org.matrix.msc4140.delay`,
 * delivered after the delay, restarted, cancelled or sent at once, refused
 * beyond the maximum, and delivered after a server restart that spans the
 * delivery time.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { C, createRoom } from '../sync/util.js';

const U = '/_matrix/client/unstable/org.matrix.msc4140';
const MAX = 60_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('delayed events (MSC4140)', { timeout: 120_000 }, () => {
  let s: TestServer;
  let alice: TestUser;
  let bob: TestUser;
  let roomId: string;
  let txn = 0;

  before(async () => {
    s = await startTestServer({ config: { delayed_events: { max_delay_ms: MAX } } });
    alice = await s.registerUser('de_alice');
    bob = await s.registerUser('de_bob');
    roomId = await createRoom(s, alice, { preset: 'public_chat' });
  });
  after(async () => {
    await s.stop();
  });

  const room = () => encodeURIComponent(roomId);
  const schedule = async (body: string, delay: number, token = alice.accessToken) => {
    const res = await s.request('PUT', `${C}/rooms/${room()}/send/m.room.message/de${++txn}?org.matrix.msc4140.delay=${delay}`, {
      token,
      body: { msgtype: 'm.text', body },
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(typeof res.body.delay_id, 'string');
    assert.equal(res.body.event_id, undefined);
    return res.body.delay_id as string;
  };
  const bodies = async () => {
    const res = await s.request('GET', `${C}/rooms/${room()}/messages?dir=b&limit=50`, { token: alice.accessToken });
    return res.body.chunk.filter((e: any) => e.type === 'm.room.message').map((e: any) => e.content.body as string);
  };
  const until = async (what: string, check: () => Promise<boolean>, ms = 10_000) => {
    const end = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > end) throw new Error(`timed out: ${what}`);
      await sleep(100);
    }
  };

  it('is advertised, with its maximum delay in /capabilities', async () => {
    const v = await s.request('GET', '/_matrix/client/versions');
    assert.equal(v.body.unstable_features['org.matrix.msc4140'], true);
    const caps = await s.request('GET', `${C}/capabilities`, { token: alice.accessToken });
    assert.deepEqual(caps.body.capabilities['org.matrix.msc4140.delayed_events'], { enabled: true, max_delay: MAX });
  });

  it('a delayed message is sent after its delay, not before', async () => {
    const started = Date.now();
    const id = await schedule('later', 1500);
    assert.ok(!(await bodies()).includes('later'));
    const list = await s.request('GET', `${U}/delayed_events`, { token: alice.accessToken });
    const mine = list.body.delayed_events.find((e: any) => e.delay_id === id);
    assert.equal(mine.room_id, roomId);
    assert.equal(mine.type, 'm.room.message');
    assert.equal(mine.delay, 1500);
    assert.deepEqual(mine.content, { msgtype: 'm.text', body: 'later' });
    await until('the delayed message arrives', async () => (await bodies()).includes('later'));
    assert.ok(Date.now() - started >= 1500, 'not before the delay');
    const one = await s.request('GET', `${U}/delayed_events/${id}`, { token: alice.accessToken });
    assert.match(one.body.event_id, /^\$/);
    const other = await s.request('GET', `${U}/delayed_events/${id}`, { token: bob.accessToken });
    assert.equal(other.status, 404, "another user cannot see it");
  });

  it('a delayed state event, restarted, is sent a delay after the restart', async () => {
    const delay = 2000;
    const asked = Date.now();
    const res = await s.request('PUT', `${C}/rooms/${room()}/state/org.matrix.msc3401.call.member/${encodeURIComponent(alice.userId)}?org.matrix.msc4140.delay=${delay}`, {
      token: alice.accessToken,
      body: {},
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const scheduled = Date.now();
    const id = res.body.delay_id;
    await sleep(delay - 700);
    // The heartbeat, as MatrixRTC sends it.
    const restartSent = Date.now();
    const r = await s.request('POST', `${U}/delayed_events/${id}`, { token: alice.accessToken, body: { action: 'restart' } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const restarted = Date.now();
    const state = () => s.request('GET', `${C}/rooms/${room()}/state/org.matrix.msc3401.call.member/${encodeURIComponent(alice.userId)}`, { token: alice.accessToken });
    // Past the first timer's end (it was due by `scheduled + delay`), before the restarted one's.
    await sleep(Math.max(0, scheduled + delay + 200 - Date.now()));
    const between = (await state()).status;
    // The look tells only if the restart landed before the first timer ended and the look ended before the second could:
    // on a loaded machine either can take longer than the delay.
    if (restarted < asked + delay && Date.now() < restartSent + delay) assert.equal(between, 404, 'the restart moved the timer');
    await until('the delayed state event lands', async () => (await state()).status === 200);
  });

  it('cancel, send at once, and repeated actions', async () => {
    const gone = await schedule('never', 800);
    const c = await s.request('POST', `${U}/delayed_events/${gone}/cancel`, { body: {} });
    assert.equal(c.status, 200, JSON.stringify(c.body));
    assert.equal((await s.request('POST', `${U}/delayed_events/${gone}/cancel`, { body: {} })).status, 200, 'cancelling again succeeds');
    const late = await s.request('POST', `${U}/delayed_events/${gone}/send`, { body: {} });
    assert.equal(late.status, 409);
    assert.equal(late.body.errcode, 'M_UNKNOWN');

    const now = await schedule('right now', 50_000);
    const sent = await s.request('POST', `${U}/delayed_events/${now}/send`, { body: {} });
    assert.equal(sent.status, 200, JSON.stringify(sent.body));
    assert.ok((await bodies()).includes('right now'));
    assert.equal((await s.request('POST', `${U}/delayed_events/${now}/send`, { body: {} })).status, 200, 'sending again succeeds');
    assert.equal((await s.request('POST', `${U}/delayed_events/${now}/cancel`, { body: {} })).status, 409);
    assert.equal((await s.request('POST', `${U}/delayed_events/nope/restart`, { body: {} })).status, 404);

    await sleep(1200);
    assert.ok(!(await bodies()).includes('never'), 'the cancelled event was never sent');
    const finalised = await s.request('GET', `${U}/delayed_events?status=finalised`, { token: alice.accessToken });
    assert.ok(finalised.body.delayed_events.some((e: any) => e.delay_id === gone));
  });

  it('a retried scheduling request gives the same delay id', async () => {
    const path = `${C}/rooms/${room()}/send/m.room.message/retry1?org.matrix.msc4140.delay=40000`;
    const a = await s.request('PUT', path, { token: alice.accessToken, body: { msgtype: 'm.text', body: 'once' } });
    const b = await s.request('PUT', path, { token: alice.accessToken, body: { msgtype: 'm.text', body: 'once' } });
    assert.equal(a.body.delay_id, b.body.delay_id);
    await s.request('POST', `${U}/delayed_events/${a.body.delay_id}/cancel`, { body: {} });
  });

  it('a delay above the maximum is refused the way matrix-js-sdk expects', async () => {
    const res = await s.request('PUT', `${C}/rooms/${room()}/send/m.room.message/toolong?org.matrix.msc4140.delay=${MAX + 1}`, {
      token: alice.accessToken,
      body: { msgtype: 'm.text', body: 'too late' },
    });
    assert.equal(res.status, 400);
    assert.equal(res.body.errcode, 'M_UNKNOWN');
    assert.equal(res.body['org.matrix.msc4140.errcode'], 'M_MAX_DELAY_EXCEEDED');
    assert.equal(res.body['org.matrix.msc4140.max_delay'], MAX);
    const bad = await s.request('PUT', `${C}/rooms/${room()}/send/m.room.message/bad?org.matrix.msc4140.delay=soon`, { token: alice.accessToken, body: {} });
    assert.equal(bad.body.errcode, 'M_INVALID_PARAM');
    const outsider = await s.request('PUT', `${C}/rooms/${room()}/send/m.room.message/out?org.matrix.msc4140.delay=1000`, { token: bob.accessToken, body: {} });
    assert.equal(outsider.status, 403);
  });

  it('the MSC endpoint with delay and state_key in the body', async () => {
    const res = await s.request('PUT', `${U}/rooms/${room()}/delayed_event/m.room.topic/t1`, {
      token: alice.accessToken,
      body: { delay: 300, state_key: '', content: { topic: 'set later' } },
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    await until('the topic is set', async () => {
      const t = await s.request('GET', `${C}/rooms/${room()}/state/m.room.topic/`, { token: alice.accessToken });
      return t.body.topic === 'set later';
    });
  });

  it('an event due while the server was down is sent when it starts again', async () => {
    await schedule('across a restart', 600);
    await s.hs.stop();
    await sleep(1200);
    await s.restart();
    await until('the event is sent after the restart', async () => (await bodies()).includes('across a restart'));
    const last = await s.request('GET', `${U}/delayed_events?status=finalised`, { token: alice.accessToken });
    assert.ok(last.body.delayed_events.some((e: any) => e.content.body === 'across a restart' && typeof e.event_id === 'string'));
  });

  it('an event scheduled before a restart and due after it is sent on time', async () => {
    const delay = 4000;
    const scheduled = Date.now();
    await schedule('after the restart', delay);
    await s.restart();
    const early = await bodies();
    // Only a look that ended before the event was due says it was not sent early (a loaded machine can take the whole delay to restart).
    if (Date.now() < scheduled + delay) assert.ok(!early.includes('after the restart'), 'not sent before its delay');
    await until('the event is sent', async () => (await bodies()).includes('after the restart'));
  });
});
