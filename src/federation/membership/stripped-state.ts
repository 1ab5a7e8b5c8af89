/**
 * `invite_room_state` sent with an invite (invites-v2.yaml, spec v1.16 and later): full PDUs of the
 * room's create event, the state clients show for an invite (spec: client-server API, "Stripped
 * state"), and the invite's own auth events, so that the invitee's server can check the invite
 * against them and hold it before it is in the room.
 */
import { authEventIds } from '../../core/auth-rules.js';
import { stateKey, type Pdu } from '../../core/types.js';
import type { RoomsCore } from '../../rooms/room-core.js';
import type { RoomHead } from '../../rooms/state/room-head.js';

const TYPES = ['m.room.create', 'm.room.join_rules', 'm.room.name', 'm.room.avatar', 'm.room.topic', 'm.room.encryption', 'm.room.canonical_alias', 'm.room.power_levels'];

export async function inviteRoomState(core: RoomsCore, head: RoomHead, invite: Pdu): Promise<Pdu[]> {
  const ids = new Set(TYPES.map((t) => head.state.get(stateKey(t, ''))).filter((id) => id !== undefined));
  const inviter = head.state.get(stateKey('m.room.member', invite.sender));
  if (inviter !== undefined) ids.add(inviter);
  for (const id of authEventIds(invite)) ids.add(id);
  const loaded = await core.events.getMany(ids);
  const out: Pdu[] = [];
  for (const ev of loaded.values()) {
    const { unsigned: _unsigned, ...pdu } = ev.pdu;
    void _unsigned;
    out.push(pdu as Pdu);
  }
  return out;
}
