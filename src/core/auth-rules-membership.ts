/**
 * The rules for `m.room.member` events, one function per membership: join
 * (with the creator's first join, invite-only, restricted and public rooms),
 * invite, leave (and kick, unban), ban and knock, after the v8+ check that a
 * restricted join is signed by its authorising server.
 */

import type { JsonValue } from './types.js';
import {
  ALLOW,
  domainOf,
  isStateEvent,
  joinRuleInState,
  levelOf,
  membershipInState,
  prevEventIds,
  reject,
  type AuthContext,
  type AuthResult,
} from './auth-rules-context.js';
import { checkThirdPartyInvite } from './auth-rules-third-party-invite.js';

/** "If the only previous event is an m.room.create and the state_key is the creator". */
function isCreatorsFirstJoin(ctx: AuthContext): boolean {
  const prev = prevEventIds(ctx.pdu);
  if (prev.length !== 1 || prev[0] !== ctx.create.eventId) return false;
  const create = ctx.create.pdu;
  const creator = ctx.version.implicitRoomCreator ? create.sender : create.content?.creator;
  return ctx.pdu.state_key === creator;
}

function joinRuleAdmitsInvitees(ctx: AuthContext, rule: string | undefined): boolean {
  return rule === 'invite' || (ctx.version.knockingSupported && rule === 'knock');
}

function isRestrictedRule(ctx: AuthContext, rule: string | undefined): boolean {
  return (ctx.version.restrictedJoinRuleSupported && rule === 'restricted')
    || (ctx.version.knockRestrictedJoinRuleSupported && rule === 'knock_restricted');
}

function isKnockableRule(ctx: AuthContext, rule: string | undefined): boolean {
  return rule === 'knock' || (ctx.version.knockRestrictedJoinRuleSupported && rule === 'knock_restricted');
}

function checkJoin(ctx: AuthContext): AuthResult {
  const { pdu } = ctx;
  if (isCreatorsFirstJoin(ctx)) return ALLOW;
  if (pdu.sender !== pdu.state_key) return reject('cannot join on behalf of another user');
  const current = membershipInState(ctx, pdu.sender);
  if (current === 'ban') return reject('sender is banned');
  const rule = joinRuleInState(ctx);
  if (joinRuleAdmitsInvitees(ctx, rule)) {
    return current === 'invite' || current === 'join' ? ALLOW : reject(`join rule is ${rule} and sender is not invited`);
  }
  if (isRestrictedRule(ctx, rule)) {
    if (current === 'invite' || current === 'join') return ALLOW;
    return checkRestrictedJoinAuthoriser(ctx);
  }
  if (rule === 'public') return ALLOW;
  return reject(`join rule ${String(rule)} does not allow joining`);
}

/** The authorising user must be joined and able to invite. */
function checkRestrictedJoinAuthoriser(ctx: AuthContext): AuthResult {
  const via = ctx.pdu.content?.join_authorised_via_users_server;
  if (typeof via !== 'string') return reject('restricted join without join_authorised_via_users_server');
  if (membershipInState(ctx, via) !== 'join') return reject('join_authorised_via_users_server is not joined');
  if (levelOf(ctx, via) < ctx.pl.invite) return reject('join_authorised_via_users_server cannot invite');
  return ALLOW;
}

/** v8+ rule: the member event must be signed by the authorising user's server. */
function isSignedByAuthoriser(ctx: AuthContext, via: JsonValue): boolean {
  if (typeof via !== 'string') return false;
  const server = domainOf(via);
  if (server === undefined) return false;
  if (ctx.opts.isSignedBy) return ctx.opts.isSignedBy(ctx.pdu, server);
  const sigs = ctx.pdu.signatures?.[server];
  return typeof sigs === 'object' && sigs !== null && Object.keys(sigs).length > 0;
}

function checkInvite(ctx: AuthContext): AuthResult {
  const { pdu } = ctx;
  const tpi = pdu.content?.third_party_invite;
  if (tpi !== undefined) return checkThirdPartyInvite(ctx, tpi);
  if (membershipInState(ctx, pdu.sender) !== 'join') return reject('inviter is not joined');
  const target = membershipInState(ctx, pdu.state_key!);
  if (target === 'join' || target === 'ban') return reject(`target is already ${target}`);
  return levelOf(ctx, pdu.sender) >= ctx.pl.invite ? ALLOW : reject('sender is below the invite level');
}

function checkLeave(ctx: AuthContext): AuthResult {
  const { pdu } = ctx;
  const target = membershipInState(ctx, pdu.state_key!);
  if (pdu.sender === pdu.state_key) {
    const ok = target === 'invite' || target === 'join' || (ctx.version.knockingSupported && target === 'knock');
    return ok ? ALLOW : reject(`cannot leave from membership ${String(target)}`);
  }
  if (membershipInState(ctx, pdu.sender) !== 'join') return reject('sender is not joined');
  const senderLevel = levelOf(ctx, pdu.sender);
  if (target === 'ban' && senderLevel < ctx.pl.ban) return reject('sender is below the ban level and cannot unban');
  if (senderLevel >= ctx.pl.kick && levelOf(ctx, pdu.state_key!) < senderLevel) return ALLOW;
  return reject('sender cannot kick the target');
}

function checkBan(ctx: AuthContext): AuthResult {
  const { pdu } = ctx;
  if (membershipInState(ctx, pdu.sender) !== 'join') return reject('sender is not joined');
  const senderLevel = levelOf(ctx, pdu.sender);
  if (senderLevel >= ctx.pl.ban && levelOf(ctx, pdu.state_key!) < senderLevel) return ALLOW;
  return reject('sender cannot ban the target');
}

function checkKnock(ctx: AuthContext): AuthResult {
  const { pdu } = ctx;
  if (!isKnockableRule(ctx, joinRuleInState(ctx))) return reject('join rule does not allow knocking');
  if (pdu.sender !== pdu.state_key) return reject('cannot knock on behalf of another user');
  const current = membershipInState(ctx, pdu.sender);
  if (current === 'ban' || current === 'invite' || current === 'join') return reject(`cannot knock from ${current}`);
  return ALLOW;
}

export function checkMemberEvent(ctx: AuthContext): AuthResult {
  const { pdu, version } = ctx;
  const membership = pdu.content?.membership;
  if (!isStateEvent(pdu) || typeof membership !== 'string') return reject('member event lacks state_key or membership');
  if (version.restrictedJoinRuleSupported && pdu.content && 'join_authorised_via_users_server' in pdu.content) {
    if (!isSignedByAuthoriser(ctx, pdu.content.join_authorised_via_users_server!)) {
      return reject("not signed by join_authorised_via_users_server's server");
    }
  }
  switch (membership) {
    case 'join': return checkJoin(ctx);
    case 'invite': return checkInvite(ctx);
    case 'leave': return checkLeave(ctx);
    case 'ban': return checkBan(ctx);
    case 'knock': if (version.knockingSupported) return checkKnock(ctx); break;
  }
  return reject(`unknown membership ${membership}`);
}
