import { authEventIds } from '../../core/auth-rules.js';
import type { RoomVersion } from '../../core/room-versions.js';
import { resolveState } from '../../core/state-res.js';
import type { StateMap } from '../../core/types.js';
import type { StoredEvent } from '../events/stored-event.js';

/** Events that state resolution or an auth check needed but that are not stored. */
export class MissingEventsError extends Error {
  constructor(readonly ids: string[]) {
    super(`events needed for state resolution are missing: ${ids.slice(0, 5).join(', ')}${ids.length > 5 ? ', ...' : ''}`);
  }
}

/**
 * State resolution over stored events (and those of the batch being
 * planned, through `load`): the auth chains of every event in the sets are
 * loaded level by level, and an event the algorithm would need but that is
 * not here fails the resolution rather than being left out silently, so the
 * caller can fetch it or give up on the event.
 */
export async function resolveStates(
  version: RoomVersion,
  sets: StateMap[],
  load: (ids: string[]) => Promise<Map<string, StoredEvent>>,
): Promise<StateMap> {
  if (sets.length === 1) return sets[0]!;
  const closure = new Map<string, StoredEvent>();
  let frontier = [...new Set(sets.flatMap((s) => [...s.values()]))];
  const missing = new Set<string>();
  while (frontier.length > 0) {
    const loaded = await load(frontier);
    const next = new Set<string>();
    for (const id of frontier) {
      const ev = loaded.get(id);
      if (!ev) {
        missing.add(id);
        continue;
      }
      closure.set(id, ev);
      for (const a of authEventIds(ev.pdu)) if (!closure.has(a) && !loaded.has(a)) next.add(a);
    }
    frontier = [...next].filter((id) => !closure.has(id));
  }
  if (missing.size > 0) throw new MissingEventsError([...missing]);
  return resolveState(version, sets, (id) => closure.get(id), {
    isRejected: (id) => closure.get(id)?.rejectedReason != null,
  });
}

/** Event types the auth rules read from the state (the auth event selection of every room version). */
const AUTH_TYPES = new Set(['m.room.create', 'm.room.power_levels', 'm.room.join_rules', 'm.room.member', 'm.room.third_party_invite']);

/** Whether the states differ at any key of a type the auth rules read. */
export function conflictsTouchAuth(sets: StateMap[]): boolean {
  const [first, ...rest] = sets;
  if (!first) return false;
  const keys = new Set<string>();
  for (const s of sets) for (const k of s.keys()) keys.add(k);
  for (const k of keys) {
    const type = k.slice(0, k.indexOf('\u0000'));
    if (!AUTH_TYPES.has(type)) continue;
    const v = first.get(k);
    if (rest.some((s) => s.get(k) !== v)) return true;
  }
  return false;
}
