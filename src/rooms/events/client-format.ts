import { redactClientEvent, type ClientEvent as RedactableEvent } from '../../core/redaction.js';
import type { RoomVersion } from '../../core/room-versions.js';
import type { ClientEvent, JsonObject } from '../../core/types.js';
import type { EventView } from './stored-event.js';

export interface Viewer {
  userId: string;
  deviceId?: string;
}

export interface FormatOptions {
  version: RoomVersion;
  now: number;
  viewer?: Viewer;
  /** The state event this one replaced (for `prev_content`). */
  replaced?: EventView;
  /** The redaction that redacted this event, when it is redacted. */
  redaction?: EventView;
  /** The viewer's membership at the event (`unsigned.membership`). */
  membership?: string;
  /** Bundled aggregations of the event's children (`unsigned["m.relations"]`). */
  relations?: JsonObject;
  /** Without `room_id`, as /sync serves events (ClientEventWithoutRoomID). */
  withoutRoomId?: boolean;
}

/** The client-facing form without `unsigned` (what push rules evaluate); `withRoomId` false leaves out `room_id`. */
export function bareClientEvent(ev: EventView, withRoomId = true): ClientEvent {
  const pdu = ev.pdu;
  const out: ClientEvent = withRoomId
    ? { event_id: ev.eventId, room_id: ev.roomId, sender: pdu.sender, type: pdu.type, content: pdu.content, origin_server_ts: pdu.origin_server_ts }
    : { event_id: ev.eventId, sender: pdu.sender, type: pdu.type, content: pdu.content, origin_server_ts: pdu.origin_server_ts };
  if (typeof pdu.state_key === 'string') out.state_key = pdu.state_key;
  if (pdu.type === 'm.room.redaction') {
    // Older clients read `redacts` at the top level in every room version.
    const r = typeof pdu.redacts === 'string' ? pdu.redacts : pdu.content?.redacts;
    if (typeof r === 'string') out.redacts = r;
  }
  return out;
}

function prunedContent(ev: EventView, version: RoomVersion): JsonObject {
  if (ev.redactedBy === null) return ev.pdu.content;
  return redactClientEvent(bareClientEvent(ev) as RedactableEvent, version).content;
}

/**
 * An event as the Client-Server API serves it: `unsigned.age`,
 * `transaction_id` for the device that sent it, `prev_content` for state
 * events, and the pruned content plus `redacted_because` once redacted.
 * Content objects are shared with the event cache: treat them as read-only.
 */
export function toClientEvent(ev: EventView, o: FormatOptions): ClientEvent {
  let out = bareClientEvent(ev, o.withoutRoomId !== true);
  const unsigned: JsonObject = { age: Math.max(0, o.now - ev.pdu.origin_server_ts) };
  if (ev.txnEndpoint === 'delayed') {
    // MSC4140: the delay id, shown to the sender only; no client sent a transaction for it.
    if (o.viewer && o.viewer.userId === ev.pdu.sender && ev.txnId !== null) unsigned['org.matrix.msc4140.delay_id'] = ev.txnId;
  } else if (o.viewer && ev.txnId !== null && o.viewer.userId === ev.pdu.sender && o.viewer.deviceId !== undefined && o.viewer.deviceId === ev.senderDevice) {
    unsigned.transaction_id = ev.txnId;
  }
  if (ev.replacesState !== null && typeof ev.pdu.state_key === 'string') {
    unsigned.replaces_state = ev.replacesState;
    if (o.replaced) {
      unsigned.prev_content = prunedContent(o.replaced, o.version);
      unsigned.prev_sender = o.replaced.pdu.sender;
    }
  }
  if (o.membership !== undefined) unsigned.membership = o.membership;
  if (o.relations !== undefined) unsigned['m.relations'] = o.relations;
  if (ev.redactedBy !== null) {
    out = redactClientEvent(out as RedactableEvent, o.version) as ClientEvent;
    if (o.redaction) {
      unsigned.redacted_because = toClientEvent(o.redaction, { version: o.version, now: o.now }) as unknown as JsonObject;
    }
  }
  out.unsigned = unsigned;
  return out;
}
