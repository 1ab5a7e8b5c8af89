import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { LocalBus } from '../../src/cluster/bus.js';
import { DeviceListEduProducer, type DeviceListSources } from '../../src/federation/outbound/device-list-edus.js';
import type { FederationSender } from '../../src/federation/outbound/sender.js';

const logger = pino({ level: 'silent' });
const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A producer over a bus of its own, whose reads of the stream fail while `failing` is set. */
function producer() {
  const bus = new LocalBus();
  const sent: unknown[] = [];
  const state = { reads: 0, failing: true };
  const sources: DeviceListSources = {
    head: async () => 0,
    edusBetween: async (_from, to) => {
      state.reads++;
      // A turn of the event loop, as a real read takes: a retry loop then shows as many reads
      // rather than starving the timers.
      await new Promise((r) => setImmediate(r));
      if (state.failing) throw new Error('the database is away');
      return { edus: [{ userId: '@a:here', edu: { edu_type: 'm.device_list_update', content: { user_id: '@a:here' } } as never }], lastPos: to };
    },
    usersSharingRooms: async () => new Set(['@b:there']),
  };
  const sender = { sendEduToServers: async (servers: Set<string>, edu: unknown) => void sent.push([...servers], edu) } as unknown as FederationSender;
  const p = new DeviceListEduProducer({ bus, serverName: 'here', sender, sources, logger });
  return { bus, p, sent, state };
}

describe('device-list EDU producer', () => {
  it('waits before trying again after a failed read, and sends once reads work again', async () => {
    const { bus, p, sent, state } = producer();
    await p.start();
    bus.publish({ stream: 'device_lists', pos: 1 });
    await delay(200);
    // Retried in a loop, this was thousands of reads (and a busy core) while the database was away.
    assert.equal(state.reads, 1);
    state.failing = false;
    await delay(1100);
    assert.equal(state.reads, 2);
    assert.deepEqual(sent[0], ['there']);
    await p.stop();
  });

  it('reads nothing more once stopped', async () => {
    const { bus, p, state } = producer();
    await p.start();
    bus.publish({ stream: 'device_lists', pos: 1 });
    await delay(50);
    await p.stop();
    const reads = state.reads;
    bus.publish({ stream: 'device_lists', pos: 2 });
    await delay(1200);
    assert.equal(state.reads, reads);
  });
});
