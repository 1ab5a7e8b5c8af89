/**
 * Content and reference hashes of events (spec: server-server API,
 * "Calculating the content hash / reference hash for an event") and event ids
 * derived from them (rooms/v3, v4 "Event IDs").
 */

import { Buffer } from 'node:buffer';
import { decodeBase64, encodeUnpaddedBase64, encodeUnpaddedBase64Url } from './base64.js';
import { canonicalJsonWithout } from './canonical-json.js';
import { redactedView } from './redaction.js';
import { sha256 } from './sha256.js';
import type { RoomVersion } from './room-versions.js';
import type { Pdu } from './types.js';

const NOT_IN_CONTENT_HASH: ReadonlySet<string> = new Set(['unsigned', 'signatures', 'hashes']);
// Redaction already drops unsigned and age_ts; listing them keeps this correct on its own.
const NOT_IN_REFERENCE_HASH: ReadonlySet<string> = new Set(['signatures', 'unsigned', 'age_ts']);

/** Unpadded Base64 sha256 of the full event; throws CanonicalJsonError if it has no canonical form. */
export function computeContentHash(pdu: Pdu): string {
  return encodeUnpaddedBase64(sha256(canonicalJsonWithout(pdu, NOT_IN_CONTENT_HASH)));
}

/**
 * Whether `hashes.sha256` matches the event. A mismatch means the event was
 * altered or we were sent a redacted copy (in which case the caller should
 * keep only the redacted form).
 */
export function checkContentHash(pdu: Pdu): boolean {
  const claimed = pdu.hashes?.sha256;
  if (typeof claimed !== 'string') return false;
  let expected: Buffer;
  let got: Uint8Array;
  try {
    expected = sha256(canonicalJsonWithout(pdu, NOT_IN_CONTENT_HASH));
    got = decodeBase64(claimed);
  } catch {
    return false;
  }
  return expected.equals(got);
}

/** The canonical JSON that the reference hash and event signatures both cover, less signatures. */
export function redactedCanonicalJson(pdu: Pdu, version: RoomVersion): string {
  return canonicalJsonWithout(redactedView(pdu, version), NOT_IN_REFERENCE_HASH);
}

export function computeReferenceHash(pdu: Pdu, version: RoomVersion): Uint8Array {
  const digest = sha256(redactedCanonicalJson(pdu, version));
  return new Uint8Array(digest.buffer, digest.byteOffset, digest.byteLength);
}

/**
 * The event's id: v1/v2 events carry it in `event_id`; from v3 it is `$` and
 * the reference hash (standard Base64 in v3, URL-safe from v4).
 */
export function computeEventId(pdu: Pdu, version: RoomVersion): string {
  if (version.eventIdFormat === 'v1') {
    if (typeof pdu.event_id !== 'string') throw new Error('room version 1/2 event has no event_id');
    return pdu.event_id;
  }
  return eventIdFromHash(computeReferenceHash(pdu, version), version);
}

/**
 * As computeEventId, given `redactedCanonicalJson(pdu, version)` already made
 * (signing covers the same bytes, so a new event needs it only once).
 */
export function computeEventIdFromRedactedJson(pdu: Pdu, version: RoomVersion, redactedJson: string): string {
  if (version.eventIdFormat === 'v1') return computeEventId(pdu, version);
  return eventIdFromHash(sha256(redactedJson), version);
}

function eventIdFromHash(hash: Uint8Array, version: RoomVersion): string {
  return '$' + (version.eventIdFormat === 'v3' ? encodeUnpaddedBase64(hash) : encodeUnpaddedBase64Url(hash));
}
