/**
 * Guests leave a room whose guest access closes (spec: modules/guest_access,
 * "Server behaviour": when `m.room.guest_access` stops being `can_join`, the
 * server MUST set its guest users' membership to `leave`). Whether a user is
 * a guest is known only to their own server, so each server removes its own.
 */
import { serverNameOf } from '../core/ids.js';
import { stateKey } from '../core/types.js';
import type { RoomsCore } from './room-core.js';
import { leaveRoom } from './membership.js';

const GUEST_ACCESS_KEY = stateKey('m.room.guest_access', '');

/** After a guest access change committed: the local guests still joined leave, each by their own leave event. */
export async function removeGuestsIfClosed(core: RoomsCore, roomId: string): Promise<void> {
  const head = await core.requireHead(roomId);
  const id = head.state.get(GUEST_ACCESS_KEY);
  const ev = id === undefined ? undefined : await core.events.get(id);
  if (ev?.pdu.content?.guest_access === 'can_join') return;
  const joinedHere: string[] = [];
  for (const [userId, m] of head.members) if (m.membership === 'join' && serverNameOf(userId) === core.ctx.serverName) joinedHere.push(userId);
  for (const userId of await core.ctx.services.accounts.guestsAmong(joinedHere)) {
    try {
      await leaveRoom(core, { userId, deviceId: '', isAdmin: false, tokenId: '', isGuest: true }, roomId, {});
    } catch (err) {
      // The change itself is committed and answered; a guest left behind is logged, not an error for its sender.
      core.ctx.logger.warn({ err, roomId, userId }, 'could not remove a guest from a room closed to guests');
    }
  }
}
