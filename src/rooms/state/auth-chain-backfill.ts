import type { Kysely } from 'kysely';
import { assignChains, authOrder, type ChainCandidate, type ChainLink, type ChainPos } from '../../core/auth-chain-cover.js';
import { authEventIds } from '../../core/auth-rules.js';
import type { Pdu } from '../../core/types.js';
import { insertChainIndex } from '../store/auth-chain-table.js';

/**
 * Indexes the state events already stored when the auth chain index is
 * introduced, room by room, in auth order. Rejected events are left out, as
 * when events arrive. Returns how many chain ids were used.
 */
export async function indexExistingStateEvents(db: Kysely<any>): Promise<number> {
  const rooms = (await db.selectFrom('rooms').select('room_id').execute()) as Array<{ room_id: string }>;
  let chains = 0;
  for (const { room_id } of rooms) {
    const rows = (await db
      .selectFrom('events')
      .select(['event_id', 'type', 'state_key', 'json'])
      .where('room_id', '=', room_id)
      .where('state_key', 'is not', null)
      .where('rejected_reason', 'is', null)
      .execute()) as Array<{ event_id: string; type: string; state_key: string; json: string }>;
    const candidates: ChainCandidate[] = rows.map((r) => ({
      eventId: r.event_id,
      key: `${r.type}\u0000${r.state_key}`,
      authIds: [...new Set(authEventIds(JSON.parse(r.json) as Pdu))],
    }));
    const positions = new Map<string, ChainPos>();
    const links: ChainLink[] = [];
    const result = assignChains(authOrder(candidates), {
      position: (id) => positions.get(id),
      keyOf: () => undefined,
      tail: () => 0,
      links: new Map(),
    }, () => ++chains);
    for (const [id, p] of result.positions) positions.set(id, p);
    links.push(...result.links);
    await insertChainIndex(db as never, [...positions], links);
  }
  return chains;
}
