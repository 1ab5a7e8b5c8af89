import type { EventWithId, Pdu } from '../../core/types.js';
import type { EventRow } from '../tables.js';

/** An event as the pipeline and the read paths hold it: the PDU plus what the server knows about it. */
export interface StoredEvent extends EventWithId {
  roomId: string;
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
  return {
    eventId: row.event_id,
    roomId: row.room_id,
    pdu: pdu ?? (JSON.parse(row.json) as Pdu),
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

/** Whether clients may see the event at all (rejected and soft-failed events never reach them). */
export function isServable(ev: StoredEvent): boolean {
  return ev.rejectedReason === null && !ev.softFailed && !ev.outlier;
}
