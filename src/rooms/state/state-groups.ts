import { LRUCache } from 'lru-cache';
import type { Context } from '../../context.js';
import { stateKey, type StateMap } from '../../core/types.js';
import { selectGroupChains } from '../store/sync-queries.js';
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

  /** Groups not cached are read in one query for all of them. */
  async loadMany(groupIds: Iterable<number>): Promise<Map<number, StateMap>> {
    const ids = [...new Set(groupIds)];
    const out = new Map<number, StateMap>();
    const pending: Promise<void>[] = [];
    const missing: number[] = [];
    for (const id of ids) {
      const hit = this.cache.get(id);
      if (hit) out.set(id, hit);
      else {
        const p = this.loading.get(id);
        if (p) pending.push(p.then((m) => void out.set(id, m)));
        else missing.push(id);
      }
    }
    if (missing.length === 1) {
      const id = missing[0]!;
      pending.push(this.load(id).then((m) => void out.set(id, m)));
    } else if (missing.length > 1) {
      const batch = this.fetchMany(missing);
      for (const id of missing) {
        const p = batch.then((maps) => maps.get(id)!).finally(() => this.loading.delete(id));
        this.loading.set(id, p);
        pending.push(p.then((m) => void out.set(id, m)));
      }
    }
    await Promise.all(pending);
    return new Map(ids.map((id) => [id, out.get(id)!]));
  }

  /** The group's state if it is cached (no read). */
  peek(groupId: number): StateMap | undefined {
    return this.cache.get(groupId);
  }

  put(groupId: number, state: StateMap): void {
    this.cache.set(groupId, state);
  }

  private async fetchMany(groupIds: number[]): Promise<Map<number, StateMap>> {
    const rows = await selectGroupChains(this.ctx.db, groupIds);
    // Per group, oldest (the full snapshot) first, so newer deltas overwrite.
    rows.sort((a, b) => b.n - a.n);
    const out = new Map<number, StateMap>(groupIds.map((id) => [id, new Map()]));
    for (const r of rows) {
      const state = out.get(r.root);
      if (state) applyEntry(state, r);
    }
    for (const [id, state] of out) this.cache.set(id, state);
    return out;
  }

  private async fetch(groupId: number): Promise<StateMap> {
    const rows = await selectGroupChain(this.ctx.db, groupId);
    // Oldest (the full snapshot) first, so newer deltas overwrite.
    rows.sort((a, b) => b.n - a.n);
    const state: StateMap = new Map();
    for (const r of rows) applyEntry(state, r);
    this.cache.set(groupId, state);
    return state;
  }
}

/** One delta entry: '' removes the key (a state reset), anything else sets it. */
function applyEntry(state: StateMap, r: { type: string; state_key: string; event_id: string }): void {
  if (r.event_id === '') state.delete(stateKey(r.type, r.state_key));
  else state.set(stateKey(r.type, r.state_key), r.event_id);
}
