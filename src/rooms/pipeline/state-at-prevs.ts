import { authEventIds } from '../../core/auth-rules.js';
import type { RoomVersion } from '../../core/room-versions.js';
import { resolveState } from '../../core/state-res.js';
import type { StateMap } from '../../core/types.js';
import type { EventStore } from '../events/event-store.js';
import type { StoredEvent } from '../events/stored-event.js';
import type { StateGroups } from '../state/state-groups.js';

export interface StateAtPrevs {
  state: StateMap;
  /** The existing state group equal to `state`: set when every prev event shares it. */
  group: number | null;
}

/** Every event reachable from `ids` through auth_events, fetched level by level (one query per level). */
export async function loadAuthClosure(events: EventStore, ids: Iterable<string>): Promise<Map<string, StoredEvent>> {
  const out = new Map<string, StoredEvent>();
  let frontier = [...new Set(ids)];
  while (frontier.length > 0) {
    const loaded = await events.getMany(frontier);
    const next = new Set<string>();
    for (const [id, ev] of loaded) {
      if (out.has(id)) continue;
      out.set(id, ev);
      for (const a of authEventIds(ev.pdu)) if (!out.has(a) && !loaded.has(a)) next.add(a);
    }
    frontier = [...next];
  }
  return out;
}

/**
 * The room state before an event with these prev_events: the state after
 * each prev (its state group), resolved with the room version's algorithm
 * when they differ (a fork). Prev events must be stored with a state group;
 * the caller fetches missing ones first.
 */
export async function stateAtPrevs(
  events: EventStore,
  groups: StateGroups,
  version: RoomVersion,
  prevIds: string[],
): Promise<StateAtPrevs> {
  const prevs = await events.getMany(prevIds);
  const groupIds = new Set<number>();
  for (const id of prevIds) {
    const ev = prevs.get(id);
    if (!ev || ev.stateGroup === null) throw new Error(`prev event ${id} has no known state`);
    groupIds.add(ev.stateGroup);
  }
  if (groupIds.size === 0) return { state: new Map(), group: null };
  if (groupIds.size === 1) {
    const [g] = groupIds;
    return { state: await groups.load(g!), group: g! };
  }
  const maps = [...(await groups.loadMany(groupIds)).values()];
  const ids = new Set<string>();
  for (const m of maps) for (const id of m.values()) ids.add(id);
  const closure = await loadAuthClosure(events, ids);
  const state = resolveState(version, maps, (id) => closure.get(id), {
    isRejected: (id) => closure.get(id)?.rejectedReason != null,
  });
  return { state, group: null };
}
