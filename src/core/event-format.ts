/**
 * Turning a drafted event into a signed PDU, and checking the signatures of
 * received ones (spec: server-server API, "Signing Events"; rooms/v12 for
 * room ids derived from the create event).
 */

import { randomBytes } from 'node:crypto';
import { computeContentHash, computeEventIdFromRedactedJson, redactedCanonicalJson } from './hashes.js';
import { serverNameOf } from './ids.js';
import type { RoomVersion } from './room-versions.js';
import { signString, verifyString, withSignature, type SigningKey } from './signing.js';
import type { Pdu } from './types.js';

/**
 * A PDU before hashing and signing. (Plain Omit<Pdu, ...> would collapse to
 * the index signature and lose every named field.)
 */
export type EventDraft = {
  [K in keyof Pdu as K extends 'hashes' | 'signatures' ? never : K]: Pdu[K];
};

export interface FinalisedEvent {
  eventId: string;
  pdu: Pdu;
  roomId: string;
}

/** Returns the server-side public key for (server, keyId), or undefined if unknown or expired. */
export type KeyLookup = (serverName: string, keyId: string) => Uint8Array | undefined;

export interface SignatureCheck {
  ok: boolean;
  reason?: string;
}

const ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

/** 18 alphanumerics (~107 bits) for the opaque part of v1/v2 event ids. */
function defaultRandomId(): string {
  let out = '';
  while (out.length < 18) {
    for (const b of randomBytes(24)) {
      // Rejecting the top bytes keeps every character equally likely.
      if (b < 248 && out.length < 18) out += ID_ALPHABET[b % 62];
    }
  }
  return out;
}

function isV12Create(type: string, version: RoomVersion): boolean {
  return version.roomIdIsCreateEventHash && type === 'm.room.create';
}

/**
 * Hashes, signs and identifies a drafted event. The draft is not modified.
 * v1/v2 events get `event_id` (kept if the draft has one); later versions
 * never carry it. A v12+ m.room.create loses `room_id`: the room id is made
 * from its own reference hash. Throws CanonicalJsonError if the draft has no
 * canonical form (e.g. a float in content).
 */
export function finaliseEvent(
  draft: EventDraft,
  version: RoomVersion,
  serverName: string,
  key: SigningKey,
  randomId: () => string = defaultRandomId,
): FinalisedEvent {
  const createsRoomId = isV12Create(draft.type, version);
  // Copied key by key rather than spread and `delete`d: deleting turns the object into a slow
  // dictionary, and every encoder after this walks it.
  const pdu: Record<string, unknown> = {};
  const src = draft as Record<string, unknown>;
  for (const k in src) {
    if (k === 'hashes' || k === 'signatures' || k === 'event_id' || (createsRoomId && k === 'room_id')) continue;
    if (Object.hasOwn(src, k)) pdu[k] = src[k];
  }
  if (version.eventIdFormat === 'v1') {
    pdu['event_id'] = typeof src['event_id'] === 'string' ? src['event_id'] : `$${randomId()}:${serverName}`;
  }

  const event = pdu as Pdu;
  event.hashes = { sha256: computeContentHash(event) };
  // The signature covers the redacted form so that it survives redaction; the
  // reference hash covers the same bytes (signatures are left out of both).
  const redacted = redactedCanonicalJson(event, version);
  event.signatures = { [serverName]: { [key.keyId]: signString(redacted, key) } };

  const eventId = computeEventIdFromRedactedJson(event, version, redacted);
  const roomId = createsRoomId ? '!' + eventId.slice(1) : event.room_id;
  return { eventId, pdu: event, roomId };
}

/**
 * A copy of an already hashed event with one more server's signature, e.g.
 * the resident server countersigning a join or an invite.
 */
export function addEventSignature(pdu: Pdu, version: RoomVersion, serverName: string, key: SigningKey): Pdu {
  return withSignature(pdu, serverName, key.keyId, signString(redactedCanonicalJson(pdu, version), key));
}

/**
 * Checks `server`'s signatures on the event against the canonical redacted
 * form `json`. Signatures under unknown algorithms or unknown/expired keys are
 * skipped, but at least one must be checkable and every checkable one valid.
 */
function checkServer(pdu: Pdu, server: string, json: string, keyLookup: KeyLookup): string | undefined {
  const sigs = pdu.signatures as unknown;
  const byServer = typeof sigs === 'object' && sigs !== null ? (sigs as Record<string, unknown>)[server] : undefined;
  if (typeof byServer !== 'object' || byServer === null || Array.isArray(byServer)) {
    return `not signed by ${server}`;
  }
  let checked = 0;
  for (const [keyId, sig] of Object.entries(byServer as Record<string, unknown>)) {
    if (!keyId.startsWith('ed25519:')) continue;
    const publicKey = keyLookup(server, keyId);
    if (publicKey === undefined) continue;
    if (typeof sig !== 'string' || !verifyString(json, sig, publicKey)) {
      return `invalid signature from ${server} with ${keyId}`;
    }
    checked++;
  }
  return checked === 0 ? `no known key for the signatures of ${server}` : undefined;
}

function isThirdPartyInvite(pdu: Pdu): boolean {
  const c = pdu.content as Record<string, unknown> | undefined;
  return pdu.type === 'm.room.member' && c?.['membership'] === 'invite'
    && typeof c['third_party_invite'] === 'object' && c['third_party_invite'] !== null;
}

/**
 * Whether the event is validly signed by `server` (over its redacted form).
 * For checks beyond the originating server, e.g. the authorising server of a
 * restricted join.
 */
export function isEventSignedBy(pdu: Pdu, version: RoomVersion, server: string, keyLookup: KeyLookup): boolean {
  let json: string;
  try {
    json = redactedCanonicalJson(pdu, version);
  } catch {
    return false;
  }
  return checkServer(pdu, server, json, keyLookup) === undefined;
}

/**
 * Signature check on receipt of a PDU (spec: "Validating hashes and
 * signatures on received events"): the sender's server must have signed it,
 * and in v1/v2 also the server named in the event id. A third-party invite
 * may be sent by a server other than the sender's, so for it any one server's
 * valid signature is enough; the auth rules check the invite's own proof.
 * The content hash is a separate step (checkContentHash).
 */
export function verifyEventSignatures(pdu: Pdu, version: RoomVersion, keyLookup: KeyLookup): SignatureCheck {
  let json: string;
  try {
    json = redactedCanonicalJson(pdu, version);
  } catch {
    return { ok: false, reason: 'event has no canonical JSON form' };
  }

  if (isThirdPartyInvite(pdu)) {
    const sigs = pdu.signatures as unknown;
    const servers = typeof sigs === 'object' && sigs !== null ? Object.keys(sigs) : [];
    for (const server of servers) {
      if (checkServer(pdu, server, json, keyLookup) === undefined) return { ok: true };
    }
    return { ok: false, reason: 'third-party invite carries no valid server signature' };
  }

  const required: string[] = [];
  const senderServer = typeof pdu.sender === 'string' ? serverNameOf(pdu.sender) : undefined;
  if (senderServer === undefined || senderServer === '') return { ok: false, reason: 'sender has no server name' };
  required.push(senderServer);
  if (version.eventIdFormat === 'v1') {
    const idServer = typeof pdu.event_id === 'string' ? serverNameOf(pdu.event_id) : undefined;
    if (idServer === undefined || idServer === '') return { ok: false, reason: 'event id has no server name' };
    if (idServer !== senderServer) required.push(idServer);
  }

  for (const server of required) {
    const reason = checkServer(pdu, server, json, keyLookup);
    if (reason !== undefined) return { ok: false, reason };
  }
  return { ok: true };
}
