/**
 * The resident server's half of make_join / make_leave (spec: server-server API, "Joining
 * Rooms", "Leaving Rooms"; joins.yaml, leaving.yaml): a membership event template on top of the
 * room's current head, refused unless the auth rules would allow it against the current state,
 * and, while this server has only partial state, answered once it has the full state or refused
 * after RESIDENT_WAIT_MS (the joiner asks another server).
 */
import { authEventSelection, authStateFromEvents, checkAuth } from '../../core/auth-rules.js';
import { encodeUnpaddedBase64 } from '../../core/base64.js';
import { computeReferenceHash } from '../../core/hashes.js';
import { serverNameOf } from '../../core/ids.js';
import { stateKey, type JsonObject, type Pdu } from '../../core/types.js';
import { forbidden, MatrixError, notFound } from '../../http/errors.js';
import type { RoomsCore } from '../../rooms/room-core.js';
import { joinAuthoriser } from './restricted.js';

const MAX_PREV_EVENTS = 10;
/**
 * How long a request that needs the room's full state waits for a partial-state join's resync
 * (seconds in a small room) before it is refused.
 */
export const RESIDENT_WAIT_MS = 20_000;

export async function membershipTemplate(
  core: RoomsCore,
  opts: { origin: string; roomId: string; userId: string; membership: 'join' | 'leave' | 'knock'; supportedVersions?: string[]; now: number },
): Promise<{ event: JsonObject; room_version: string }> {
  if (serverNameOf(opts.userId) !== opts.origin) throw forbidden(`${opts.userId} does not belong to ${opts.origin}`);
  await core.awaitFullState(opts.roomId, RESIDENT_WAIT_MS);
  const head = await core.heads.get(opts.roomId);
  if (!head || head.extremities.length === 0) throw notFound(`Room ${opts.roomId} is not known to this server`);
  // With partial state this server cannot check a membership, nor send the state a joiner needs.
  if (head.partial) throw notFound(`This server does not hold the full state of ${opts.roomId} yet`);
  const version = head.version;
  if (opts.supportedVersions !== undefined && !opts.supportedVersions.includes(version.id)) {
    throw new MatrixError(400, 'M_INCOMPATIBLE_ROOM_VERSION', `The room has version ${version.id}`, { room_version: version.id });
  }
  // Restricted rooms: a user of this server vouches for the join (see restricted.ts).
  const authoriser = opts.membership === 'join' ? await joinAuthoriser(core, head, opts.userId) : undefined;
  const prevs = [...head.extremities].sort((a, b) => b.depth - a.depth).slice(0, MAX_PREV_EVENTS);
  const draft: Pdu = {
    room_id: opts.roomId,
    sender: opts.userId,
    type: 'm.room.member',
    state_key: opts.userId,
    content: authoriser !== undefined ? { membership: opts.membership, join_authorised_via_users_server: authoriser } : { membership: opts.membership },
    origin_server_ts: opts.now,
    depth: prevs[0]!.depth + 1,
    prev_events: [],
    auth_events: [],
  } as unknown as Pdu;
  const authIds: string[] = [];
  for (const [t, k] of authEventSelection(draft, version)) {
    const id = head.state.get(stateKey(t, k));
    if (id !== undefined) authIds.push(id);
  }
  const createId = head.state.get(stateKey('m.room.create', ''));
  const loaded = await core.events.getMany([...authIds, ...prevs.map((p) => p.eventId), ...(createId ? [createId] : [])]);
  const ref = (id: string): string | [string, JsonObject] => {
    if (version.eventIdFormat !== 'v1') return id;
    return [id, { sha256: encodeUnpaddedBase64(computeReferenceHash(loaded.get(id)!.pdu, version)) }];
  };
  draft.prev_events = prevs.map((p) => ref(p.eventId)) as Pdu['prev_events'];
  draft.auth_events = authIds.map(ref) as Pdu['auth_events'];
  const authEvents = authIds.map((id) => loaded.get(id)).filter((e) => e !== undefined);
  // The template is unsigned; this server signs the joins its users vouch for on send_join.
  const own = core.ctx.serverName;
  const res = checkAuth({ eventId: '$template', pdu: draft }, authStateFromEvents(authEvents), version, createId ? loaded.get(createId) : undefined, {
    isSignedBy: (_pdu, server) => server === own,
  });
  if (!res.allowed) throw forbidden(`The ${opts.membership} would not be allowed: ${res.reason}`);
  return { event: draft as unknown as JsonObject, room_version: version.id };
}
