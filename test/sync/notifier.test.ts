import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LocalBus } from '../../src/cluster/bus.js';
import { STREAMS, type StreamPositions } from '../../src/db/stream-positions.js';
import { Notifier } from '../../src/sync/notifier.js';

const heads = (over: Partial<StreamPositions> = {}): StreamPositions =>
  ({ ...Object.fromEntries(STREAMS.map((s) => [s, 10])), ...over }) as StreamPositions;

function setup(audience: (userId: string) => string[] = (u) => [u]) {
  const bus = new LocalBus();
  const n = new Notifier(bus, async (msg) => (msg.userIds ?? []).flatMap(audience), (err) => {
    throw err;
  });
  n.start();
  return { bus, n };
}

describe('notifier (long-poll wake-ups)', () => {
  it('an advance published while the response was being computed wakes the waiter at once', async () => {
    const { bus, n } = setup();
    const w = n.register('@a:x');
    bus.publish({ stream: 'events', pos: 11, roomId: '!r:x' }); // during the computation
    w.arm(['!r:x'], heads());
    const started = Date.now();
    assert.equal(await w.wait(5000), true);
    assert.ok(Date.now() - started < 100);
    w.close();
    assert.equal(n.waiting, 0);
  });

  it('advances the computation already covered, or in other rooms, do not wake', async () => {
    const { bus, n } = setup();
    const w = n.register('@a:x');
    bus.publish({ stream: 'events', pos: 10, roomId: '!r:x' }); // covered by heads.events = 10
    bus.publish({ stream: 'events', pos: 11, roomId: '!other:x' });
    w.arm(['!r:x'], heads());
    const p = w.wait(100);
    bus.publish({ stream: 'receipts', pos: 12, roomId: '!other:x' });
    assert.equal(await p, false, 'timed out');
    w.close();
  });

  it('wakes by room (events, receipts, typing) and by user (to-device, account data, membership)', async () => {
    const { bus, n } = setup();
    for (const msg of [
      { stream: 'events' as const, pos: 11, roomId: '!r:x' },
      { stream: 'typing' as const, pos: 11, roomId: '!r:x' },
      { stream: 'to_device' as const, pos: 11, userIds: ['@a:x'] },
      { stream: 'account_data' as const, pos: 11, userIds: ['@a:x'] },
      { stream: 'events' as const, pos: 11, roomId: '!invited:x', userIds: ['@a:x'] },
    ]) {
      const w = n.register('@a:x');
      w.arm(['!r:x'], heads());
      const p = w.wait(2000);
      bus.publish(msg);
      assert.equal(await p, true, JSON.stringify(msg));
      w.close();
    }
  });

  it('a presence change wakes the users who share a room with its user', async () => {
    const { bus, n } = setup((u) => (u === '@b:x' ? ['@b:x', '@a:x'] : [u]));
    const w = n.register('@a:x');
    w.arm([], heads());
    const p = w.wait(2000);
    bus.publish({ stream: 'presence', pos: 11, userIds: ['@b:x'] });
    assert.equal(await p, true);
    w.close();
  });

  it('cancel() (client gone) and release() (shutdown) answer the waiter at once', async () => {
    const { n } = setup();
    const w = n.register('@a:x');
    w.arm([], heads());
    const p = w.wait(5000);
    w.cancel();
    assert.equal(await p, false);
    w.close();
    const w2 = n.register('@a:x');
    w2.arm([], heads());
    const p2 = w2.wait(5000);
    n.release();
    assert.equal(await p2, false);
    w2.close();
    const late = n.register('@a:x');
    late.arm([], heads());
    assert.equal(await late.wait(5000), false, 'after release, a new long-poll does not wait');
    late.close();
    assert.equal(n.waiting, 0);
  });

  it('a woken waiter names the rooms whose new events woke it, once (receipts, typing and other rooms are not named)', async () => {
    const { bus, n } = setup();
    const w = n.register('@a:x');
    bus.publish({ stream: 'events', pos: 11, roomId: '!early:x' }); // during the computation: kept in the backlog
    bus.publish({ stream: 'events', pos: 12, roomId: '!elsewhere:x' });
    w.arm(['!early:x', '!r:x'], heads());
    assert.equal(await w.wait(2000), true);
    assert.deepEqual(w.takeEventRooms(), ['!early:x']);
    assert.deepEqual(w.takeEventRooms(), [], 'taken once');
    w.arm(['!early:x', '!r:x'], heads({ events: 12 }));
    const p = w.wait(2000);
    bus.publish({ stream: 'receipts', pos: 11, roomId: '!r:x' });
    assert.equal(await p, true);
    assert.deepEqual(w.takeEventRooms(), [], 'a receipt names no room');
    w.arm(['!early:x', '!r:x'], heads({ events: 12, receipts: 11 }));
    const p2 = w.wait(2000);
    bus.publish({ stream: 'events', pos: 13, roomId: '!r:x' });
    assert.equal(await p2, true);
    assert.deepEqual(w.takeEventRooms(), ['!r:x']);
    w.close();
  });
});
