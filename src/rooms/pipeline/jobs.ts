/** What the event pipeline queues per room: local sends, received batches and partial-state fills. */
import type { StateMap } from '../../core/types.js';
import type { Tx } from '../../db/schema.js';
import type { TxnKey } from '../store/events-table.js';
import type { RoomHead } from '../state/room-head.js';
import type { AppliedEvent } from './apply-event.js';
import type { EventSpec } from './build-event.js';
import type { ReceivedBatch, ReceivedResult } from './received-batch.js';

export interface PersistedEvent {
  eventId: string;
  roomId: string;
  streamPos: number;
}

export type PlanResult<T> = { events: EventSpec[]; finish?: (persisted: PersistedEvent[]) => T } | { done: T };

export interface SubmitOptions<T> {
  /**
   * Decides what to send given the room's current head (runs serialised with
   * the room's other writes, so checks made here cannot race). May throw a
   * MatrixError to refuse.
   */
  plan(head: RoomHead): PlanResult<T> | Promise<PlanResult<T>>;
  /** A client send's idempotency key: an earlier event with it is answered instead of a new one. */
  txn?: TxnKey;
  /** How an auth-rule refusal is reported (default 403 M_FORBIDDEN). */
  authError?(reason: string): Error;
}

export interface Job {
  opts: SubmitOptions<unknown>;
  resolve(v: unknown): void;
  reject(e: unknown): void;
}

/** Events made elsewhere, checked for format, signatures and hashes by the inbound path. */
export interface ReceiveJob {
  received: ReceivedBatch;
  resolve(v: ReceivedResult[]): void;
  reject(e: unknown): void;
}

/** The full state before a partial-state join, to fill in (fill-partial-state.ts). */
export interface FillJob {
  fill: { full: StateMap; fence?: (trx: Tx) => Promise<void> };
  resolve(v: boolean): void;
  reject(e: unknown): void;
}

export interface AcceptedJob {
  job: Job;
  events: AppliedEvent[];
  finish?: (persisted: PersistedEvent[]) => unknown;
  /** Same-batch duplicate of a txn: resolves with the other job's events. */
  sameAs?: AcceptedJob;
  /** A job that needed no event: its answer. */
  done?: { value: unknown };
}
