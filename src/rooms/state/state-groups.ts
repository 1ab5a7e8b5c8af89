import { LRUCache } from 'lru-cache';
import type { Context } from '../../context.js';
import { stateKey, type StateMap } from '../../core/types.js';
import { selectGroupChain } from '../store/state-groups-table.js';

/**
 * Room state snapshots by state group, read through a bounded LRU (sized in
 * state entries). Groups are immutable, so cached maps are shared and must
 * never be mutated: writers copy before changing.
 */
export class StateGroups {
  private readonly cache: LRUCache<number, StateMap>;
  private readonly loading = new Map<number, Promise<StateMap>>();

  constructor(private readonly ctx: Context) {
    this.cache = new LRUCache({
      maxSize: Math.max(10_000, ctx.config.caches.room_states * 1000),
      sizeCalculation: (m) => m.size + 1,
    });
  }

  async load(groupId: number): Promise<StateMap> {
    const hit = this.cache.get(groupId);
    if (hit) return hit;
    let p = this.loading.get(groupId);
    if (!p) {
      p = this.fetch(groupId).finally(() => this.loading.delete(groupId));
      this.loading.set(groupId, p);
    }
    return p;
  }

  async loadMany(groupIds: Iterable<number>): Promise<Map<number, StateMap>> {
    const ids = [...new Set(groupIds)];
    const maps = await Promise.all(ids.map((id) => this.load(id)));
    return new Map(ids.map((id, i) => [id, maps[i]!]));
  }

  put(groupId: number, state: StateMap): void {
    this.cache.set(groupId, state);
  }

  private async fetch(groupId: number): Promise<StateMap> {
    const rows = await selectGroupChain(this.ctx.db, groupId);
    // Oldest (the full snapshot) first, so newer deltas overwrite.
    rows.sort((a, b) => b.n - a.n);
    const state: StateMap = new Map();
    for (const r of rows) state.set(stateKey(r.type, r.state_key), r.event_id);
    this.cache.set(groupId, state);
    return state;
  }
}
