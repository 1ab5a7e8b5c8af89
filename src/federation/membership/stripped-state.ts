/** The stripped state sent with an invite (spec: client-server API, "Stripped state"). */
import { stateKey, type JsonObject } from '../../core/types.js';
import type { RoomsCore } from '../../rooms/room-core.js';
import type { RoomHead } from '../../rooms/state/room-head.js';

const TYPES = ['m.room.create', 'm.room.join_rules', 'm.room.name', 'm.room.avatar', 'm.room.topic', 'm.room.encryption', 'm.room.canonical_alias'];

export async function strippedStateOf(core: RoomsCore, head: RoomHead, inviter: string): Promise<JsonObject[]> {
  const ids = TYPES.map((t) => head.state.get(stateKey(t, ''))).filter((id) => id !== undefined);
  const member = head.state.get(stateKey('m.room.member', inviter));
  if (member !== undefined) ids.push(member);
  const loaded = await core.events.getMany(ids);
  return ids
    .map((id) => loaded.get(id))
    .filter((e) => e !== undefined)
    .map((e) => ({ type: e.pdu.type, state_key: e.pdu.state_key ?? '', sender: e.pdu.sender, content: e.pdu.content }));
}
