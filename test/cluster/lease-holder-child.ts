import { sql } from 'kysely';
import { LeaseLostError } from '../../src/cluster/leases.js';
import { PgLeases } from '../../src/cluster/pg-leases.js';
import { createLogger } from '../../src/logger.js';
import { openLeaseDb } from './lease-db.js';

/**
 * A lease holder in its own process (so the test can SIGSTOP it): takes the
 * lease, then writes fenced progress rows every 100 ms, printing one JSON line
 * per step, until a fenced write fails.
 */
const [url, nodeId] = process.argv.slice(2) as [string, string];
const database = await openLeaseDb(url);
const leases = new PgLeases({ db: database.db, dialect: database.dialect, nodeId, logger: createLogger('silent'), ttlMs: 1500, renewMs: 300, selfFenceMs: 1000 });
await leases.start();
const lease = await leases.acquire('job');
if (!lease) throw new Error('lease not free');
console.log(JSON.stringify({ held: lease.epoch }));
for (let n = 1; ; n++) {
  try {
    await database.db.transaction().execute(async (trx) => {
      await leases.fence(trx, lease);
      await sql`insert into lease_progress (holder, epoch, n) values (${nodeId}, ${lease.epoch}, ${n})`.execute(trx);
    });
    console.log(JSON.stringify({ wrote: n }));
  } catch (err) {
    if (!(err instanceof LeaseLostError)) throw err;
    console.log(JSON.stringify({ lost: n, stillHeld: leases.stillHeld(lease) }));
    break;
  }
  await new Promise((r) => setTimeout(r, 100));
}
await leases.close();
await database.close();
