/**
 * State resolution v1 (rooms/v1.md), for the few remaining v1 rooms. Known
 * to reset state; implemented as specified. state-res.ts picks it by room
 * version.
 */

import { createHash } from 'node:crypto';
import { checkAuth, M_JOIN_RULES, M_MEMBER, M_POWER_LEVELS } from './auth-rules.js';
import type { RoomVersion } from './room-versions.js';
import type { StateResOptions, AuthGraph } from './state-res.js';
import { stateKey, type EventWithId, type StateMap } from './types.js';

const sha1Memo = new Map<string, string>();
function sha1Hex(s: string): string {
  let h = sha1Memo.get(s);
  if (h === undefined) {
    h = createHash('sha1').update(s, 'utf8').digest('hex');
    if (sha1Memo.size > 10_000) sha1Memo.clear();
    sha1Memo.set(s, h);
  }
  return h;
}

export function resolveV1(
  version: RoomVersion, unconflicted: StateMap, conflictedByKey: Map<string, Set<string>>,
  graph: AuthGraph, create: EventWithId | undefined, opts: StateResOptions,
): StateMap {
  const r: StateMap = new Map(unconflicted);
  const lookup = (t: string, sk: string): EventWithId | undefined => {
    const id = r.get(stateKey(t, sk));
    return id === undefined ? undefined : graph.get(id);
  };
  const allowed = (ev: EventWithId): boolean => checkAuth(ev, lookup, version, create, opts).allowed;
  const candidates = (key: string): EventWithId[] =>
    [...conflictedByKey.get(key)!].map((id) => graph.get(id)).filter((e): e is EventWithId => e !== undefined);
  const keysOfType = (type: string): string[] =>
    [...conflictedByKey.keys()].filter((k) => k.startsWith(`${type}\u0000`)).sort();

  const authTypes = [M_POWER_LEVELS, M_JOIN_RULES, M_MEMBER];
  for (const type of authTypes) {
    for (const key of keysOfType(type)) {
      // Ascending depth, then descending sha1(event_id); the first is taken as given.
      const list = candidates(key).sort((a, b) =>
        a.pdu.depth - b.pdu.depth || (sha1Hex(a.eventId) < sha1Hex(b.eventId) ? 1 : -1));
      if (list.length === 0) continue;
      r.set(key, list[0]!.eventId);
      for (const ev of list.slice(1)) {
        if (!allowed(ev)) break;
        r.set(key, ev.eventId);
      }
    }
  }
  const handled = new Set(authTypes);
  const others = [...conflictedByKey.keys()].filter((k) => !handled.has(k.slice(0, k.indexOf('\u0000')))).sort();
  for (const key of others) {
    // Highest depth, then lowest sha1(event_id), that passes auth in R.
    const list = candidates(key).sort((a, b) =>
      b.pdu.depth - a.pdu.depth || (sha1Hex(a.eventId) < sha1Hex(b.eventId) ? -1 : 1));
    const winner = list.find(allowed);
    if (winner) r.set(key, winner.eventId);
  }
  return r;
}
