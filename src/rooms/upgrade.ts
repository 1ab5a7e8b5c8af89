/**
 * POST /rooms/{roomId}/upgrade (room_upgrades.yaml; client-server "Room
 * Upgrades", server behaviour steps 1-6):
 *
 * 1. the user must be allowed to send m.room.tombstone in the old room;
 * 2. the new room is created (one transaction, createRoom) with `predecessor`
 *    and the old room's `type`, and with
 * 3. the transferable state: server ACL, encryption, name, avatar, topic,
 *    guest access, history visibility, join rules, and the power levels with
 *    every user's level; banned users stay banned and invited ones invited;
 * 4. the local aliases and the directory listing move to the new room, and
 *    the canonical alias follows them (it can only name aliases of the room);
 * 5. the tombstone goes into the old room;
 * 6. the old room's power levels then stop ordinary members from sending or
 *    inviting.
 *
 * Each step after the first commits on its own (they touch two rooms and the
 * directory). They run in this order so that a failure part way leaves the
 * old room usable: nothing changes in it before the new room exists.
 */
import { canSendEvent, roomCreators } from '../core/power-levels.js';
import { getRoomVersion } from '../core/room-versions.js';
import { stateKey, type JsonObject } from '../core/types.js';
import { forbidden, MatrixError, unsupportedRoomVersion } from '../http/errors.js';
import type { Requester } from '../http/requester.js';
import { createRoom } from './create-room.js';
import { headPowerLevels } from './power.js';
import type { RoomsCore } from './room-core.js';
import { sendState } from './send.js';

/** State copied to the new room as it is (step 3). */
const TRANSFERRED = [
  'm.room.server_acl',
  'm.room.encryption',
  'm.room.name',
  'm.room.avatar',
  'm.room.topic',
  'm.room.guest_access',
  'm.room.history_visibility',
  'm.room.join_rules',
];

/** The level a creator of a v12+ room is given when the new room's version has no privileged creators. */
const FORMER_CREATOR_LEVEL = 100;

export async function upgradeRoom(
  core: RoomsCore,
  requester: Requester,
  roomId: string,
  body: { new_version: string; additional_creators?: unknown },
): Promise<{ replacement_room: string }> {
  const ctx = core.ctx;
  const userId = requester.userId;
  const version = getRoomVersion(body.new_version);
  const head = await core.requireHead(roomId);
  if (!version) throw unsupportedRoomVersion(body.new_version);
  const oldPl = await headPowerLevels(core, head);
  if (head.members.get(userId)?.membership !== 'join' || !canSendEvent(oldPl, userId, 'm.room.tombstone', true)) {
    throw forbidden('You are not allowed to upgrade this room');
  }
  const extraCreators = additionalCreators(body.additional_creators, userId);

  const ids = [...head.state.entries()];
  const events = await core.events.getMany(ids.map(([, id]) => id));
  const contentOf = (type: string, key = ''): JsonObject | undefined => {
    const ev = events.get(head.state.get(stateKey(type, key)) ?? '');
    return ev && ev.redactedBy === null ? ev.pdu.content : undefined;
  };
  const createEvent = events.get(head.state.get(stateKey('m.room.create', '')) ?? '');
  const oldCreators = createEvent ? roomCreators(createEvent.pdu, head.version) : new Set([head.creator]);

  // 2. the create content: predecessor, and the old room's type.
  const predecessor: JsonObject = { room_id: roomId };
  // From v12 the predecessor's event_id may be left out; before, it names the old room's latest event.
  if (!version.privilegedCreators) {
    const latest = [...head.extremities].sort((a, b) => b.depth - a.depth)[0];
    if (latest) predecessor.event_id = latest.eventId;
  }
  const creationContent: JsonObject = { predecessor };
  const roomType = createEvent?.pdu.content?.type;
  if (typeof roomType === 'string') creationContent.type = roomType;
  if (version.privilegedCreators && extraCreators.length > 0) creationContent.additional_creators = extraCreators;

  // 3. transferred state, power levels, bans and invites.
  const initialState: { type: string; state_key: string; content: JsonObject }[] = [];
  for (const type of TRANSFERRED) {
    const content = contentOf(type);
    if (content !== undefined && Object.keys(content).length > 0) initialState.push({ type, state_key: '', content });
  }
  // No guest access event means guests may not join; the preset must not grant what the old room did not.
  if (!initialState.some((e) => e.type === 'm.room.guest_access')) {
    initialState.push({ type: 'm.room.guest_access', state_key: '', content: { guest_access: 'forbidden' } });
  }
  const banned: string[] = [];
  const invited: string[] = [];
  for (const [member, info] of head.members) {
    if (info.membership === 'ban') banned.push(member);
    else if (info.membership === 'invite') invited.push(member);
  }
  for (const member of banned) initialState.push({ type: 'm.room.member', state_key: member, content: { membership: 'ban' } });

  const finalPl = newPowerLevels(contentOf('m.room.power_levels'), {
    upgrader: userId,
    oldCreators: head.version.privilegedCreators ? oldCreators : new Set<string>(),
    newCreators: version.privilegedCreators ? new Set([userId, ...extraCreators]) : new Set<string>(),
  });
  // While the room is built the upgrader needs the power to send all of it; the real levels follow.
  const needed = Math.max(
    ...initialState.map((e) => levelFor(finalPl, e.type)),
    levelFor(finalPl, 'm.room.power_levels'),
    banned.length > 0 ? numberOr(finalPl.ban, 50) : 0,
    invited.length > 0 ? numberOr(finalPl.invite, 0) : 0,
  );
  const users = (finalPl.users ?? {}) as Record<string, number>;
  const buildPl = version.privilegedCreators || numberOr(users[userId], numberOr(finalPl.users_default, 0)) >= needed
    ? finalPl
    : { ...finalPl, users: { ...users, [userId]: needed } };
  initialState.push({ type: 'm.room.power_levels', state_key: '', content: buildPl });

  const { room_id: newRoomId } = await createRoom(core, requester, {
    room_version: version.id,
    creation_content: creationContent,
    initial_state: initialState,
    invite: invited.filter((u) => !banned.includes(u)),
    preset: 'private_chat',
  });
  if (buildPl !== finalPl) await sendState(core, requester, newRoomId, 'm.room.power_levels', '', finalPl);

  // 4. aliases and the directory listing, then the canonical alias that names them.
  await ctx.services.directory.moveToUpgradedRoom(roomId, newRoomId);
  const canonical = contentOf('m.room.canonical_alias');
  if (canonical !== undefined && (typeof canonical.alias === 'string' || Array.isArray(canonical.alt_aliases))) {
    // An alias that cannot be checked here (another server's) leaves the new room without a canonical alias.
    await bestEffort(ctx, sendState(core, requester, newRoomId, 'm.room.canonical_alias', '', canonical), 'canonical alias not copied to the upgraded room');
    await bestEffort(ctx, sendState(core, requester, roomId, 'm.room.canonical_alias', '', {}), 'canonical alias not removed from the old room');
  }

  // 5. the tombstone.
  await sendState(core, requester, roomId, 'm.room.tombstone', '', { body: 'This room has been replaced', replacement_room: newRoomId });

  // 6. the old room goes quiet: sending and inviting need more than an ordinary member has.
  const oldContent = contentOf('m.room.power_levels');
  const oldRestricted = restrictOldRoom(oldContent);
  if (oldRestricted && canSendEvent(oldPl, userId, 'm.room.power_levels', true)) {
    await bestEffort(ctx, sendState(core, requester, roomId, 'm.room.power_levels', '', oldRestricted), 'old room power levels not restricted after upgrade');
  }
  return { replacement_room: newRoomId };
}

/** A step after the tombstone's prerequisites that the upgrade does without when the rooms' rules refuse it. */
async function bestEffort(ctx: RoomsCore['ctx'], step: Promise<unknown>, what: string): Promise<void> {
  try {
    await step;
  } catch (err) {
    if (!(err instanceof MatrixError)) throw err;
    ctx.logger.info({ err }, what);
  }
}

function additionalCreators(v: unknown, upgrader: string): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.some((u) => typeof u !== 'string')) throw new MatrixError(400, 'M_BAD_JSON', 'additional_creators must be a list of user IDs');
  return [...new Set(v as string[])].filter((u) => u !== upgrader);
}

function numberOr(v: unknown, d: number): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v) : d;
}

/** The level a power levels content asks for sending a state event of `type`. */
function levelFor(pl: JsonObject, type: string): number {
  const events = (pl.events ?? {}) as Record<string, unknown>;
  return numberOr(events[type], numberOr(pl.state_default, 50));
}

/**
 * The new room's power levels: the old ones with every user's level, where
 * creators are listed as the new version wants them (v12+ creators are never
 * listed; creators of a v12+ room moving to an older version get a level).
 */
function newPowerLevels(
  old: JsonObject | undefined,
  who: { upgrader: string; oldCreators: Set<string>; newCreators: Set<string> },
): JsonObject {
  const pl: JsonObject = { ...(old ?? {}) };
  const users: Record<string, number> = {};
  for (const [u, level] of Object.entries((old?.users ?? {}) as Record<string, unknown>)) users[u] = numberOr(level, 0);
  for (const c of who.oldCreators) if (!who.newCreators.has(c)) users[c] = Math.max(users[c] ?? 0, FORMER_CREATOR_LEVEL);
  for (const c of who.newCreators) delete users[c];
  pl.users = users;
  return pl;
}

/** Step 6: events_default and invite raised to the greater of 50 and users_default + 1. Null when already so. */
function restrictOldRoom(old: JsonObject | undefined): JsonObject | null {
  const content: JsonObject = { ...(old ?? {}) };
  const floor = Math.max(50, numberOr(content.users_default, 0) + 1);
  let changed = false;
  for (const key of ['events_default', 'invite']) {
    if (numberOr(content[key], 0) < floor) {
      content[key] = floor;
      changed = true;
    }
  }
  return changed ? content : null;
}
