import type { DbOrTx, Dialect } from '../db/schema.js';
import { dbNowMs } from './db-clock.js';
import './tables.js';

/** One row per node: who it is and when it last said it was alive, by the database's clock. */
export async function upsertHeartbeat(db: DbOrTx, dialect: Dialect, row: { node_id: string; address: string | null; started_ts: number }): Promise<void> {
  const now = dbNowMs(dialect);
  await db
    .insertInto('cluster_nodes')
    .values({ ...row, heartbeat_ts: now })
    .onConflict((oc) => oc.column('node_id').doUpdateSet({ heartbeat_ts: now, address: row.address }))
    .execute();
}

/** Nodes heard from within `withinMs`, with how long ago. */
export async function selectLiveNodes(db: DbOrTx, dialect: Dialect, withinMs: number) {
  const now = dbNowMs(dialect);
  return db
    .selectFrom('cluster_nodes')
    .select((eb) => ['node_id', 'address', 'started_ts', eb(now, '-', eb.ref('heartbeat_ts')).as('silent_ms')])
    .where('heartbeat_ts', '>', (eb) => eb(now, '-', withinMs))
    .orderBy('node_id')
    .execute();
}

export async function deleteNode(db: DbOrTx, nodeId: string): Promise<void> {
  await db.deleteFrom('cluster_nodes').where('node_id', '=', nodeId).execute();
}

/** Forgets nodes silent for longer than `silentMs` (they restarted under a new id, or left). */
export async function deleteSilentNodes(db: DbOrTx, dialect: Dialect, silentMs: number): Promise<void> {
  await db
    .deleteFrom('cluster_nodes')
    .where('heartbeat_ts', '<', (eb) => eb(dbNowMs(dialect), '-', silentMs))
    .execute();
}
