/**
 * Keeps `federation_outbound_edus` bounded when a server stays away (or is gone for good): its
 * rows would otherwise grow with every change meant for it. Every few minutes the holder of the
 * lease drops, in one transaction fenced by its epoch (CLUSTER.md 5):
 *
 * 1. superseded rows: a read receipt of a user in a room and thread for which a newer one is
 *    stored for the same server (supersedeKeyOf); the newer says all the older said;
 * 2. rows stored more than `maxAgeMs` ago (`federation.stored_edu_max_age_ms`), whatever their
 *    type: a server away that long loses those to-device messages, and learns of the device-list
 *    changes it missed when the next update names a `prev_id` it never got (it then fetches the
 *    user's devices, spec: "Device Management").
 *
 * Typing and presence EDUs are never stored (the queue holds them in memory while the server
 * answers), so they need no rule here.
 */
import type { Logger } from 'pino';
import { LeasedChore } from '../../cluster/leased-chore.js';
import type { Leases } from '../../cluster/leases.js';
import type { Db } from '../../db/schema.js';
import { deleteEdusStoredBefore, deleteSupersededEdus } from './outbound-edus-table.js';

const EVERY_MS = 5 * 60_000;

export class StoredEduPruner extends LeasedChore {
  constructor(deps: { db: Db; leases: Leases; logger: Logger; now(): number; maxAgeMs: number }) {
    super({
      leases: deps.leases,
      logger: deps.logger,
      lease: 'federation_outbound_edus_prune',
      everyMs: EVERY_MS,
      what: 'pruning stored outbound EDUs',
      run: (lease) =>
        deps.db.transaction().execute(async (trx) => {
          await deps.leases.fence(trx, lease);
          const superseded = await deleteSupersededEdus(trx);
          return superseded + (await deleteEdusStoredBefore(trx, deps.now() - deps.maxAgeMs));
        }),
    });
  }

  /** One pass; returns how many rows went (0 when another node holds the lease). */
  prune(): Promise<number> {
    return this.runOnce();
  }
}
