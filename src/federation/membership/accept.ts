/**
 * The resident server's half of send_join / send_leave (joins.yaml, leaving.yaml, v2): the
 * joining or leaving server's signed membership event goes through the one inbound path, and once
 * accepted it is relayed to the room's other servers. What is refused: an event for another room
 * or under another id than the path says, not a membership of the expected kind, not the
 * sender's own membership, not sent by the sender's server, or not allowed by the auth rules;
 * and everything while this server holds only partial state of the room (after waiting a little
 * for the full state, as make_join does).
 */
import { addEventSignature } from '../../core/event-format.js';
import { computeEventId } from '../../core/hashes.js';
import { userPowerLevel } from '../../core/power-levels.js';
import type { RoomVersion } from '../../core/room-versions.js';
import { headPowerLevels } from '../../rooms/power.js';
import { joinAuthoriser } from './restricted.js';
import { RESIDENT_WAIT_MS } from './template.js';
import { serverNameOf } from '../../core/ids.js';
import type { Pdu } from '../../core/types.js';
import { badJson, forbidden, MatrixError, notFound } from '../../http/errors.js';
import type { StoredEvent } from '../../rooms/events/stored-event.js';
import type { RoomsCore } from '../../rooms/room-core.js';
import type { FederationSender } from '../outbound/sender.js';

export async function acceptMembership(
  deps: { core: RoomsCore; sender: FederationSender },
  req: { origin: string; roomId: string; eventId: string; body: unknown; membership: 'join' | 'leave' | 'knock' },
): Promise<StoredEvent> {
  const version = await deps.core.versionOf(req.roomId);
  if (!version) throw notFound(`Room ${req.roomId} is not known to this server`);
  await deps.core.awaitFullState(req.roomId, RESIDENT_WAIT_MS);
  if ((await deps.core.heads.get(req.roomId))?.partial) throw notFound(`This server does not hold the full state of ${req.roomId} yet`);
  const pdu = req.body as Pdu;
  if (pdu.room_id !== req.roomId) throw badJson('The event is for another room');
  if (pdu.type !== 'm.room.member' || typeof pdu.content !== 'object' || pdu.content === null || pdu.content.membership !== req.membership) {
    throw badJson(`The event must be an m.room.member event with membership ${req.membership}`);
  }
  if (typeof pdu.sender !== 'string' || pdu.state_key !== pdu.sender) throw badJson('The state key must be the sender');
  if (serverNameOf(pdu.sender) !== req.origin) throw forbidden(`${pdu.sender} does not belong to ${req.origin}`);
  let eventId: string;
  try {
    eventId = computeEventId(pdu, version);
  } catch {
    throw badJson('The event is not valid');
  }
  if (eventId !== req.eventId) throw badJson('The event id does not match the event');
  const pdu2 = await countersign(deps.core, pdu, version);
  const [result] = (await deps.core.inbound.receive(req.roomId, { pdus: [pdu2] })).filter((r) => r.eventId === eventId);
  if (!result) throw badJson('The event is not valid');
  if (result.status !== 'accepted' && result.status !== 'duplicate') {
    const reason = 'reason' in result && result.reason ? result.reason : result.status;
    if (result.status === 'missing' || result.status === 'dropped') throw new MatrixError(400, 'M_BAD_JSON', `The event was not accepted: ${reason}`);
    throw forbidden(`The event was not accepted: ${reason}`);
  }
  const stored = await deps.core.events.get(eventId);
  if (!stored) throw notFound('The event was not stored');
  if (result.status === 'accepted' && stored.streamPos !== null) await deps.sender.forward(req.roomId, eventId, stored.streamPos, req.origin);
  return stored;
}

/**
 * A join that names a user of this server in `join_authorised_via_users_server` (restricted rooms)
 * is signed here once this server has checked again that the user meets the room's conditions and
 * that the named user may vouch: the auth rules then ask for this server's signature.
 */
async function countersign(core: RoomsCore, pdu: Pdu, version: RoomVersion): Promise<Pdu> {
  const via = pdu.content.join_authorised_via_users_server;
  if (pdu.content.membership !== 'join' || typeof via !== 'string' || serverNameOf(via) !== core.ctx.serverName) return pdu;
  const head = await core.requireHead(pdu.room_id);
  // Throws when the user meets none of the conditions (or they cannot be checked here).
  await joinAuthoriser(core, head, pdu.sender);
  const m = head.members.get(via);
  const pl = await headPowerLevels(core, head);
  if (m?.membership !== 'join' || userPowerLevel(pl, via) < pl.invite) throw new MatrixError(400, 'M_UNABLE_TO_GRANT_JOIN', `${via} cannot authorise the join`);
  return addEventSignature(pdu, version, core.ctx.serverName, core.ctx.signingKey);
}
