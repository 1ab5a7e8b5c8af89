/**
 * Inviting by third-party identifier (client-server API, "Third-party invites";
 * server-server API, "Third-party invites"): `/invite` with `id_server`, `id_access_token`,
 * `medium` and `address`, and each entry of `invite_3pid` in `/createRoom`.
 *
 * 1. The identity server is asked whom the address is bound to (v2 hashed lookup).
 * 2. Bound: the user is invited as anyone else is.
 * 3. Not bound: the identity server stores the invite (it will notify the homeserver of
 *    whoever binds the address, with a `signed` proof), and an `m.room.third_party_invite`
 *    with the token and the identity server's public keys goes into the room. The member
 *    invite that proof later authorises is made by `acceptThirdPartyInvite`.
 */
import { isValidUserId, serverNameOf } from '../core/ids.js';
import { userPowerLevel } from '../core/power-levels.js';
import { verifySignedByAnyKey } from '../core/signing.js';
import { stateKey, type JsonObject } from '../core/types.js';
import { badJson, forbidden, missingParam, notFound } from '../http/errors.js';
import type { Requester } from '../http/requester.js';
import { canonicalAddress } from '../threepid/address.js';
import { IdentityServerError, type InviteRoomInfo } from '../threepid/identity-servers.js';
import { inviteAs, inviteUser, profileOf } from './membership.js';
import { headPowerLevels } from './power.js';
import type { RoomsCore } from './room-core.js';
import type { RoomHead } from './state/room-head.js';

export interface ThreepidInvite {
  id_server: string;
  id_access_token: string;
  medium: string;
  address: string;
}

/** The shape of one `invite_3pid` entry (or a 3pid `/invite` body), checked before anything is done. */
export function checkThreepidInvite(raw: unknown): ThreepidInvite {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw badJson('A third-party invite must be an object');
  const r = raw as Record<string, unknown>;
  for (const k of ['id_server', 'id_access_token', 'medium', 'address'] as const) {
    if (r[k] === undefined) throw missingParam(`A third-party invite needs ${k}`);
    if (typeof r[k] !== 'string' || r[k] === '') throw badJson(`${k} must be a non-empty string`);
  }
  const medium = r.medium as string;
  // The identity server hashes and stores the canonical form (appendices, "3PID Types"): a lookup of another spelling would miss.
  return { id_server: r.id_server as string, id_access_token: r.id_access_token as string, medium, address: canonicalAddress(medium, r.address as string) };
}

async function stateContent(core: RoomsCore, head: RoomHead, type: string): Promise<JsonObject | undefined> {
  const id = head.state.get(stateKey(type, ''));
  const ev = id === undefined ? undefined : await core.events.get(id);
  return ev?.pdu.content;
}

/** What the identity server may show in the invitation it sends (store-invite's optional fields). */
async function roomInfo(core: RoomsCore, head: RoomHead, roomId: string, sender: string): Promise<InviteRoomInfo> {
  const info: InviteRoomInfo = { room_id: roomId, sender };
  const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
  info.room_name = str((await stateContent(core, head, 'm.room.name'))?.name);
  info.room_alias = str((await stateContent(core, head, 'm.room.canonical_alias'))?.alias);
  info.room_avatar_url = str((await stateContent(core, head, 'm.room.avatar'))?.url);
  info.room_join_rules = str((await stateContent(core, head, 'm.room.join_rules'))?.join_rule);
  info.room_type = str((await stateContent(core, head, 'm.room.create'))?.type);
  const profile = await profileOf(core.ctx, sender).catch(() => null);
  info.sender_display_name = str(profile?.displayname);
  info.sender_avatar_url = str(profile?.avatar_url);
  for (const k of Object.keys(info) as (keyof InviteRoomInfo)[]) if (info[k] === undefined) delete info[k];
  return info;
}

export async function inviteByThreepid(core: RoomsCore, requester: Requester, roomId: string, invite: ThreepidInvite): Promise<Record<string, never>> {
  const idServers = core.ctx.services.threepid.identityServers;
  const idServer = idServers.checkTrusted(invite.id_server);
  const head = await core.requireHead(roomId);
  // Checked before the identity server hears of the room: only someone who may invite gets it to store anything.
  if (head.members.get(requester.userId)?.membership !== 'join') throw forbidden('You are not in this room');
  const pl = await headPowerLevels(core, head);
  if (userPowerLevel(pl, requester.userId) < pl.invite) throw forbidden('You may not invite users to this room');

  try {
    const bound = await idServers.lookup(idServer, invite.id_access_token, invite.medium, invite.address);
    if (bound !== null) return await inviteUser(core, requester, roomId, { user_id: bound });
    const stored = await idServers.storeInvite(idServer, invite.id_access_token, invite.medium, invite.address, await roomInfo(core, head, roomId, requester.userId));
    const [first] = stored.public_keys;
    const content: JsonObject = {
      display_name: stored.display_name,
      key_validity_url: first!.key_validity_url,
      public_key: first!.public_key,
      public_keys: stored.public_keys,
    };
    return await core.pipeline.submit<Record<string, never>>(roomId, {
      plan: () => ({ events: [{ type: 'm.room.third_party_invite', stateKey: stored.token, sender: requester.userId, content }], finish: () => ({}) }),
    });
  } catch (e) {
    if (e instanceof IdentityServerError) throw e.toMatrixError();
    throw e;
  }
}

/**
 * The proof came back (the identity server's `onbind`, or another server's
 * `exchange_third_party_invite`): `sender`, a user of this server who sent the
 * `m.room.third_party_invite`, invites `signed.mxid` with
 * `third_party_invite: {display_name, signed}` in the member event. The auth
 * rules check the proof against the invite's public keys; the display name is the
 * one the room holds.
 */
export async function acceptThirdPartyInvite(core: RoomsCore, roomId: string, sender: string, signed: JsonObject): Promise<Record<string, never>> {
  if (typeof signed.mxid !== 'string' || typeof signed.token !== 'string') throw badJson('signed needs mxid and token');
  const head = await core.requireHead(roomId);
  const id = head.state.get(stateKey('m.room.third_party_invite', signed.token));
  const stored = id === undefined ? undefined : await core.events.get(id);
  if (!stored) throw notFound('The room holds no third-party invite with this token');
  if (stored.pdu.sender !== sender) throw forbidden('The third-party invite was sent by someone else');
  await checkKeyStillValid(core, stored.pdu.content, signed);
  const displayName = typeof stored.pdu.content.display_name === 'string' ? stored.pdu.content.display_name : '';
  return inviteAs(core, sender, roomId, { user_id: signed.mxid }, { third_party_invite: { display_name: displayName, signed } });
}

/**
 * A join with the proof of a third-party invite in hand (`third_party_signed`,
 * room_membership.yaml): the member invite it stands for is issued first, here when its
 * `sender` is a user of this server, else by the sender's server. The join then goes on as
 * after any invite. A user already invited or joined needs no invite.
 */
export async function inviteByProof(core: RoomsCore, userId: string, roomId: string, signed: JsonObject): Promise<void> {
  if (signed.mxid !== userId) throw forbidden('The third-party invite proof is for another user');
  const sender = signed.sender;
  if (typeof sender !== 'string' || !isValidUserId(sender)) throw badJson('third_party_signed.sender must be a user id');
  const membership = (await core.heads.get(roomId))?.members.get(userId)?.membership;
  if (membership === 'invite' || membership === 'join') return;
  if (serverNameOf(sender) === core.ctx.serverName) {
    await acceptThirdPartyInvite(core, roomId, sender, signed);
    return;
  }
  if (!core.remote) throw forbidden('The third-party invite was sent from another server, and federation is off');
  await core.remote.exchangeThirdPartyInvite(roomId, sender, signed);
}

/**
 * The inviting server must ask the identity server whether the key that signed the proof is
 * still valid, at the key's own `key_validity_url` (third_party_invites.md). Only here: other
 * servers accept the event on the signature alone, so that acceptance stays deterministic.
 */
async function checkKeyStillValid(core: RoomsCore, invite: JsonObject, signed: JsonObject): Promise<void> {
  const entries: { public_key: string; key_validity_url: string }[] = [];
  if (typeof invite.public_key === 'string' && typeof invite.key_validity_url === 'string') {
    entries.push({ public_key: invite.public_key, key_validity_url: invite.key_validity_url });
  }
  if (Array.isArray(invite.public_keys)) {
    for (const k of invite.public_keys) {
      if (k !== null && typeof k === 'object' && !Array.isArray(k) && typeof k.public_key === 'string' && typeof k.key_validity_url === 'string') {
        entries.push({ public_key: k.public_key, key_validity_url: k.key_validity_url });
      }
    }
  }
  const signer = entries.find((e) => verifySignedByAnyKey(signed, [e.public_key]));
  if (!signer) throw forbidden('The third-party invite proof is not signed by a key of the invite');
  if (!(await core.ctx.services.threepid.identityServers.keyIsValid(signer.key_validity_url, signer.public_key))) {
    throw forbidden('The identity server no longer vouches for the key that signed the third-party invite');
  }
}
