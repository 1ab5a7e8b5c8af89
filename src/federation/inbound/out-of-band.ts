/**
 * Answers to invites and knocks held out of band: while no user of this server is in a room, a
 * user's invite or knock is held without the room's history (rooms/pipeline/apply-received.ts,
 * addOutOfBand). When the resident server then changes that membership (a knock accepted with an
 * invite, denied with a kick, an invite withdrawn), the event reaches this server in a transaction
 * but cannot be placed in a graph held here. Such an event, for a user of this server whose
 * membership is held out of band, is taken on its server's word like the invite or knock was
 * (for an invite, only from the inviter's server).
 */
import { computeEventId } from '../../core/hashes.js';
import { serverNameOf } from '../../core/ids.js';
import type { RoomVersion } from '../../core/room-versions.js';
import type { Pdu } from '../../core/types.js';
import type { InboundResult } from '../../rooms/inbound/receive.js';
import type { RoomsCore } from '../../rooms/room-core.js';

export async function holdMembershipChanges(
  core: RoomsCore,
  serverName: string,
  origin: string,
  roomId: string,
  version: RoomVersion,
  raws: unknown[],
  results: InboundResult[],
): Promise<InboundResult[]> {
  const missing = new Set(results.filter((r) => r.status === 'missing' && r.eventId !== undefined).map((r) => r.eventId!));
  if (missing.size === 0) return results;
  const head = await core.heads.get(roomId);
  if (!head || head.extremities.length > 0) return results;
  const taken: unknown[] = [];
  for (const raw of raws) {
    const pdu = raw as Pdu;
    if (typeof pdu !== 'object' || pdu === null || pdu.type !== 'm.room.member' || typeof pdu.state_key !== 'string') continue;
    if (serverNameOf(pdu.state_key) !== serverName) continue;
    const held = head.members.get(pdu.state_key);
    if (held?.membership !== 'invite' && held?.membership !== 'knock') continue;
    // An invite is answered by its inviter's server only (a knock by any server: the residents are not known here).
    if (held.membership === 'invite' && serverNameOf(held.sender) !== origin) continue;
    let id: string;
    try {
      id = computeEventId(pdu, version);
    } catch {
      continue;
    }
    if (missing.has(id)) taken.push(raw);
  }
  if (taken.length === 0) return results;
  const fresh = await core.inbound.receive(roomId, { pdus: taken, outOfBand: true });
  const byId = new Map(fresh.filter((r) => r.eventId !== undefined).map((r) => [r.eventId!, r]));
  return results.map((r) => (r.eventId !== undefined && byId.has(r.eventId) ? byId.get(r.eventId)! : r));
}
