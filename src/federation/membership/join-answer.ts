/**
 * What a resident server answers an accepted send_join with (joins-v2.yaml): the room's state
 * before the join and its auth chain. When the joining server asks for `omit_members`, member
 * events are left out of the state except those it needs at once: the joining user's own, and,
 * when the room has no name and no canonical alias, those of the members a client would name it
 * after (the `m.heroes` of /sync). The auth chain then leaves out what the state already holds,
 * and `servers_in_room` names the servers the joining server sends to until it has the rest.
 */
import { splitStateKey, stateKey, type Pdu, type StateMap } from '../../core/types.js';
import type { StoredEvent } from '../../rooms/events/stored-event.js';
import type { RoomsCore } from '../../rooms/room-core.js';
import { joinedServers } from '../../rooms/state/room-head.js';
import type { RoomReads } from '../room-reads.js';

/** How many members a room's summary names (client-server API, `m.heroes`). */
const HEROES = 5;

export interface JoinAnswer {
  origin: string;
  state: Pdu[];
  auth_chain: Pdu[];
  event: Pdu;
  members_omitted: boolean;
  servers_in_room?: string[];
}

export async function joinAnswer(deps: { core: RoomsCore; reads: RoomReads; serverName: string }, join: StoredEvent, omitMembers: boolean): Promise<JoinAnswer> {
  const { core, reads } = deps;
  const stateIds = (await reads.stateBefore(join)) ?? new Map<string, string>();
  if (!omitMembers) {
    const state = [...(await core.events.getMany(stateIds.values())).values()];
    const authChain = await reads.authChain([...state, join]);
    return { origin: deps.serverName, state: await reads.pdus(state), auth_chain: await reads.pdus(authChain), event: await reads.pdu(join), members_omitted: false };
  }
  const head = await core.requireHead(join.roomId);
  const kept = keptState(stateIds, join.pdu.sender, heroesOf(stateIds, head.members, join.pdu.sender));
  const state = [...(await core.events.getMany(kept)).values()];
  const inState = new Set(kept);
  const authChain = (await reads.authChain([...state, join])).filter((e) => !inState.has(e.eventId));
  const servers = joinedServers(head.members, join.pdu.sender);
  return {
    origin: deps.serverName,
    state: await reads.pdus(state),
    auth_chain: await reads.pdus(authChain),
    event: await reads.pdu(join),
    members_omitted: true,
    servers_in_room: [...servers].sort(),
  };
}

/** The state's events without member events, except those of `keep` and of `self`. */
function keptState(state: StateMap, self: string, keep: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (const [k, id] of state) {
    const [type, sk] = splitStateKey(k);
    if (type !== 'm.room.member' || sk === self || keep.has(sk)) out.push(id);
  }
  return out;
}

/**
 * The members a client names an unnamed room after: up to five joined or invited members other
 * than the joining user, by user id (a stable choice; none when the room has a name or alias).
 */
function heroesOf(state: StateMap, members: ReadonlyMap<string, { membership: string }>, self: string): Set<string> {
  if (state.has(stateKey('m.room.name', '')) || state.has(stateKey('m.room.canonical_alias', ''))) return new Set();
  const active = [...members].filter(([u, m]) => u !== self && (m.membership === 'join' || m.membership === 'invite')).map(([u]) => u);
  return new Set(active.sort().slice(0, HEROES));
}
