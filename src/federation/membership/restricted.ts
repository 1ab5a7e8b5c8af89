/**
 * The resident server's part in joins to restricted rooms (spec: server-server API, "Restricted
 * rooms"; client-server API, "Restricted rooms"): which user of this server authorises a join
 * (`join_authorised_via_users_server`), or why this server cannot:
 *  - 400 M_UNABLE_TO_AUTHORISE_JOIN: none of the allow conditions' rooms is held here, so the
 *    conditions cannot be checked (another server may);
 *  - 403 M_FORBIDDEN: the rooms are held here and the user is in none of them;
 *  - 400 M_UNABLE_TO_GRANT_JOIN: the user meets a condition but no user of this server in the room
 *    may invite, so no join this server signs would pass the auth rules (another server may).
 */
import { serverNameOf } from '../../core/ids.js';
import { userPowerLevel } from '../../core/power-levels.js';
import { stateKey } from '../../core/types.js';
import { forbidden, MatrixError } from '../../http/errors.js';
import { headPowerLevels } from '../../rooms/power.js';
import type { RoomsCore } from '../../rooms/room-core.js';
import { joinedServers, type RoomHead } from '../../rooms/state/room-head.js';

/** The allow conditions when the room's join rule is restricted (or knock_restricted) in its version; undefined otherwise. */
async function allowRooms(core: RoomsCore, head: RoomHead): Promise<string[] | undefined> {
  const id = head.state.get(stateKey('m.room.join_rules', ''));
  if (id === undefined || !head.version.restrictedJoinRuleSupported) return undefined;
  const content = (await core.events.get(id))?.pdu.content;
  const rule = content?.join_rule;
  if (rule !== 'restricted' && !(rule === 'knock_restricted' && head.version.knockRestrictedJoinRuleSupported)) return undefined;
  const allow = Array.isArray(content?.allow) ? content.allow : [];
  const rooms: string[] = [];
  for (const cond of allow) {
    if (typeof cond !== 'object' || cond === null || Array.isArray(cond)) continue;
    if (cond.type === 'm.room_membership' && typeof cond.room_id === 'string') rooms.push(cond.room_id);
  }
  return rooms;
}

/**
 * The user of this server who authorises `userId`'s join, or undefined when the join needs no
 * authorisation (the rule is not restricted, or the user is invited or joined already); throws the
 * errors of the module comment otherwise.
 */
export async function joinAuthoriser(core: RoomsCore, head: RoomHead, userId: string): Promise<string | undefined> {
  const rooms = await allowRooms(core, head);
  if (rooms === undefined) return undefined;
  const current = head.members.get(userId)?.membership;
  if (current === 'join' || current === 'invite') return undefined;
  const own = core.ctx.serverName;
  let checked = false;
  let meets = false;
  for (const roomId of rooms) {
    const other = await core.heads.get(roomId);
    // A room is held here when one of this server's users is in it: otherwise its members are not known.
    if (!other || !joinedServers(other.members).has(own)) continue;
    checked = true;
    if (other.members.get(userId)?.membership === 'join') {
      meets = true;
      break;
    }
  }
  if (!checked) throw new MatrixError(400, 'M_UNABLE_TO_AUTHORISE_JOIN', 'This server cannot check any of the room’s allow conditions');
  if (!meets) throw forbidden(`${userId} does not meet the room’s allow conditions`);
  const pl = await headPowerLevels(core, head);
  for (const [member, m] of head.members) {
    if (m.membership === 'join' && serverNameOf(member) === own && userPowerLevel(pl, member) >= pl.invite) return member;
  }
  throw new MatrixError(400, 'M_UNABLE_TO_GRANT_JOIN', 'No user of this server in the room may authorise the join');
}
