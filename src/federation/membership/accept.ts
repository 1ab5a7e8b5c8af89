/**
 * The resident server's half of send_join / send_leave (joins.yaml, leaving.yaml, v2): the
 * joining or leaving server's signed membership event goes through the one inbound path, and once
 * accepted it is relayed to the room's other servers. What is refused: an event for another room
 * or under another id than the path says, not a membership of the expected kind, not the
 * sender's own membership, not sent by the sender's server, or not allowed by the auth rules.
 */
import { computeEventId } from '../../core/hashes.js';
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
  const [result] = (await deps.core.inbound.receive(req.roomId, { pdus: [pdu] })).filter((r) => r.eventId === eventId);
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
