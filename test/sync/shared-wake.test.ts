import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TimelineQuery } from '../../src/rooms/service.js';
import { ReadGate } from '../../src/sync/read-gate.js';
import { Gathered } from '../../src/sync/gathered-reads.js';
import { RoomActivity } from '../../src/sync/room-activity.js';
import { countStatements } from '../helpers/count-statements.js';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { C, createRoom, join, send, setState, sleep, sync, syncPath } from './util.js';

/** `unsigned.age` depends on when an event is formatted: everything else must be equal. */
function withoutAge(v: unknown): unknown {
  return JSON.parse(JSON.stringify(v, (k, x) => (k === 'age' ? undefined : x)));
}

describe('long-polls woken by one event share their reads, and each gets its own answer', () => {
  let s: TestServer;
  let alice: TestUser;
  let alice2: TestUser;
  let bob: TestUser;
  let eve: TestUser;
  let room: string;
  let beforeEve: number;

  const rooms = () => s.hs.ctx.services.rooms;
  const eventsPos = (token: string) => Number(/^s(\d+)_/.exec(token)![1]);

  before(async () => {
    s = await startTestServer();
    alice = await s.registerUser('shared_alice');
    // A second device of alice's.
    const login = await s.request('POST', `${C}/login`, {
      body: { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'shared_alice' }, password: 'pw-shared_alice-secret' },
    });
    assert.equal(login.status, 200, JSON.stringify(login.body));
    alice2 = { ...alice, accessToken: login.body.access_token as string, deviceId: login.body.device_id as string };
    bob = await s.registerUser('shared_bob');
    eve = await s.registerUser('shared_eve');
    room = await createRoom(s, alice, { preset: 'public_chat' });
    await setState(s, alice, room, 'm.room.history_visibility', '', { history_visibility: 'joined' });
    await join(s, bob, room);
    beforeEve = eventsPos((await sync(s, bob)).next_batch);
    await send(s, alice, room, 'before eve');
    await join(s, eve, room);
  });
  after(async () => {
    await s.stop();
  });

  it('every poller is woken by the same message; only the sending device sees its transaction_id', async () => {
    const pollers = [alice, alice2, bob, eve];
    // Everyone's first sync sets them online, news for the others: tokens from after that.
    await Promise.all(pollers.map((u) => sync(s, u)));
    const tokens = await Promise.all(pollers.map(async (u) => (await sync(s, u)).next_batch as string));
    const notifier = s.hs.ctx.services.sync.notifier;
    const waitingBefore = notifier.waiting;
    const polls = pollers.map((u, i) => s.request('GET', syncPath({ since: tokens[i], timeout: 10_000 }), { token: u.accessToken }));
    for (let i = 0; i < 200 && notifier.waiting < waitingBefore + pollers.length; i++) await sleep(5);
    assert.equal(notifier.waiting, waitingBefore + pollers.length, 'all four long-polls are waiting');

    const txnId = `shared-wake-${process.pid}`;
    const sent = await s.request('PUT', `${C}/rooms/${encodeURIComponent(room)}/send/m.room.message/${txnId}`, {
      token: alice.accessToken,
      body: { msgtype: 'm.text', body: 'to everyone at once' },
    });
    assert.equal(sent.status, 200, JSON.stringify(sent.body));
    const eventId = sent.body.event_id as string;

    const answers = await Promise.all(polls);
    const seen = answers.map((res, i) => {
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const events = res.body.rooms.join[room].timeline.events as any[];
      assert.deepEqual(events.map((e) => e.event_id), [eventId], `poller ${i} gets exactly the new message`);
      return events[0];
    });
    assert.equal(seen[0].unsigned.transaction_id, txnId, 'the sending device gets its transaction id');
    for (const [i, ev] of seen.entries()) {
      if (i > 0) assert.equal(ev.unsigned.transaction_id, undefined, `poller ${i} is not the sending device`);
      assert.equal(ev.unsigned.membership, 'join');
      assert.equal(ev.content.body, 'to everyone at once');
    }
  });

  it('woken syncs read memberships, unread counts and key counts together, and each gets its own', async () => {
    const pollers = [alice, alice2, bob, eve];
    // Different one-time keys per device, a fallback key for bob's only.
    const keys = [1, 2, 3, 0];
    for (const [i, u] of pollers.entries()) {
      const one_time_keys: Record<string, unknown> = {};
      for (let k = 0; k < keys[i]!; k++) one_time_keys[`signed_curve25519:W${i}K${k}`] = { key: `k${i}${k}`, signatures: {} };
      const body: Record<string, unknown> = { one_time_keys };
      if (u === bob) body.fallback_keys = { 'signed_curve25519:WF': { key: 'f', fallback: true, signatures: {} } };
      const up = await s.request('POST', `${C}/keys/upload`, { token: u.accessToken, body });
      assert.equal(up.status, 200, JSON.stringify(up.body));
    }
    // Bob has read everything so far; eve has not.
    const last = await send(s, alice, room, 'read by bob');
    const receipt = await s.request('POST', `${C}/rooms/${encodeURIComponent(room)}/receipt/m.read/${encodeURIComponent(last)}`, { token: bob.accessToken, body: {} });
    assert.equal(receipt.status, 200);
    const alone = await Promise.all(pollers.map((u) => sync(s, u)));
    const tokens = alone.map((b) => b.next_batch as string);
    const notifier = s.hs.ctx.services.sync.notifier;
    const waitingBefore = notifier.waiting;
    const polls = pollers.map((u, i) => s.request('GET', syncPath({ since: tokens[i], timeout: 10_000 }), { token: u.accessToken }));
    for (let i = 0; i < 200 && notifier.waiting < waitingBefore + pollers.length; i++) await sleep(5);
    assert.equal(notifier.waiting, waitingBefore + pollers.length, 'all four long-polls are waiting');
    const otkReads = countStatements(s.hs.ctx, 'one_time_keys');
    const memberReads = countStatements(s.hs.ctx, 'room_memberships');
    let answers;
    try {
      await send(s, alice, room, 'wakes everyone');
      answers = await Promise.all(polls);
    } finally {
      memberReads.remove();
      otkReads.remove();
    }
    assert.ok(otkReads.count() < pollers.length, `key counts read in fewer statements than syncs (${otkReads.count()})`);
    for (const [i, res] of answers.entries()) {
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.device_one_time_keys_count.signed_curve25519, keys[i], `poller ${i}: its own device's keys`);
      assert.deepEqual(res.body.device_unused_fallback_key_types, pollers[i] === bob ? ['signed_curve25519'] : []);
      // A message from alice notifies the others, never alice; the counts are each user's own.
      const counts = res.body.rooms.join[room].unread_notifications;
      const expected = pollers[i] === alice || pollers[i] === alice2 ? 0 : alone[i].rooms.join[room].unread_notifications.notification_count + 1;
      assert.equal(counts.notification_count, expected, `poller ${i}: its own unread count`);
    }
    const bobCounts = answers[2]!.body.rooms.join[room].unread_notifications.notification_count;
    const eveCounts = answers[3]!.body.rooms.join[room].unread_notifications.notification_count;
    assert.equal(bobCounts, 1, 'bob read up to the message before');
    assert.ok(eveCounts > bobCounts, 'eve never read');
  });

  it('concurrent timeline reads of one range share one statement and apply each viewer its own history visibility', async () => {
    const now = eventsPos((await sync(s, bob)).next_batch);
    const query = (u: TestUser): TimelineQuery => ({ roomId: room, fromPos: beforeEve, toPos: now, limit: 10, viewer: { userId: u.userId, deviceId: u.deviceId } });
    const viewers = [bob, eve, alice, alice2];
    const alone = [];
    for (const u of viewers) alone.push((await rooms().getTimelines([query(u)])).get(room)!);

    const statements = countStatements(s.hs.ctx, 'redacted_by from events');
    let together;
    try {
      together = await Promise.all(viewers.map((u) => rooms().getTimelines([query(u)])));
    } finally {
      statements.remove();
    }
    assert.equal(statements.count(), 1, 'one read for the four viewers');
    for (const [i, u] of viewers.entries()) {
      assert.deepEqual(withoutAge(together[i]!.get(room)), withoutAge(alone[i]), `${u.userId} (${u.deviceId}) gets what it gets alone`);
    }
    const bodiesOf = (i: number) => together[i]!.get(room)!.events.filter((e) => e.type === 'm.room.message').map((e) => e.content.body);
    assert.ok(bodiesOf(0).includes('before eve'), 'bob was joined: he sees it');
    assert.ok(!bodiesOf(1).includes('before eve'), 'eve joined later into a joined-only history: she does not');
    assert.ok(bodiesOf(1).includes('to everyone at once'));
    const txnOf = (i: number) => together[i]!.get(room)!.events.find((e) => e.content.body === 'to everyone at once')!.unsigned?.transaction_id;
    assert.equal(txnOf(2), `shared-wake-${process.pid}`, "alice's sending device");
    assert.equal(txnOf(3), undefined, "alice's other device");
    assert.equal(txnOf(0), undefined);
  });

  it('a read shared while under way is not kept: a later read of the same range reads again', async () => {
    const now = eventsPos((await sync(s, bob)).next_batch);
    const q: TimelineQuery = { roomId: room, fromPos: beforeEve, toPos: now, limit: 10, viewer: { userId: bob.userId } };
    const statements = countStatements(s.hs.ctx, 'redacted_by from events');
    try {
      await rooms().getTimelines([q]);
      await rooms().getTimelines([q]);
    } finally {
      statements.remove();
    }
    assert.equal(statements.count(), 2);
  });
});

describe('RoomActivity: which rooms had events in a range, read once for the askers of the moment', () => {
  function fakeReader(events: Map<string, number[]>) {
    const reads: { rooms: string[]; from: number; to: number }[] = [];
    let fail = false;
    const read = async (roomIds: string[], from: number, to: number) => {
      reads.push({ rooms: [...roomIds].sort(), from, to });
      if (fail) throw new Error('database down');
      return new Set(roomIds.filter((r) => (events.get(r) ?? []).some((p) => p > from && p <= to)));
    };
    return { read, reads, setFail: (f: boolean) => void (fail = f) };
  }

  it('gathers the questions asked together into one read per range, and answers each asker for its own rooms', async () => {
    const f = fakeReader(new Map([['!a', [3]], ['!b', [7]], ['!c', [1]]]));
    const activity = new RoomActivity(f.read);
    const [ab, bc, a2, c] = await Promise.all([
      activity.between(['!a', '!b'], 2, 7),
      activity.between(['!b', '!c'], 2, 7),
      activity.between(['!a'], 3, 7),
      activity.between(['!c'], 0, 7),
    ]);
    assert.deepEqual([...ab].sort(), ['!a', '!b']);
    assert.deepEqual([...bc], ['!b']);
    assert.deepEqual([...a2], []);
    assert.deepEqual([...c], ['!c']);
    assert.deepEqual(
      f.reads.sort((x, y) => x.from - y.from),
      [
        { rooms: ['!c'], from: 0, to: 7 },
        { rooms: ['!a', '!b', '!c'], from: 2, to: 7 },
        { rooms: ['!a'], from: 3, to: 7 },
      ],
    );
    // Answered already: no read. A new room in a known range: a read for it alone.
    assert.deepEqual([...(await activity.between(['!c', '!a'], 2, 7))], ['!a']);
    assert.equal(f.reads.length, 3);
    assert.deepEqual([...(await activity.between(['!a', '!d'], 2, 7))], ['!a']);
    assert.deepEqual(f.reads.at(-1), { rooms: ['!d'], from: 2, to: 7 });
  });

  it('a failed read fails its askers and is not remembered', async () => {
    const f = fakeReader(new Map([['!a', [3]]]));
    const activity = new RoomActivity(f.read);
    f.setFail(true);
    await assert.rejects(Promise.all([activity.between(['!a'], 0, 5), activity.between(['!a'], 0, 5)]), /database down/);
    assert.equal(f.reads.length, 1);
    f.setFail(false);
    assert.deepEqual([...(await activity.between(['!a'], 0, 5))], ['!a']);
    assert.equal(f.reads.length, 2);
  });

  it('an empty range or no rooms reads nothing', async () => {
    const f = fakeReader(new Map());
    const activity = new RoomActivity(f.read);
    assert.equal((await activity.between([], 0, 5)).size, 0);
    assert.equal((await activity.between(['!a'], 5, 5)).size, 0);
    assert.equal(f.reads.length, 0);
  });
});

describe('ReadGate: the per-user reads of a wake-up, a few at a time, first come first served', () => {
  it('lets `width` reads run at once, the others in arrival order, and frees the slot of a failed read', async () => {
    const gate = new ReadGate(2);
    let running = 0;
    let most = 0;
    const started: number[] = [];
    const read = (i: number) => async () => {
      started.push(i);
      running++;
      most = Math.max(most, running);
      await sleep(2);
      running--;
      if (i === 1) throw new Error('read 1 failed');
      return i;
    };
    const results = await Promise.allSettled([0, 1, 2, 3, 4, 5].map((i) => gate.run(read(i))));
    assert.equal(most, 2);
    assert.deepEqual(started, [0, 1, 2, 3, 4, 5]);
    assert.deepEqual(results.map((r) => (r.status === 'fulfilled' ? r.value : 'failed')), [0, 'failed', 2, 3, 4, 5]);
    // Every slot came back.
    assert.equal(await gate.run(async () => 'after'), 'after');
  });
});

describe('Gathered: asks of one turn answered by one read', () => {
  it('answers each asker its own part, in one read for the asks of a turn, and a new read for a later turn', async () => {
    const reads: number[][] = [];
    const g = new Gathered<number, number>(async (asks) => {
      reads.push([...asks]);
      return asks.map((a) => a * 10);
    });
    assert.deepEqual(await Promise.all([g.get(1), g.get(2), g.get(3)]), [10, 20, 30]);
    assert.deepEqual(reads, [[1, 2, 3]]);
    assert.equal(await g.get(4), 40);
    assert.deepEqual(reads, [[1, 2, 3], [4]]);
  });

  it('a failed read fails every asker of its turn, and the next turn reads again', async () => {
    let fail = true;
    const g = new Gathered<number, number>(async (asks) => {
      if (fail) throw new Error('database down');
      return asks;
    });
    const results = await Promise.allSettled([g.get(1), g.get(2)]);
    assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected']);
    fail = false;
    assert.equal(await g.get(5), 5);
  });
});
