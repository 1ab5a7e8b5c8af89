import { randomBytes } from 'node:crypto';
import { DEFAULT_ROOM_VERSION, getRoomVersion } from '../core/room-versions.js';
import { isValidRoomAlias, isValidUserId, serverNameOf } from '../core/ids.js';
import type { JsonObject } from '../core/types.js';
import { invalidParam, MatrixError, roomInUse, unsupportedRoomVersion } from '../http/errors.js';
import { checkThreepidInvite, inviteByThreepid } from './third-party-invite.js';
import type { Requester } from '../http/requester.js';
import { memberContent, profileOf } from './membership.js';
import type { EventSpec } from './pipeline/build-event.js';
import type { RoomsCore } from './room-core.js';
import { emptyHead } from './state/room-head.js';

export type Preset = 'private_chat' | 'trusted_private_chat' | 'public_chat';

export interface CreateRoomBody {
  visibility?: 'public' | 'private';
  room_alias_name?: string;
  name?: string;
  topic?: string;
  invite?: string[];
  invite_3pid?: unknown[];
  room_version?: string;
  creation_content?: JsonObject;
  initial_state?: { type: string; state_key?: string; content: JsonObject }[];
  preset?: Preset;
  is_direct?: boolean;
  power_level_content_override?: JsonObject;
}

/** The preset table of create_room.yaml. */
const PRESETS: Record<Preset, { joinRule: string; historyVisibility: string; guestAccess: string; invitePower: number }> = {
  private_chat: { joinRule: 'invite', historyVisibility: 'shared', guestAccess: 'can_join', invitePower: 0 },
  trusted_private_chat: { joinRule: 'invite', historyVisibility: 'shared', guestAccess: 'can_join', invitePower: 0 },
  public_chat: { joinRule: 'public', historyVisibility: 'shared', guestAccess: 'forbidden', invitePower: 50 },
};

const ROOM_ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';

function randomLocalpart(n = 18): string {
  let out = '';
  for (const b of randomBytes(n * 2)) {
    if (b < 208 && out.length < n) out += ROOM_ID_ALPHABET[b % 52];
  }
  return out.length === n ? out : randomLocalpart(n);
}

function defaultPowerLevels(creator: string, invitees: string[], preset: Preset, v12: boolean): JsonObject {
  const users: JsonObject = {};
  // v12 creators (and trusted invitees, who become additional creators) are never listed.
  if (!v12) {
    users[creator] = 100;
    if (preset === 'trusted_private_chat') for (const u of invitees) users[u] = 100;
  }
  return {
    users,
    users_default: 0,
    events: {
      'm.room.name': 50,
      'm.room.power_levels': 100,
      'm.room.history_visibility': 100,
      'm.room.canonical_alias': 50,
      'm.room.avatar': 50,
      // v12: "the power level for sending m.room.tombstone events MUST explicitly be higher than state_default".
      'm.room.tombstone': v12 ? 150 : 100,
      'm.room.server_acl': 100,
      'm.room.encryption': 100,
    },
    events_default: 0,
    state_default: 50,
    ban: 50,
    kick: 50,
    redact: 50,
    invite: PRESETS[preset].invitePower,
  };
}

let lastCreateTs = 0;

/**
 * From room v12 the room id is the create event's hash, and two rooms made by
 * one user with the same creation content in the same millisecond would get
 * the same create event: no two create events of this server share a
 * timestamp.
 */
function uniqueCreateTs(now: number): number {
  lastCreateTs = Math.max(now, lastCreateTs + 1);
  return lastCreateTs;
}

/**
 * POST /createRoom: every initial event in the order the spec lists, built
 * and auth-checked one on top of the other and written in one transaction.
 */
export async function createRoom(core: RoomsCore, requester: Requester, body: CreateRoomBody): Promise<{ room_id: string }> {
  const ctx = core.ctx;
  const creator = requester.userId;
  const versionId = body.room_version ?? DEFAULT_ROOM_VERSION;
  const version = getRoomVersion(versionId);
  if (!version) throw unsupportedRoomVersion(versionId);
  const v12 = version.privilegedCreators;
  const preset: Preset = body.preset ?? (body.visibility === 'public' ? 'public_chat' : 'private_chat');
  if (!(preset in PRESETS)) throw invalidParam(`Unknown preset ${preset}`);

  const asked = [...new Set(body.invite ?? [])];
  for (const u of asked) if (!isValidUserId(u)) throw invalidParam(`Invalid user ID in invite: ${u}`);
  // Checked before the room exists: a malformed entry or an untrusted identity server creates nothing.
  const threepidInvites = (body.invite_3pid ?? []).map(checkThreepidInvite);
  for (const i of threepidInvites) ctx.services.threepid.identityServers.checkTrusted(i.id_server);
  // A local user who blocks invites is left out; the room is made all the same (spec: "Invite permission").
  const blocked = await Promise.all(asked.map((u) => serverNameOf(u) === ctx.serverName && ctx.services.sync.accountData.blocksInvites(u)));
  const invitees = asked.filter((_, i) => !blocked[i]);

  let alias: string | undefined;
  if (body.room_alias_name !== undefined) {
    alias = `#${body.room_alias_name}:${ctx.serverName}`;
    if (body.room_alias_name.length === 0 || /[:\s]/.test(body.room_alias_name) || !isValidRoomAlias(alias)) {
      throw invalidParam(`Invalid room alias name: ${body.room_alias_name}`);
    }
    if (await ctx.services.directory.isAliasTaken(alias)) throw roomInUse();
  }

  const initial = (body.initial_state ?? []).map((e) => ({ type: e.type, stateKey: e.state_key ?? '', content: e.content }));
  const initialHas = (type: string) => initial.some((e) => e.type === type && e.stateKey === '');

  // 1. m.room.create
  const createContent: JsonObject = { ...(body.creation_content ?? {}), room_version: version.id };
  if (version.implicitRoomCreator) delete createContent.creator;
  else createContent.creator = creator;
  if (v12 && preset === 'trusted_private_chat' && invitees.length > 0) {
    const extra = Array.isArray(createContent.additional_creators) ? createContent.additional_creators : [];
    createContent.additional_creators = [...new Set([...extra.filter((u): u is string => typeof u === 'string'), ...invitees])];
  }
  const profile = await profileOf(ctx, creator);
  const specs: EventSpec[] = [
    { type: 'm.room.create', stateKey: '', sender: creator, content: createContent, ts: version.roomIdIsCreateEventHash ? uniqueCreateTs(ctx.now()) : undefined },
    // 2. the creator joins
    { type: 'm.room.member', stateKey: creator, sender: creator, content: memberContent('join', profile) },
  ];

  // 3. power levels (initial_state's, else the default), then the override on top
  const initialPl = initial.find((e) => e.type === 'm.room.power_levels' && e.stateKey === '');
  const plContent: JsonObject = {
    ...(initialPl?.content ?? defaultPowerLevels(creator, invitees, preset, v12)),
    ...(body.power_level_content_override ?? {}),
  };
  specs.push({ type: 'm.room.power_levels', stateKey: '', sender: creator, content: plContent });

  // 4. canonical alias
  if (alias !== undefined) specs.push({ type: 'm.room.canonical_alias', stateKey: '', sender: creator, content: { alias } });

  // 5. the preset's state, unless initial_state sets it
  const p = PRESETS[preset];
  const presetState: [string, JsonObject][] = [
    ['m.room.join_rules', { join_rule: p.joinRule }],
    ['m.room.history_visibility', { history_visibility: p.historyVisibility }],
    ['m.room.guest_access', { guest_access: p.guestAccess }],
  ];
  for (const [type, content] of presetState) {
    if (!initialHas(type)) specs.push({ type, stateKey: '', sender: creator, content });
  }

  // 6. initial_state, in order (name and topic parameters win over theirs)
  for (const e of initial) {
    if (e.type === 'm.room.create' || (e.type === 'm.room.power_levels' && e.stateKey === '')) continue;
    if (e.stateKey === '' && ((e.type === 'm.room.name' && body.name !== undefined) || (e.type === 'm.room.topic' && body.topic !== undefined))) continue;
    specs.push({ type: e.type, stateKey: e.stateKey, sender: creator, content: e.content });
  }

  // 7. name and topic
  if (body.name !== undefined) specs.push({ type: 'm.room.name', stateKey: '', sender: creator, content: { name: body.name } });
  if (body.topic !== undefined) {
    specs.push({
      type: 'm.room.topic',
      stateKey: '',
      sender: creator,
      content: { topic: body.topic, 'm.topic': { 'm.text': [{ body: body.topic, mimetype: 'text/plain' }] } },
    });
  }

  // 8. invites: users of other servers after the room exists, as their server must sign each one
  // (server-server "Inviting to a room"); without federation they are written like local ones.
  const inviteContent = async (u: string) => {
    const content = memberContent('invite', await profileOf(ctx, u).catch(() => null));
    if (body.is_direct) content.is_direct = true;
    return content;
  };
  const remoteInvitees = core.remote ? invitees.filter((u) => serverNameOf(u) !== ctx.serverName) : [];
  for (const u of invitees) {
    if (!remoteInvitees.includes(u)) specs.push({ type: 'm.room.member', stateKey: u, sender: creator, content: await inviteContent(u) });
  }

  const provisionalId = version.roomIdIsCreateEventHash ? '' : `!${randomLocalpart()}:${ctx.serverName}`;
  const persisted = await core.pipeline.createRoom(emptyHead(provisionalId, version, creator), {
    plan: () => ({ events: specs }),
    authError: (reason) => new MatrixError(400, 'M_INVALID_ROOM_STATE', `The initial room state is not allowed: ${reason}`),
  });
  const roomId = persisted[0]!.roomId;

  if (alias !== undefined) {
    try {
      await ctx.services.directory.createAlias(alias, roomId, creator);
    } catch (e) {
      if (e instanceof MatrixError && e.status === 409) throw roomInUse();
      throw e;
    }
  }
  if (body.visibility === 'public') await ctx.services.directory.setVisibility(roomId, 'public');
  // After the room exists (the identity server is told its id): one failed lookup must not lose
  // the room the client asked for, so a failure is logged and the others are still sent.
  for (const invite of threepidInvites) {
    try {
      await inviteByThreepid(core, requester, roomId, invite);
    } catch (e) {
      ctx.logger.warn({ roomId, err: (e as Error).message }, 'a third-party invite of createRoom failed');
    }
  }
  for (const u of remoteInvitees) {
    // The room exists whatever another server answers: a failed invite is logged, and the
    // creator sees no invite in the room and may invite again.
    try {
      await core.remote!.invite(roomId, creator, u, await inviteContent(u));
    } catch (err) {
      ctx.logger.warn({ err, roomId, invitee: u }, 'invite of a user of another server at room creation failed');
    }
  }
  return { room_id: roomId };
}
