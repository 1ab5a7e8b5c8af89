/**
 * Check 1 on receipt of a PDU (spec: server-server API, "Checks performed on
 * receipt of a PDU"): is it a valid event of the room's version? Shape of
 * every key the version requires, the size limits of client-server API "Size
 * limits", and canonical JSON the version accepts. An invalid event is
 * dropped, not stored.
 */

import { canonicalJson, CanonicalJsonError } from './canonical-json.js';
import { computeEventId } from './hashes.js';
import { isValidEventId, isValidRoomId, isValidUserId, MAX_ID_BYTES } from './ids.js';
import type { RoomVersion } from './room-versions.js';
import type { Pdu } from './types.js';

export type PduCheck = { ok: true; pdu: Pdu; eventId: string } | { ok: false; reason: string };

const MAX_EVENT_BYTES = 65536;
const MAX_KEY_BYTES = 255;
/** Federation never needs more; servers cap these lists (Synapse: 20 prev, 10 auth) to bound the work one event can cause. */
const MAX_PREV_EVENTS = 20;
const MAX_AUTH_EVENTS = 10;
const MAX_DEPTH = Number.MAX_SAFE_INTEGER;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function bytes(s: string): number {
  return Buffer.byteLength(s);
}

function refsOk(list: unknown, version: RoomVersion, max: number): boolean {
  if (!Array.isArray(list) || list.length > max) return false;
  for (const r of list) {
    if (version.eventIdFormat === 'v1') {
      if (!Array.isArray(r) || r.length !== 2 || typeof r[0] !== 'string' || !isValidEventId(r[0], version) || !isObject(r[1])) return false;
    } else if (typeof r !== 'string' || !isValidEventId(r, version)) {
      return false;
    }
  }
  return true;
}

/**
 * Whether `raw` is a valid event of `version` in room `roomId`, and its id
 * (computed from the reference hash from v3 on). `unsigned` is removed: it is
 * not covered by signatures, and the receiver fills in its own.
 */
export function checkPduFormat(raw: unknown, version: RoomVersion, roomId: string): PduCheck {
  if (!isObject(raw)) return { ok: false, reason: 'event is not an object' };
  const { unsigned: _unsigned, ...rest } = raw;
  void _unsigned;
  const pdu = rest as Pdu;

  let json: string;
  try {
    json = canonicalJson(pdu);
  } catch (e) {
    if (e instanceof CanonicalJsonError) return { ok: false, reason: `no canonical JSON form: ${e.message}` };
    throw e;
  }
  if (bytes(json) > MAX_EVENT_BYTES) return { ok: false, reason: 'event is larger than 65536 bytes' };

  if (typeof pdu.type !== 'string' || bytes(pdu.type) > MAX_KEY_BYTES) return { ok: false, reason: 'bad type' };
  if (pdu.state_key !== undefined && (typeof pdu.state_key !== 'string' || bytes(pdu.state_key) > MAX_KEY_BYTES)) {
    return { ok: false, reason: 'bad state_key' };
  }
  if (typeof pdu.sender !== 'string' || bytes(pdu.sender) > MAX_ID_BYTES || !isValidUserId(pdu.sender, { historical: true })) {
    return { ok: false, reason: 'bad sender' };
  }
  const isV12Create = version.roomIdIsCreateEventHash && pdu.type === 'm.room.create';
  if (isV12Create) {
    if (pdu.room_id !== undefined) return { ok: false, reason: 'a v12 create event has no room_id' };
  } else if (pdu.room_id !== roomId || !isValidRoomId(pdu.room_id, version)) {
    return { ok: false, reason: 'room_id does not match the room' };
  }
  if (!isObject(pdu.content)) return { ok: false, reason: 'content is not an object' };
  if (!Number.isInteger(pdu.origin_server_ts)) return { ok: false, reason: 'bad origin_server_ts' };
  if (!Number.isInteger(pdu.depth) || pdu.depth < 0 || pdu.depth > MAX_DEPTH) return { ok: false, reason: 'bad depth' };
  if (!isObject(pdu.hashes) || typeof pdu.hashes.sha256 !== 'string') return { ok: false, reason: 'bad hashes' };
  if (!isObject(pdu.signatures)) return { ok: false, reason: 'bad signatures' };
  for (const sigs of Object.values(pdu.signatures)) {
    if (!isObject(sigs) || Object.values(sigs).some((s) => typeof s !== 'string')) return { ok: false, reason: 'bad signatures' };
  }
  if (!refsOk(pdu.prev_events, version, MAX_PREV_EVENTS)) return { ok: false, reason: 'bad prev_events' };
  if (!refsOk(pdu.auth_events, version, MAX_AUTH_EVENTS)) return { ok: false, reason: 'bad auth_events' };
  if (pdu.type === 'm.room.redaction' && version.redaction !== 'v11' && pdu.redacts !== undefined && typeof pdu.redacts !== 'string') {
    return { ok: false, reason: 'bad redacts' };
  }

  if (version.eventIdFormat === 'v1') {
    if (typeof pdu.event_id !== 'string' || !isValidEventId(pdu.event_id, version)) return { ok: false, reason: 'bad event_id' };
  } else if (pdu.event_id !== undefined) {
    return { ok: false, reason: 'event_id is not part of this room version’s format' };
  }
  const eventId = computeEventId(pdu, version);
  if (bytes(eventId) > MAX_ID_BYTES) return { ok: false, reason: 'event id is too long' };
  // rooms/v12: the room id is the create event's reference hash.
  if (isV12Create && roomId !== `!${eventId.slice(1)}`) return { ok: false, reason: 'create event does not match the room id' };
  return { ok: true, pdu, eventId };
}
