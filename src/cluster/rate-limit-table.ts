import { sql } from 'kysely';
import type { DbOrTx } from '../db/schema.js';
import { dbNowMs } from './db-clock.js';
import './tables.js';

/**
 * Token buckets shared by the nodes (PostgreSQL). One statement per check:
 * the bucket is refilled for the time since its last use, by the database's
 * clock, and a token is taken if there is one, all in one row update, so two
 * nodes checking the same key at once are serialised by the row lock and
 * never both spend the last token. A key seen for the first time starts
 * with a full bucket less the token it spends. `allowed` records whether
 * that check took a token (the refilled level alone cannot tell).
 */
export async function takeToken(db: DbOrTx, action: string, key: string, perSecond: number, burst: number): Promise<{ allowed: boolean; tokens: number }> {
  const refilled = sql`least(${burst}::float8, b.tokens + greatest(0, excluded.updated_ms - b.updated_ms) * ${perSecond}::float8 / 1000)`;
  const { rows } = await sql<{ allowed: boolean; tokens: number }>`
    insert into rate_limit_buckets as b (action, key, tokens, updated_ms, allowed)
    values (${action}, ${key}, ${burst - 1}::float8, ${dbNowMs('postgres')}, true)
    on conflict (action, key) do update set
      tokens = case when ${refilled} >= 1 then ${refilled} - 1 else ${refilled} end,
      allowed = ${refilled} >= 1,
      updated_ms = excluded.updated_ms
    returning allowed, tokens`.execute(db);
  const row = rows[0]!;
  return { allowed: row.allowed, tokens: Number(row.tokens) };
}

/** Deletes the buckets of `action` that have refilled completely: an absent bucket is a full one. */
export async function deleteFullBuckets(db: DbOrTx, action: string, perSecond: number, burst: number): Promise<number> {
  const r = await db
    .deleteFrom('rate_limit_buckets')
    .where('action', '=', action)
    .where(sql<boolean>`tokens + (${dbNowMs('postgres')} - updated_ms) * ${perSecond}::float8 / 1000 >= ${burst}::float8`)
    .executeTakeFirst();
  return Number(r.numDeletedRows);
}
