import { sql } from 'kysely';
import type { Migration } from './migrate.js';
import type { PipelinedTx } from './pg-pipeline.js';
import { prepared } from './prepared.js';
import type { Db, DbOrTx } from './schema.js';
import type { SyncTx } from './sqlite-sync.js';

/**
 * Every stream's position is one row. A writer takes the next position with
 * an UPDATE ... RETURNING at the *end* of its transaction: the row lock is
 * held until commit, so commit order equals position order on PostgreSQL,
 * and SQLite has one writer anyway. A rolled-back position is never seen.
 */
export const STREAMS = [
  'events',
  'to_device',
  'account_data',
  'receipts',
  'device_lists',
  'typing',
  'presence',
] as const;
export type StreamName = (typeof STREAMS)[number];
/**
 * What the bus announces: the streams a sync token holds, and thread subscription changes
 * (which only sliding sync's MSC4308 extension follows, so they are not in the token).
 */
export const ANNOUNCED_STREAMS = [...STREAMS, 'thread_subscriptions'] as const;
export type AnnouncedStream = (typeof ANNOUNCED_STREAMS)[number];
/**
 * Counters kept in the same table that are not streams clients follow: state
 * group ids, auth chain ids, the depth below zero of backfilled events' positions, the
 * cluster's cache invalidation stream, the order of thread subscription changes, and the order
 * of stored outbound federation EDUs.
 */
export type CounterName = StreamName | 'state_groups' | 'backfill' | 'auth_chains' | 'cache_invalidations' | 'thread_subscriptions' | 'federation_edus';

export const streamMigrations: Migration[] = [
  {
    version: 1,
    name: 'stream positions',
    async up(db) {
      await db.schema
        .createTable('stream_positions')
        .addColumn('stream', 'text', (c) => c.primaryKey())
        .addColumn('pos', 'bigint', (c) => c.notNull())
        .execute();
      for (const stream of STREAMS) {
        await db.insertInto('stream_positions').values({ stream, pos: 0 }).execute();
      }
    },
  },
];

const advance = prepared((db, p: { stream: string; count: number }) =>
  db
    .updateTable('stream_positions')
    .set({ pos: sql`pos + ${p.count}` })
    .where('stream', '=', p.stream)
    .returning('pos'),
);

/** Reserves `count` positions on a stream and returns the first; call it last in the transaction. */
export async function nextPositions(trx: DbOrTx, stream: CounterName, count = 1): Promise<number> {
  return firstReserved((await advance.execute(trx, { stream, count })).rows[0], stream, count);
}

/** The first of `count` positions, given the stream's row after advancing it. */
function firstReserved(row: { pos: number | string } | undefined, stream: CounterName, count: number): number {
  if (!row) throw new Error(`stream ${stream} has no position row`);
  return Number(row.pos) - count + 1;
}

/** As nextPositions, in a synchronous SQLite transaction (sqlite-sync.ts). */
export function nextPositionsSync(tx: SyncTx, stream: StreamName, count = 1): number {
  return firstReserved(tx.all(advance, { stream, count })[0], stream, count);
}

/** As nextPositions, sent on a pipelined PostgreSQL transaction (pg-pipeline.ts). */
export async function nextPositionsVia(tx: PipelinedTx, stream: StreamName, count = 1): Promise<number> {
  return firstReserved((await tx.all(advance, { stream, count }))[0], stream, count);
}

export async function nextPosition(trx: DbOrTx, stream: StreamName): Promise<number> {
  return nextPositions(trx, stream, 1);
}

export type StreamPositions = Record<StreamName, number>;

// Read at the start of every /sync: built once.
const selectPositions = prepared((db, _p: Record<string, never>) => db.selectFrom('stream_positions').select(['stream', 'pos']));

export async function readStreamPositions(db: Db): Promise<StreamPositions> {
  return readPositionsOf(db, STREAMS) as Promise<StreamPositions>;
}

/** The heads a sliding-sync waiter compares announcements with: the streams, and thread subscription changes. */
export type WaitHeads = StreamPositions & { thread_subscriptions?: number };

/** As readStreamPositions, with the thread subscription counter from the same read. */
export async function readStreamPositionsWithThreadSubscriptions(db: Db): Promise<Required<WaitHeads>> {
  return readPositionsOf(db, ANNOUNCED_STREAMS) as Promise<Required<WaitHeads>>;
}

async function readPositionsOf(db: Db, names: readonly string[]): Promise<Record<string, number>> {
  const { rows } = await selectPositions.execute(db, {});
  const out: Record<string, number> = Object.fromEntries(names.map((s) => [s, 0]));
  for (const r of rows) if (r.stream in out) out[r.stream] = Number(r.pos);
  return out;
}

const selectAllPositions = prepared((db, _p: Record<string, never>) => db.selectFrom('stream_positions').select(['stream', 'pos']));

/** Every counter's current value (streams and the others), as committed. */
export async function readAllCounters(db: DbOrTx): Promise<Map<string, number>> {
  const { rows } = await selectAllPositions.execute(db, {});
  return new Map(rows.map((r) => [r.stream, Number(r.pos)]));
}
