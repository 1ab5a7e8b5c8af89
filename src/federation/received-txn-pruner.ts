/**
 * Keeps `federation_received_txns` bounded: the answer to each transaction is kept only so that a
 * sender retrying it (it got no answer, spec: "Transactions") is answered the same without the
 * transaction being processed twice. A sender retries within its backoff, and one that comes back
 * after a day has long since moved on to later transactions (as Synapse, which keeps them a day),
 * so every half hour the holder of the lease drops the rows received more than a day ago, in one
 * transaction fenced by its epoch (CLUSTER.md 5).
 */
import type { Logger } from 'pino';
import { LeasedChore } from '../cluster/leased-chore.js';
import type { Leases } from '../cluster/leases.js';
import type { Db } from '../db/schema.js';
import { deleteTxnResponsesBefore } from './received-txns-table.js';

const EVERY_MS = 30 * 60_000;
export const RECEIVED_TXN_MAX_AGE_MS = 24 * 3600_000;

export class ReceivedTxnPruner extends LeasedChore {
  constructor(deps: { db: Db; leases: Leases; logger: Logger; now(): number }) {
    super({
      leases: deps.leases,
      logger: deps.logger,
      lease: 'federation_received_txns_prune',
      everyMs: EVERY_MS,
      what: 'pruning received federation transactions',
      run: (lease) =>
        deps.db.transaction().execute(async (trx) => {
          await deps.leases.fence(trx, lease);
          return deleteTxnResponsesBefore(trx, deps.now() - RECEIVED_TXN_MAX_AGE_MS);
        }),
    });
  }

  /** One pass; returns how many rows went (0 when another node holds the lease). */
  prune(): Promise<number> {
    return this.runOnce();
  }
}
