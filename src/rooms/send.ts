import type { TxnEndpoint } from './store/events-table.js';
import { canonicalJson } from '../core/canonical-json.js';
import { isValidRoomAlias, serverNameOf } from '../core/ids.js';
import { userPowerLevel } from '../core/power-levels.js';
import { stateKey, type JsonObject } from '../core/types.js';
import { badJson, forbidden, invalidParam, inviteBlocked, MatrixError, userSuspended } from '../http/errors.js';
import type { Requester } from '../http/requester.js';
import { isServable } from './events/stored-event.js';
import { headPowerLevels } from './power.js';
import { removeGuestsIfClosed } from './guest-access.js';
import type { RoomsCore } from './room-core.js';

/** PUT /rooms/{roomId}/send/{eventType}/{txnId}. */
export async function sendMessage(
  core: RoomsCore,
  requester: Requester,
  roomId: string,
  type: string,
  txnId: string,
  content: JsonObject,
  endpoint: TxnEndpoint = 'send',
): Promise<{ event_id: string }> {
  if (type === 'm.room.redaction') {
    // room_send.yaml: redactions may be sent here in every room version.
    const redacts = content.redacts;
    if (typeof redacts !== 'string') throw badJson('m.room.redaction needs content.redacts');
    return redactEvent(core, requester, roomId, redacts, txnId, content, endpoint);
  }
  await core.requireHead(roomId);
  const txn = { deviceId: requester.deviceId, txnId, endpoint };
  const [ev] = await core.pipeline.submit(roomId, {
    txn: { sender: requester.userId, ...txn },
    // A refusal is answered only once the transaction id is looked up (Pipeline.runBatch): a retried send answers its event.
    plan: async () => {
      await core.sendRule?.(roomId, requester.userId, type, content);
      return { events: [{ type, sender: requester.userId, content, txn }] };
    },
  });
  return { event_id: ev!.eventId };
}

/**
 * m.room.canonical_alias (room_state.yaml): new aliases must be valid and,
 * when local, point at this room (M_BAD_ALIAS).
 */
async function checkCanonicalAlias(core: RoomsCore, roomId: string, content: JsonObject, previous: JsonObject | undefined): Promise<void> {
  const before = new Set<string>();
  if (previous) {
    if (typeof previous.alias === 'string') before.add(previous.alias);
    if (Array.isArray(previous.alt_aliases)) for (const a of previous.alt_aliases) if (typeof a === 'string') before.add(a);
  }
  const added: string[] = [];
  if (content.alias !== undefined && content.alias !== null) {
    if (typeof content.alias !== 'string' || !isValidRoomAlias(content.alias)) throw invalidParam('alias is not a valid room alias');
    if (!before.has(content.alias)) added.push(content.alias);
  }
  if (content.alt_aliases !== undefined) {
    if (!Array.isArray(content.alt_aliases)) throw invalidParam('alt_aliases must be a list');
    for (const a of content.alt_aliases) {
      if (typeof a !== 'string' || !isValidRoomAlias(a)) throw invalidParam(`alt_aliases entry ${JSON.stringify(a)} is not a valid room alias`);
      if (!before.has(a)) added.push(a);
    }
  }
  for (const alias of added) {
    if (serverNameOf(alias) !== core.ctx.serverName) continue;
    const resolved = await core.ctx.services.directory.resolveAlias(alias);
    if (resolved?.roomId !== roomId) throw new MatrixError(400, 'M_BAD_ALIAS', `Alias ${alias} does not point to this room`);
  }
}

/** PUT /rooms/{roomId}/state/{eventType}/{stateKey}: a state event; an unchanged one answers the existing event id. */
export async function sendState(
  core: RoomsCore,
  requester: Requester,
  roomId: string,
  type: string,
  key: string,
  content: JsonObject,
  /** A delayed event's transaction (MSC4140): a retry after a crash answers the event already sent. */
  transaction?: { txnId: string; endpoint: TxnEndpoint },
): Promise<{ event_id: string }> {
  const head0 = await core.requireHead(roomId);
  if (type === 'm.room.member' && content.membership === 'invite' && serverNameOf(key) === core.ctx.serverName && (await core.ctx.services.sync.accountData.blocksInvites(key))) {
    throw inviteBlocked(key);
  }
  const txn = transaction && { deviceId: requester.deviceId, ...transaction };
  if (type === 'm.room.canonical_alias') {
    const prevId = head0.state.get(stateKey(type, key));
    const prev = prevId ? await core.events.get(prevId) : undefined;
    await checkCanonicalAlias(core, roomId, content, prev?.pdu.content);
  }
  const contentJson = canonicalJsonOrBad(content);
  const sent = await core.pipeline.submit<{ event_id: string }>(roomId, {
    ...(txn ? { txn: { sender: requester.userId, ...txn } } : {}),
    plan: async (head) => {
      const existingId = head.state.get(stateKey(type, key));
      if (existingId) {
        const existing = await core.events.get(existingId);
        if (
          existing &&
          existing.redactedBy === null &&
          existing.pdu.sender === requester.userId &&
          canonicalJsonOrBad(existing.pdu.content) === contentJson
        ) {
          return { done: { event_id: existingId } };
        }
      }
      return {
        events: [{ type, stateKey: key, sender: requester.userId, content, ...(txn ? { txn } : {}) }],
        finish: (p) => ({ event_id: p[0]!.eventId }),
      };
    },
  });
  if (type === 'm.room.guest_access' && key === '') await removeGuestsIfClosed(core, roomId);
  return sent;
}

function canonicalJsonOrBad(v: JsonObject): string {
  try {
    return canonicalJson(v);
  } catch (e) {
    throw badJson(`Content is not valid canonical JSON: ${(e as Error).message}`);
  }
}

/**
 * PUT /rooms/{roomId}/redact/{eventId}/{txnId} (redaction.yaml): own events
 * at the m.room.redaction level, others' from the `redact` level; server
 * admins may redact their local users' events.
 */
export async function redactEvent(
  core: RoomsCore,
  requester: Requester,
  roomId: string,
  eventId: string,
  txnId: string,
  body: JsonObject,
  endpoint: TxnEndpoint = 'redact',
): Promise<{ event_id: string }> {
  await core.requireHead(roomId);
  const content: JsonObject = {};
  if (typeof body.reason === 'string') content.reason = body.reason;
  for (const [k, v] of Object.entries(body)) if (k !== 'reason' && k !== 'redacts') content[k] = v;
  const txn = { deviceId: requester.deviceId, txnId, endpoint };
  const [ev] = await core.pipeline.submit(roomId, {
    txn: { sender: requester.userId, ...txn },
    plan: async (head) => {
      const target = await core.events.get(eventId);
      if (target && target.roomId === roomId && isServable(target) && target.pdu.sender !== requester.userId) {
        // Suspended users may redact only their own events (client-server-api "Account suspension").
        if (requester.suspended) throw userSuspended();
        const pl = await headPowerLevels(core, head);
        const adminOverLocal = requester.isAdmin && serverNameOf(target.pdu.sender) === core.ctx.serverName;
        if (userPowerLevel(pl, requester.userId) < pl.redact && !adminOverLocal) {
          throw forbidden('You may only redact your own events');
        }
      }
      return { events: [{ type: 'm.room.redaction', sender: requester.userId, content, redacts: eventId, txn }] };
    },
  });
  return { event_id: ev!.eventId };
}
