/**
 * `PUT /_matrix/federation/v2/invite/{roomId}/{eventId}` (invites-v2.yaml): another server invites
 * a user of this one. The invite is checked as the spec asks (signed by its sender's server, an
 * m.room.member invite sent from the origin to a user of this server), signed here and answered.
 * When no user of this server is in the room, the invite is also held here: the full PDUs of
 * `invite_room_state` are stored as outliers and the invite with them as the state before it,
 * through the one inbound path, so that the user sees the invite in /sync and can join or reject.
 */
import { addEventSignature } from '../../core/event-format.js';
import { computeEventId } from '../../core/hashes.js';
import { serverNameOf } from '../../core/ids.js';
import { getRoomVersion, type RoomVersion } from '../../core/room-versions.js';
import type { SigningKey } from '../../core/signing.js';
import { stateKey, type Pdu, type StateMap } from '../../core/types.js';
import { inviteBlocked, MatrixError, notFound } from '../../http/errors.js';
import { checkReceived } from '../../rooms/inbound/check-received.js';
import type { KeyRing } from '../../rooms/inbound/key-ring.js';
import type { RoomsCore } from '../../rooms/room-core.js';
import { toStripped } from '../../rooms/stripped-hints.js';
import type { FederationRoute } from '../router.js';

const CREATE_KEY = stateKey('m.room.create', '');
const invalid = (msg: string) => new MatrixError(400, 'M_INVALID_PARAM', msg);

export interface InviteDeps {
  core: RoomsCore;
  keyRing: KeyRing;
  serverName: string;
  signingKey: SigningKey;
  userExists(userId: string): Promise<boolean>;
  /** Whether the user blocks every invite (m.invite_permission_config). */
  blocksInvites(userId: string): Promise<boolean>;
}

export function inviteRoute(deps: InviteDeps): FederationRoute {
  return {
    method: 'PUT',
    url: '/_matrix/federation/v2/invite/:roomId/:eventId',
    schema: {
      body: {
        type: 'object',
        required: ['room_version', 'event'],
        properties: { room_version: { type: 'string' }, event: { type: 'object' }, invite_room_state: { type: 'array' } },
      },
    },
    handler: async (req) => {
      const roomId = req.params.roomId as string;
      const version = getRoomVersion(req.body.room_version as string);
      if (!version) throw new MatrixError(400, 'M_INCOMPATIBLE_ROOM_VERSION', `Room version ${String(req.body.room_version)} is not supported`, { room_version: req.body.room_version });
      const checked = await checkReceived(req.body.event, version, roomId, deps.keyRing);
      if (!checked.ok) throw invalid(`The invite event is not valid: ${checked.reason}`);
      const { pdu, eventId } = checked.event;
      if (checked.event.redactedOnReceipt) throw invalid('The invite event does not match its content hash');
      if (eventId !== req.params.eventId) throw invalid('The event id does not match the event');
      if (pdu.type !== 'm.room.member' || pdu.content?.membership !== 'invite') throw invalid('The event is not an invite');
      if (serverNameOf(pdu.sender) !== req.origin) throw invalid(`${pdu.sender} does not belong to ${req.origin}`);
      const target = pdu.state_key;
      if (typeof target !== 'string' || serverNameOf(target) !== deps.serverName) throw invalid('The invited user does not belong to this server');
      if (!(await deps.userExists(target))) throw notFound(`User ${target} does not exist`);
      if (await deps.blocksInvites(target)) throw inviteBlocked(target);

      const signed = addEventSignature(pdu, version, deps.serverName, deps.signingKey);
      if (!(await hasLocalMember(deps, roomId))) await holdInvite(deps, roomId, version, eventId, signed, req.body.invite_room_state ?? []);
      return { event: signed };
    },
  };
}

async function hasLocalMember(deps: InviteDeps, roomId: string): Promise<boolean> {
  const head = await deps.core.heads.get(roomId);
  if (!head) return false;
  for (const [userId, m] of head.members) if (m.membership === 'join' && serverNameOf(userId) === deps.serverName) return true;
  return false;
}

/** Room versions in which unverifiable `invite_room_state` is taken as hints only (invites-v2.yaml: validation MAY apply to 1-11). */
const LENIENT_VERSIONS = new Set(['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11']);

/**
 * Stores the invite with the state it came with (see the module comment). Servers that send
 * stripped, unsigned `invite_room_state` (as the spec asked before v1.16) give nothing to check
 * the invite against: in room versions 1-11 the invite is then held out of band, with that state
 * kept as hints for the user.
 */
async function holdInvite(deps: InviteDeps, roomId: string, version: RoomVersion, eventId: string, invite: Pdu, roomState: unknown[]): Promise<void> {
  const state: StateMap = new Map();
  const outliers: unknown[] = [];
  for (const raw of roomState) {
    const ev = raw as Pdu;
    // Stripped events (no signatures) help clients only; full PDUs can be checked and stored.
    if (typeof ev !== 'object' || ev === null || typeof ev.signatures !== 'object' || typeof ev.type !== 'string' || typeof ev.state_key !== 'string') continue;
    let id: string;
    try {
      id = computeEventId(ev, version);
    } catch {
      continue;
    }
    outliers.push(ev);
    state.set(stateKey(ev.type, ev.state_key), id);
  }
  const lenient = LENIENT_VERSIONS.has(version.id);
  if (!state.has(CREATE_KEY) && lenient) return holdOutOfBand(deps, roomId, version, eventId, invite, roomState);
  const results = await deps.core.inbound.receive(roomId, { outliers, pdus: [invite], stateBefore: new Map([[eventId, state]]) }, { roomVersion: version.id }).catch((e: unknown) => {
    if (lenient) return undefined;
    throw invalid(`The invite cannot be checked against invite_room_state: ${(e as Error).message}`);
  });
  const mine = results?.find((r) => r.eventId === eventId);
  if (mine?.status === 'accepted' || mine?.status === 'duplicate') return;
  // Not stored (its state incomplete here): held on the inviting server's word, as above.
  if (lenient && (mine === undefined || mine.status === 'missing')) return holdOutOfBand(deps, roomId, version, eventId, invite, roomState);
  const reason = mine && 'reason' in mine && mine.reason ? mine.reason : (mine?.status ?? 'not processed');
  throw invalid(`The invite cannot be checked against invite_room_state: ${reason}`);
}

async function holdOutOfBand(deps: InviteDeps, roomId: string, version: RoomVersion, eventId: string, invite: Pdu, roomState: unknown[]): Promise<void> {
  const hints = toStripped(roomState);
  const create = hints.find((e) => e.type === 'm.room.create' && e.state_key === '');
  const creator = create && !version.implicitRoomCreator && typeof create.content.creator === 'string' ? create.content.creator : create?.sender;
  const results = await deps.core.inbound.receive(roomId, { pdus: [invite], outOfBand: true, strippedState: hints }, { roomVersion: version.id, creator });
  const mine = results.find((r) => r.eventId === eventId);
  if (mine?.status !== 'accepted' && mine?.status !== 'duplicate') {
    throw invalid(`The invite could not be held: ${mine && 'reason' in mine && mine.reason ? mine.reason : (mine?.status ?? 'not processed')}`);
  }
}
