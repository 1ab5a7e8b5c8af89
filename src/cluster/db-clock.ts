import { sql, type RawBuilder } from 'kysely';
import type { Dialect } from '../db/schema.js';

/**
 * The database's clock in ms since the epoch, as SQL: lease expiry and node
 * liveness are judged by one clock (the primary's), so nodes whose own
 * clocks drift still agree (CLUSTER.md 5).
 */
export function dbNowMs(dialect: Dialect): RawBuilder<number> {
  return dialect === 'postgres'
    ? sql<number>`(extract(epoch from clock_timestamp()) * 1000)::bigint`
    : sql<number>`cast((julianday('now') - 2440587.5) * 86400000 as integer)`;
}
