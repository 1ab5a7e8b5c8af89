import { sql } from 'kysely';
import type { Migration } from '../db/migrate.js';

/**
 * The cluster's tables: the cache invalidation stream, the nodes and their
 * heartbeats, leases with epochs, and typing notices (losable: UNLOGGED on
 * PostgreSQL, so they cost no WAL and no wait for the synchronous standby).
 * Rate limit buckets are losable too, and UNLOGGED for the same reason.
 * Times in `nodes`, `leases` and buckets are the database's clock, so nodes whose
 * clocks disagree still agree on expiry.
 */
export const migrations: Migration[] = [
  {
    version: 1,
    name: 'cache invalidations, nodes, leases, typing',
    async up(db, dialect) {
      await db.schema
        .createTable('cache_invalidations')
        .addColumn('pos', 'bigint', (c) => c.primaryKey())
        .addColumn('cache', 'text', (c) => c.notNull())
        .addColumn('key', 'text', (c) => c.notNull())
        .addColumn('created_ts', 'bigint', (c) => c.notNull())
        .execute();
      await db.insertInto('stream_positions').values({ stream: 'cache_invalidations', pos: 0 }).execute();
      await db.schema
        .createTable('cluster_nodes')
        .addColumn('node_id', 'text', (c) => c.primaryKey())
        .addColumn('address', 'text')
        .addColumn('started_ts', 'bigint', (c) => c.notNull())
        .addColumn('heartbeat_ts', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('cluster_leases')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('holder', 'text', (c) => c.notNull())
        .addColumn('epoch', 'bigint', (c) => c.notNull())
        .addColumn('expires_ts', 'bigint', (c) => c.notNull())
        .execute();
      const unlogged = dialect === 'postgres' ? sql.raw('unlogged ') : sql.raw('');
      await sql`create ${unlogged}table typing_notices (
        room_id text not null,
        user_id text not null,
        expires_ts bigint not null,
        pos bigint not null,
        primary key (room_id, user_id)
      )`.execute(db);
      await db.schema.createIndex('typing_notices_pos').on('typing_notices').columns(['room_id', 'pos']).execute();
    },
  },
  {
    version: 2,
    name: 'rate limit buckets',
    async up(db, dialect) {
      // Shared by the nodes on PostgreSQL; a lost table (failover) only refills every bucket.
      const unlogged = dialect === 'postgres' ? sql.raw('unlogged ') : sql.raw('');
      await sql`create ${unlogged}table rate_limit_buckets (
        action text not null,
        key text not null,
        tokens double precision not null,
        updated_ms bigint not null,
        allowed boolean not null,
        primary key (action, key)
      )`.execute(db);
    },
  },
];
