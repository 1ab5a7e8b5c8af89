import { sql, type RawBuilder } from 'kysely';
import type { DbOrTx } from '../../db/schema.js';
import { isSqlite } from '../../db/sqlite-sync.js';

export interface NewStateGroup {
  id: number;
  roomId: string;
  prevGroup: number | null;
  deltaDepth: number;
  /** [type, state_key, event_id]: the whole state for a full snapshot, the changed entries for a delta. */
  entries: Array<[string, string, string]>;
}

export async function insertStateGroups(trx: DbOrTx, groups: NewStateGroup[]): Promise<void> {
  if (groups.length === 0) return;
  await trx
    .insertInto('state_groups')
    .values(groups.map((g) => ({ id: g.id, room_id: g.roomId, prev_group: g.prevGroup, delta_depth: g.deltaDepth })))
    .execute();
  const deltas = groups.flatMap((g) =>
    g.entries.map(([type, stateKey, eventId]) => ({ state_group: g.id, type, state_key: stateKey, event_id: eventId })),
  );
  for (let i = 0; i < deltas.length; i += 1000) {
    await trx.insertInto('state_group_deltas').values(deltas.slice(i, i + 1000)).execute();
  }
}

export interface GroupChainRow {
  id: number;
  n: number;
  type: string;
  state_key: string;
  event_id: string;
}

/**
 * How a chain of state groups is joined to their deltas. SQLite, planning
 * without statistics, takes the recursive chain for a large table: it
 * scanned every delta of every room and probed the chain with each (a
 * single group's state took a millisecond and a half with 16,000 deltas in
 * the database, and grows with them). A CROSS JOIN is SQLite's way to keep
 * the order as written: walk the chain, then look up each group's deltas by
 * key. PostgreSQL chooses with statistics and has no such form.
 */
export function chainJoin(db: DbOrTx): RawBuilder<unknown> {
  return sql.raw(isSqlite(db) ? 'cross join' : 'join');
}

/**
 * Every delta on the chain from `groupId` down to its full snapshot, in one
 * recursive query; `n` is the distance from `groupId` (apply highest first).
 */
export async function selectGroupChain(db: DbOrTx, groupId: number): Promise<GroupChainRow[]> {
  const res = await sql<GroupChainRow>`
    with recursive chain(id, prev_group, n) as (
      select id, prev_group, 0 from state_groups where id = ${groupId}
      union all
      select g.id, g.prev_group, chain.n + 1 from state_groups g join chain on g.id = chain.prev_group
    )
    select chain.id as id, chain.n as n, d.type as type, d.state_key as state_key, d.event_id as event_id
    from chain ${chainJoin(db)} state_group_deltas d on d.state_group = chain.id
  `.execute(db);
  return res.rows.map((r) => ({ ...r, id: Number(r.id), n: Number(r.n) }));
}

export async function selectGroupDepth(db: DbOrTx, groupId: number): Promise<number | null> {
  const row = await db.selectFrom('state_groups').select('delta_depth').where('id', '=', groupId).executeTakeFirst();
  return row ? Number(row.delta_depth) : null;
}
