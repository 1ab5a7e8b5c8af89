import type { EventWithId, Pdu } from '../../core/types.js';
import type { EventRow } from '../tables.js';

/** The fields of a PDU that its client form shows. */
export type ClientPdu = Pick<Pdu, 'sender' | 'type' | 'state_key' | 'content' | 'origin_server_ts' | 'redacts'>;

/**
 * What formatting an event for clients and history visibility read of it:
 * the client-facing fields of the PDU (no hashes, signatures or graph edges)
 * and what the server knows about the event. A StoredEvent is one; the
 * event store also keeps these alone, as they take a fraction of the memory.
 */
export interface EventView {
  eventId: string;
  roomId: string;
  pdu: ClientPdu;
  streamPos: number | null;
  /** The state after the event (before it, for rejected events); null for outliers. */
  stateGroup: number | null;
  /** The state before the event; null for outliers. */
  stateGroupBefore: number | null;
  replacesState: string | null;
  redactedBy: string | null;
  rejectedReason: string | null;
  outlier: boolean;
  softFailed: boolean;
  senderDevice: string | null;
  txnId: string | null;
  /** The endpoint `txnId` belongs to (`send`, `redact`, `delayed`). */
  txnEndpoint?: string | null;
}

/** An event as the pipeline and the read paths hold it: the PDU plus what the server knows about it. */
export interface StoredEvent extends EventWithId, EventView {
  pdu: Pdu;
}

/** The columns read to rebuild a StoredEvent. */
export const EVENT_COLUMNS = [
  'event_id',
  'room_id',
  'stream_pos',
  'json',
  'state_group',
  'state_group_before',
  'replaces_state',
  'redacted_by',
  'rejected_reason',
  'outlier',
  'soft_failed',
  'sender_device',
  'txn_id',
  'txn_endpoint',
] as const;

export type EventColumnsRow = Pick<EventRow, (typeof EVENT_COLUMNS)[number]>;

export function storedEventFromRow(row: EventColumnsRow, pdu?: Pdu): StoredEvent {
  return fromRow(row, row.room_id, pdu ?? (JSON.parse(row.json) as Pdu));
}

type RowFieldColumns =
  | 'event_id' | 'stream_pos' | 'state_group' | 'state_group_before' | 'replaces_state' | 'redacted_by'
  | 'rejected_reason' | 'outlier' | 'soft_failed' | 'sender_device' | 'txn_id' | 'txn_endpoint';

type Loose<T, K extends keyof T> = Omit<T, K> & { [P in K]: T[P] | string | boolean };

/**
 * A stored event or its client view from an events row, its room and its PDU
 * (numbers may come as strings). One object literal with every field in one
 * order: objects made by spreading a shared part and adding fields got a
 * hidden class of their own each once the copy went megamorphic, which cost
 * more memory than the event itself in the client event cache.
 */
export function fromRow<P extends ClientPdu>(
  row: Loose<Pick<EventRow, RowFieldColumns>, 'stream_pos' | 'state_group' | 'state_group_before' | 'outlier' | 'soft_failed'>,
  roomId: string,
  pdu: P,
): Omit<StoredEvent, 'pdu'> & { pdu: P } {
  return {
    eventId: row.event_id,
    roomId,
    pdu,
    streamPos: row.stream_pos === null ? null : Number(row.stream_pos),
    stateGroup: row.state_group === null ? null : Number(row.state_group),
    stateGroupBefore: row.state_group_before === null ? null : Number(row.state_group_before),
    replacesState: row.replaces_state,
    redactedBy: row.redacted_by,
    rejectedReason: row.rejected_reason,
    outlier: Number(row.outlier) === 1,
    softFailed: Number(row.soft_failed) === 1,
    senderDevice: row.sender_device,
    txnId: row.txn_id,
    txnEndpoint: row.txn_endpoint,
  };
}

/** The view of a stored event: its client-facing fields, sharing the content object. */
export function viewOf(ev: EventView): EventView {
  const pdu: ClientPdu = { sender: ev.pdu.sender, type: ev.pdu.type, content: ev.pdu.content, origin_server_ts: ev.pdu.origin_server_ts };
  if (typeof ev.pdu.state_key === 'string') pdu.state_key = ev.pdu.state_key;
  if (typeof ev.pdu.redacts === 'string') pdu.redacts = ev.pdu.redacts;
  return {
    eventId: ev.eventId,
    roomId: ev.roomId,
    pdu,
    streamPos: ev.streamPos,
    stateGroup: ev.stateGroup,
    stateGroupBefore: ev.stateGroupBefore,
    replacesState: ev.replacesState,
    redactedBy: ev.redactedBy,
    rejectedReason: ev.rejectedReason,
    outlier: ev.outlier,
    softFailed: ev.softFailed,
    senderDevice: ev.senderDevice,
    txnId: ev.txnId,
    txnEndpoint: ev.txnEndpoint ?? null,
  };
}

/** Whether clients may see the event at all (rejected and soft-failed events never reach them). */
export function isServable(ev: EventView): boolean {
  return ev.rejectedReason === null && !ev.softFailed && !ev.outlier;
}
