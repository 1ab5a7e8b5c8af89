import type { Context } from '../../context.js';
import { authEventSelection, authStateFromEvents, checkAuth, type AuthResult } from '../../core/auth-rules.js';
import { encodeUnpaddedBase64 } from '../../core/base64.js';
import { CanonicalJsonError } from '../../core/canonical-json.js';
import { finaliseEvent, type EventDraft } from '../../core/event-format.js';
import { computeReferenceHash } from '../../core/hashes.js';
import { stateKey, type JsonObject, type Pdu } from '../../core/types.js';
import { badJson, MatrixError } from '../../http/errors.js';
import type { StoredEvent } from '../events/stored-event.js';
import type { TxnEndpoint } from '../store/events-table.js';
import type { RoomHead } from '../state/room-head.js';

/** What a local client (or the server on a user's behalf) asks to send. */
export interface EventSpec {
  type: string;
  /** Present for state events. */
  stateKey?: string;
  sender: string;
  content: JsonObject;
  /** For m.room.redaction: the event to redact (placed where the room version wants it). */
  redacts?: string;
  /** origin_server_ts when it must be a particular value (default: now). */
  ts?: number;
  /** The sending device's transaction (send idempotency, `unsigned.transaction_id`). */
  txn?: { deviceId: string; txnId: string; endpoint: TxnEndpoint };
}

export interface BuiltEvent {
  eventId: string;
  roomId: string;
  pdu: Pdu;
  /** The PDU as stored. */
  json: string;
  spec: EventSpec;
  /** The auth events, by (type, state_key) key, as loaded for the check. */
  authEvents: Map<string, StoredEvent>;
  auth: AuthResult;
}

export type EventLoader = (ids: string[]) => Promise<Map<string, StoredEvent>>;

/** Events may reference at most this many forward extremities. */
const MAX_PREV_EVENTS = 10;
/** Spec "Size limits": whole event 64 KiB; type and state_key 255 bytes. */
const MAX_EVENT_BYTES = 65536;
const MAX_KEY_BYTES = 255;

const CREATE_KEY = stateKey('m.room.create', '');
/** `\u0000` in JSON text that is an escape, not an escaped backslash followed by `u0000`. */
const ESCAPED_NUL = /(?<!\\)(?:\\\\)*\\u0000/;

/**
 * Builds a local event on top of the room head: prev_events are the forward
 * extremities, depth one more than the deepest, auth_events the selection
 * from the current state; then hashes, signs and auth-checks it against the
 * same state.
 */
export async function buildLocalEvent(ctx: Context, head: RoomHead, spec: EventSpec, load: EventLoader): Promise<BuiltEvent> {
  const version = head.version;
  if (Buffer.byteLength(spec.type) > MAX_KEY_BYTES) throw new MatrixError(400, 'M_INVALID_PARAM', 'Event type is longer than 255 bytes');
  if (spec.stateKey !== undefined && Buffer.byteLength(spec.stateKey) > MAX_KEY_BYTES) {
    throw new MatrixError(400, 'M_INVALID_PARAM', 'State key is longer than 255 bytes');
  }

  const prevs = [...head.extremities].sort((a, b) => b.depth - a.depth).slice(0, MAX_PREV_EVENTS);
  const depth = prevs.length === 0 ? 1 : Math.min(Number.MAX_SAFE_INTEGER, prevs[0]!.depth + 1);

  let content = spec.content;
  const draft: EventDraft = {
    room_id: head.roomId,
    sender: spec.sender,
    type: spec.type,
    content,
    origin_server_ts: spec.ts ?? ctx.now(),
    depth,
    prev_events: [],
    auth_events: [],
  };
  if (spec.stateKey !== undefined) draft.state_key = spec.stateKey;
  if (spec.redacts !== undefined) {
    if (version.redaction === 'v11') {
      content = { ...content, redacts: spec.redacts };
    } else {
      // Before v11 `redacts` is a top-level key; a client may have put it in content (room_send.yaml).
      const { redacts: _moved, ...rest } = content;
      void _moved;
      content = rest;
      draft.redacts = spec.redacts;
    }
    draft.content = content;
  }

  const selection = authEventSelection(draft as Pdu, version);
  const authIds: string[] = [];
  const wanted = new Set<string>();
  for (const [t, k] of selection) {
    const id = head.state.get(stateKey(t, k));
    if (id !== undefined) {
      authIds.push(id);
      wanted.add(id);
    }
  }
  const createId = head.state.get(CREATE_KEY);
  if (createId !== undefined) wanted.add(createId);
  for (const p of prevs) wanted.add(p.eventId);
  const loaded = await load([...wanted]);

  if (version.eventIdFormat === 'v1') {
    const ref = (id: string): [string, JsonObject] => {
      const ev = loaded.get(id);
      if (!ev) throw new Error(`event ${id} is missing`);
      return [id, { sha256: encodeUnpaddedBase64(computeReferenceHash(ev.pdu, version)) }];
    };
    draft.prev_events = prevs.map((p) => ref(p.eventId));
    draft.auth_events = authIds.map(ref);
  } else {
    draft.prev_events = prevs.map((p) => p.eventId);
    draft.auth_events = authIds;
  }

  let finalised;
  try {
    finalised = finaliseEvent(draft, version, ctx.serverName, ctx.signingKey);
  } catch (e) {
    if (e instanceof CanonicalJsonError) throw badJson(`Event content is not valid canonical JSON: ${e.message}`);
    throw e;
  }
  // JSON.stringify and canonical JSON differ only in key order and whitespace-free both: same byte length.
  const json = JSON.stringify(finalised.pdu);
  if (Buffer.byteLength(json) > MAX_EVENT_BYTES) throw new MatrixError(413, 'M_TOO_LARGE', 'Event is larger than 65536 bytes');
  // PostgreSQL text cannot hold NUL, and values such as a member's display name are copied into columns:
  // refused here, the one send fails instead of the database refusing the whole batch it was written in.
  if (json.includes('u0000') && ESCAPED_NUL.test(json)) throw badJson('Events must not contain NUL characters');

  const authEvents = new Map<string, StoredEvent>();
  for (const id of authIds) {
    const ev = loaded.get(id);
    if (ev) authEvents.set(stateKey(ev.pdu.type, ev.pdu.state_key ?? ''), ev);
  }
  const create = createId !== undefined ? loaded.get(createId) : undefined;
  const auth = checkAuth(
    { eventId: finalised.eventId, pdu: finalised.pdu },
    authStateFromEvents(authEvents.values()),
    version,
    create,
  );
  return { eventId: finalised.eventId, roomId: finalised.roomId, pdu: finalised.pdu, json, spec, authEvents, auth };
}
