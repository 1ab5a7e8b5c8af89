import type { Context } from '../context.js';
import type { Profile } from '../accounts/service.js';
import { isValidRoomAlias, isValidRoomId, isValidUserId, serverNameOf } from '../core/ids.js';
import { userPowerLevel } from '../core/power-levels.js';
import { stateKey, type JsonObject } from '../core/types.js';
import { forbidden, guestAccessForbidden, invalidParam, inviteBlocked, MatrixError, notFound } from '../http/errors.js';
import type { Requester } from '../http/requester.js';
import type { PersistedEvent } from './pipeline/pipeline.js';
import { headPowerLevels } from './power.js';
import type { RoomsCore } from './room-core.js';
import type { Membership } from './service.js';
import type { RoomHead } from './state/room-head.js';
import { setForgotten, selectMembership } from './store/memberships-table.js';

const JOIN_RULES_KEY = stateKey('m.room.join_rules', '');
const GUEST_ACCESS_KEY = stateKey('m.room.guest_access', '');

/**
 * Guests join only rooms whose `m.room.guest_access` is `can_join` (spec:
 * modules/guest_access, "Server behaviour"). Whether a user is a guest is not
 * known to other servers, so a room held elsewhere cannot be checked: refused.
 */
async function checkGuestMayJoin(core: RoomsCore, head: RoomHead | null | undefined): Promise<void> {
  const id = head?.state.get(GUEST_ACCESS_KEY);
  const ev = id === undefined ? undefined : await core.events.get(id);
  if (ev?.pdu.content?.guest_access !== 'can_join') throw guestAccessForbidden('Guests may not join this room');
}

/** A user's profile for their member events; absent while accounts cannot answer. */
export async function profileOf(ctx: Context, userId: string): Promise<Profile | null> {
  try {
    return await ctx.services.accounts.getProfile(userId);
  } catch (e) {
    if (e instanceof Error && e.message === 'unimplemented') return null;
    throw e;
  }
}

export function memberContent(membership: Membership, profile: Profile | null, reason?: unknown): JsonObject {
  const c: JsonObject = { membership };
  if (profile?.displayname !== undefined && profile.displayname !== null) c.displayname = profile.displayname;
  if (profile?.avatar_url !== undefined && profile.avatar_url !== null) c.avatar_url = profile.avatar_url;
  if (typeof reason === 'string' && reason.length > 0) c.reason = reason;
  return c;
}

function memberEvent(target: string, sender: string, content: JsonObject) {
  return { type: 'm.room.member', stateKey: target, sender, content };
}

/** Resolves `#alias:server` or validates `!room`; 404 when the alias is unknown. */
export async function resolveRoomIdOrAlias(ctx: Context, roomIdOrAlias: string): Promise<string> {
  if (roomIdOrAlias.startsWith('#')) {
    if (!isValidRoomAlias(roomIdOrAlias)) throw invalidParam(`Invalid room alias: ${roomIdOrAlias}`);
    const resolved = await ctx.services.directory.resolveAlias(roomIdOrAlias);
    if (!resolved) throw notFound(`Room alias ${roomIdOrAlias} not found`);
    return resolved.roomId;
  }
  if (!isValidRoomId(roomIdOrAlias)) throw invalidParam(`Invalid room id or alias: ${roomIdOrAlias}`);
  return roomIdOrAlias;
}

async function requireLocalRoom(core: RoomsCore, roomId: string): Promise<RoomHead> {
  const head = await core.heads.get(roomId);
  // Joining rooms through other servers arrives with federation.
  if (!head) throw notFound(`Room ${roomId} is not known to this server; joining remote rooms is not supported yet`);
  return head;
}

function validTarget(userId: unknown): string {
  if (typeof userId !== 'string' || !isValidUserId(userId)) throw invalidParam('user_id is not a valid user ID');
  return userId;
}

/**
 * For `restricted` / `knock_restricted` join rules (spec "Restricted rooms"):
 * when the joiner meets an allow condition, a joined local member who may
 * invite authorises the join.
 */
async function restrictedJoinAuthoriser(core: RoomsCore, head: RoomHead, userId: string): Promise<string | undefined> {
  const jrId = head.state.get(JOIN_RULES_KEY);
  if (!jrId || !head.version.restrictedJoinRuleSupported) return undefined;
  const jr = await core.events.get(jrId);
  const rule = jr?.pdu.content?.join_rule;
  if (rule !== 'restricted' && !(rule === 'knock_restricted' && head.version.knockRestrictedJoinRuleSupported)) return undefined;
  const current = head.members.get(userId)?.membership;
  if (current === 'join' || current === 'invite') return undefined;
  const allow = jr?.pdu.content?.allow;
  if (!Array.isArray(allow)) return undefined;
  let meets = false;
  for (const cond of allow) {
    if (typeof cond !== 'object' || cond === null || Array.isArray(cond)) continue;
    if (cond.type !== 'm.room_membership' || typeof cond.room_id !== 'string') continue;
    const other = await core.heads.get(cond.room_id);
    if (other?.members.get(userId)?.membership === 'join') {
      meets = true;
      break;
    }
  }
  if (!meets) return undefined;
  const pl = await headPowerLevels(core, head);
  for (const [member, m] of head.members) {
    if (m.membership === 'join' && serverNameOf(member) === core.ctx.serverName && userPowerLevel(pl, member) >= pl.invite) return member;
  }
  return undefined;
}

/** The room a join names, and the servers to join it through (`servers`, or those an alias of another server names). */
export async function joinTarget(core: RoomsCore, roomIdOrAlias: string, servers: string[]): Promise<{ roomId: string; servers: string[] }> {
  if (roomIdOrAlias.startsWith('#') && isValidRoomAlias(roomIdOrAlias) && serverNameOf(roomIdOrAlias) !== core.ctx.serverName) {
    // An alias of another server: its answer names the servers to join through.
    const resolved = await core.ctx.services.directory.resolveAlias(roomIdOrAlias);
    if (!resolved) throw notFound(`Room alias ${roomIdOrAlias} not found`);
    return { roomId: resolved.roomId, servers: servers.length === 0 ? resolved.servers : servers };
  }
  return { roomId: await resolveRoomIdOrAlias(core.ctx, roomIdOrAlias), servers };
}

export async function joinRoom(core: RoomsCore, requester: Requester, roomId: string, body: { reason?: string }, servers: string[]): Promise<{ room_id: string }> {
  const userId = requester.userId;
  const known = await core.heads.get(roomId);
  if (requester.isGuest === true) await checkGuestMayJoin(core, known);
  // Joined through another server when the room is not held here, when a user of another server
  // invited the user, or when the client names servers; otherwise made here, like any local join.
  const invitedFrom = known?.members.get(userId)?.membership === 'invite' ? serverNameOf(known.members.get(userId)!.sender) : undefined;
  const throughRemote = !known || (invitedFrom !== undefined && invitedFrom !== core.ctx.serverName) || servers.length > 0;
  const remoteServers = core.remote && throughRemote ? joinServers(core, known, roomId, servers) : [];
  if (core.remote && remoteServers.length > 0) {
    // A room this server is not in (unknown, or known from an invite or from before everyone here left).
    const profile = await profileOf(core.ctx, userId);
    await core.remote.join(roomId, userId, remoteServers, memberContent('join', profile, body.reason));
    return { room_id: roomId };
  }
  const head0 = await requireLocalRoom(core, roomId);
  const profile = await profileOf(core.ctx, userId);
  const authoriser = await restrictedJoinAuthoriser(core, head0, userId);
  return core.pipeline.submit<{ room_id: string }>(roomId, {
    plan: (head) => {
      const current = head.members.get(userId);
      const content = memberContent('join', profile, body.reason);
      if (authoriser !== undefined) content.join_authorised_via_users_server = authoriser;
      if (
        current?.membership === 'join' &&
        current.displayName === (profile?.displayname ?? null) &&
        current.avatarUrl === (profile?.avatar_url ?? null)
      ) {
        return { done: { room_id: roomId } };
      }
      return { events: [memberEvent(userId, userId, content)], finish: () => ({ room_id: roomId }) };
    },
  });
}

/**
 * The servers to join through when no user of this server is joined to the room: those given,
 * the room id's server, and those of the room's joined members as known here (the inviter's).
 * Empty when a user of this server is joined: the join is then made here.
 */
function joinServers(core: RoomsCore, known: RoomHead | null | undefined, roomId: string, given: string[]): string[] {
  const own = core.ctx.serverName;
  const out = new Set(given);
  if (known) {
    for (const [member, m] of known.members) {
      if (m.membership !== 'join') continue;
      const server = serverNameOf(member);
      if (server === own) return [];
      if (server !== undefined) out.add(server);
    }
  }
  const fromId = serverNameOf(roomId);
  if (fromId !== undefined) out.add(fromId);
  out.delete(own);
  return [...out];
}

export async function knockRoom(core: RoomsCore, requester: Requester, roomIdOrAlias: string, body: { reason?: string }, servers: string[] = []): Promise<{ room_id: string }> {
  const roomId = await resolveRoomIdOrAlias(core.ctx, roomIdOrAlias);
  const userId = requester.userId;
  const known = await core.heads.get(roomId);
  // No user of this server is in the room: the knock goes through a resident server (knocks.yaml).
  const remoteServers = core.remote ? joinServers(core, known, roomId, servers) : [];
  if (core.remote && remoteServers.length > 0) {
    const current = known?.members.get(userId)?.membership;
    if (current === 'knock') return { room_id: roomId };
    if (current === 'join' || current === 'invite' || current === 'ban') throw forbidden(`You cannot knock: your membership is ${current}`);
    const profile = await profileOf(core.ctx, userId);
    await core.remote.knock(roomId, userId, remoteServers, memberContent('knock', profile, body.reason));
    return { room_id: roomId };
  }
  await requireLocalRoom(core, roomId);
  const profile = await profileOf(core.ctx, userId);
  return core.pipeline.submit<{ room_id: string }>(roomId, {
    plan: (head) => {
      if (!head.version.knockingSupported) throw forbidden(`Room version ${head.version.id} does not support knocking`);
      const current = head.members.get(userId)?.membership;
      if (current === 'knock') return { done: { room_id: roomId } };
      if (current === 'join' || current === 'invite' || current === 'ban') throw forbidden(`You cannot knock: your membership is ${current}`);
      return { events: [memberEvent(userId, userId, memberContent('knock', profile, body.reason))], finish: () => ({ room_id: roomId }) };
    },
  });
}

export async function leaveRoom(core: RoomsCore, requester: Requester, roomId: string, body: { reason?: string }): Promise<Record<string, never>> {
  const known = await core.requireHead(roomId);
  const userId = requester.userId;
  const mine = known.members.get(userId);
  if (core.remote && (mine?.membership === 'invite' || mine?.membership === 'knock')) {
    // Rejecting an invite (or withdrawing a knock) to a room this server is not in: through a resident server.
    const servers = joinServers(core, known, roomId, [serverNameOf(mine.sender) ?? '']);
    if (servers.length > 0) {
      try {
        await core.remote.leave(roomId, userId, servers, memberContent('leave', null, body.reason));
        return {};
      } catch (e) {
        // No resident server would take it: the invite is rejected here alone (as below).
        core.ctx.logger.info({ roomId, userId, err: (e as Error).message }, 'rejecting an invite through a resident server failed; rejected locally');
      }
    }
  }
  return core.pipeline.submit<Record<string, never>>(roomId, {
    plan: (head) => {
      const current = head.members.get(userId)?.membership;
      if (current === undefined) throw forbidden('You are not a member of this room');
      if (current === 'leave') return { done: {} };
      if (current === 'ban') throw forbidden('You are banned from this room');
      return { events: [memberEvent(userId, userId, memberContent('leave', null, body.reason))], finish: () => ({}) };
    },
  });
}

export async function inviteUser(core: RoomsCore, requester: Requester, roomId: string, body: { user_id?: unknown; reason?: string }, extra: JsonObject = {}): Promise<Record<string, never>> {
  return inviteAs(core, requester.userId, roomId, body, extra);
}

/** An invite sent by `inviter` (a local user), with `extra` content (a third-party invite's proof). */
export async function inviteAs(core: RoomsCore, inviter: string, roomId: string, body: { user_id?: unknown; reason?: string }, extra: JsonObject = {}): Promise<Record<string, never>> {
  const target = validTarget(body.user_id);
  await core.requireHead(roomId);
  if (serverNameOf(target) === core.ctx.serverName) {
    let exists = true;
    try {
      exists = await core.ctx.services.accounts.userExists(target);
    } catch (e) {
      if (!(e instanceof Error && e.message === 'unimplemented')) throw e;
    }
    if (!exists) throw notFound(`User ${target} does not exist`);
    if (await core.ctx.services.sync.accountData.blocksInvites(target)) throw inviteBlocked(target);
  }
  const profile = await profileOf(core.ctx, target).catch(() => null);
  if (serverNameOf(target) !== core.ctx.serverName && core.remote) {
    // The invitee's server signs the invite before it is stored (federation).
    const current = (await core.requireHead(roomId)).members.get(target)?.membership;
    if (current === 'invite') return {};
    if (current === 'join') throw forbidden(`${target} is already in the room`);
    if (current === 'ban') throw forbidden(`${target} is banned from the room`);
    await core.remote.invite(roomId, inviter, target, { ...memberContent('invite', profile, body.reason), ...extra });
    return {};
  }
  return core.pipeline.submit<Record<string, never>>(roomId, {
    plan: (head) => {
      const current = head.members.get(target)?.membership;
      if (current === 'invite') return { done: {} };
      if (current === 'join') throw forbidden(`${target} is already in the room`);
      if (current === 'ban') throw forbidden(`${target} is banned from the room`);
      const content = { ...memberContent('invite', profile, body.reason), ...extra };
      return { events: [memberEvent(target, inviter, content)], finish: () => ({}) };
    },
  });
}

export async function kickUser(core: RoomsCore, requester: Requester, roomId: string, body: { user_id?: unknown; reason?: string }): Promise<Record<string, never>> {
  const target = validTarget(body.user_id);
  await core.requireHead(roomId);
  return core.pipeline.submit<Record<string, never>>(roomId, {
    plan: (head) => {
      const current = head.members.get(target)?.membership;
      if (current !== 'join' && current !== 'invite' && current !== 'knock') throw forbidden(`${target} is not in the room`);
      return { events: [memberEvent(target, requester.userId, memberContent('leave', null, body.reason))], finish: () => ({}) };
    },
  });
}

export async function banUser(core: RoomsCore, requester: Requester, roomId: string, body: { user_id?: unknown; reason?: string }): Promise<Record<string, never>> {
  const target = validTarget(body.user_id);
  await core.requireHead(roomId);
  return core.pipeline.submit<Record<string, never>>(roomId, {
    plan: (head) => {
      if (head.members.get(target)?.membership === 'ban') return { done: {} };
      return { events: [memberEvent(target, requester.userId, memberContent('ban', null, body.reason))], finish: () => ({}) };
    },
  });
}

export async function unbanUser(core: RoomsCore, requester: Requester, roomId: string, body: { user_id?: unknown; reason?: string }): Promise<Record<string, never>> {
  const target = validTarget(body.user_id);
  await core.requireHead(roomId);
  return core.pipeline.submit<Record<string, never>>(roomId, {
    plan: (head) => {
      if (head.members.get(target)?.membership !== 'ban') throw forbidden(`${target} is not banned`);
      return { events: [memberEvent(target, requester.userId, memberContent('leave', null, body.reason))], finish: () => ({}) };
    },
  });
}

/** POST /rooms/{roomId}/forget: only once left (or banned); the room then stays out of sync and history. */
export async function forgetRoom(core: RoomsCore, requester: Requester, roomId: string): Promise<Record<string, never>> {
  await core.requireHead(roomId);
  const row = await selectMembership(core.ctx.db, roomId, requester.userId);
  if (!row) return {};
  if (row.membership === 'join' || row.membership === 'invite' || row.membership === 'knock') {
    throw new MatrixError(400, 'M_UNKNOWN', `User ${requester.userId} is in room ${roomId}`);
  }
  await setForgotten(core.ctx.db, roomId, requester.userId);
  return {};
}

/** The member events for a profile change or account deactivation, sent room by room. */
export async function sendMembershipEverywhere(
  core: RoomsCore,
  userId: string,
  roomIds: string[],
  content: (head: RoomHead) => JsonObject | null,
): Promise<PersistedEvent[]> {
  const results = await Promise.allSettled(
    roomIds.map((roomId) =>
      core.pipeline.submit<PersistedEvent[]>(roomId, {
        plan: (head) => {
          const c = content(head);
          return c === null ? { done: [] } : { events: [memberEvent(userId, userId, c)] };
        },
      }),
    ),
  );
  const out: PersistedEvent[] = [];
  for (const r of results) {
    if (r.status === 'fulfilled') out.push(...r.value);
    else core.ctx.logger.warn({ err: r.reason, userId }, 'membership update failed in a room');
  }
  return out;
}
