/**
 * A member event that turns a third-party invite into a Matrix invite
 * (v1-auth-rules "If membership is invite" with `third_party_invite`): the
 * `signed` object must name the target and be signed by one of the public
 * keys of the room's `m.room.third_party_invite` event for its token. The
 * check is pure Ed25519 (no key lookup) unless a hook is given.
 */

import type { JsonObject, JsonValue } from './types.js';
import { verifySignedByAnyKey } from './signing.js';
import { ALLOW, isObject, M_THIRD_PARTY_INVITE, membershipInState, reject, type AuthContext, type AuthResult } from './auth-rules-context.js';

function thirdPartyInvitePublicKeys(content: JsonObject): string[] {
  const keys: string[] = [];
  if (typeof content.public_key === 'string') keys.push(content.public_key);
  if (Array.isArray(content.public_keys)) {
    for (const k of content.public_keys) if (isObject(k) && typeof k.public_key === 'string') keys.push(k.public_key);
  }
  return keys;
}

export function checkThirdPartyInvite(ctx: AuthContext, tpi: JsonValue): AuthResult {
  const { pdu } = ctx;
  if (membershipInState(ctx, pdu.state_key!) === 'ban') return reject('target user is banned');
  const signed = isObject(tpi) ? tpi.signed : undefined;
  if (!isObject(signed)) return reject('third_party_invite has no signed property');
  if (typeof signed.mxid !== 'string' || typeof signed.token !== 'string') return reject('signed lacks mxid or token');
  if (signed.mxid !== pdu.state_key) return reject('signed.mxid does not match state_key');
  const inviteEv = ctx.state(M_THIRD_PARTY_INVITE, signed.token);
  if (!inviteEv) return reject('no m.room.third_party_invite for token');
  if (inviteEv.pdu.sender !== pdu.sender) return reject('sender does not match third party invite sender');
  const keys = thirdPartyInvitePublicKeys(isObject(inviteEv.pdu.content) ? inviteEv.pdu.content : {});
  const verify = ctx.opts.verifyThirdPartyInvite ?? verifySignedByAnyKey;
  return verify(signed, keys) ? ALLOW : reject('no signature in signed matches a public key of the third-party invite');
}
