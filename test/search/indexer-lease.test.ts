import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LocalBus } from '../../src/cluster/bus.js';
import { LocalLeases, type Lease, type Leases } from '../../src/cluster/leases.js';
import type { Context } from '../../src/context.js';
import { connectDatabase } from '../../src/db/connect.js';
import { runMigrations } from '../../src/db/migrate.js';
import { ALL_MIGRATIONS } from '../../src/homeserver.js';
import { createLogger } from '../../src/logger.js';
import { SearchIndexer } from '../../src/search/indexer.js';

/** Leases that another node holds: every acquire is refused. */
class HeldElsewhere extends LocalLeases implements Leases {
  override async acquire(): Promise<Lease> {
    return null as unknown as Lease;
  }
}

/**
 * In a cluster the background indexing is one node's work: a node that does not hold the lease
 * reads nothing after an advance, while a search on it still catches up (CLUSTER.md 5).
 */
test('the background indexer reads the stream only under its lease; a search catches up without it', async () => {
  const database = await connectDatabase({ url: ':memory:' });
  await runMigrations(database.db, database.dialect, ALL_MIGRATIONS);
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const run = async (leases: Leases) => {
    const bus = new LocalBus();
    let reads = 0;
    const ctx = {
      db: database.db,
      dialect: database.dialect,
      bus,
      leases,
      logger: createLogger('silent'),
      services: { rooms: { streamEventsOfTypes: async () => (reads++, []) } },
    } as unknown as Context;
    const indexer = new SearchIndexer(ctx);
    indexer.start();
    bus.publish({ stream: 'events', pos: 1, roomId: '!r:example.org' });
    await sleep(400);
    const background = reads;
    await indexer.catchUp();
    await indexer.stop();
    return { background, search: reads - background };
  };
  try {
    const elsewhere = await run(new HeldElsewhere());
    assert.equal(elsewhere.background, 0, 'no background read without the lease');
    assert.ok(elsewhere.search > 0, 'a search catches up all the same');
    const holder = await run(new LocalLeases());
    assert.ok(holder.background > 0, 'the holder reads in the background');
  } finally {
    await database.close();
  }
});
