import type { Logger } from 'pino';
import { authEventIds, prevEventIds } from '../../core/auth-rules.js';
import type { JsonValue, StateMap, StrippedStateEvent } from '../../core/types.js';
import { getRoomVersion } from '../../core/room-versions.js';
import type { ReceivedBatch, ReceivedResult } from '../pipeline/received-batch.js';
import type { EventPipeline } from '../pipeline/pipeline.js';
import { STRIPPED_HINTS_KEY } from '../stripped-hints.js';
import type { RoomHeads } from '../state/room-head.js';
import type { PartialState } from '../store/partial-state-table.js';
import { checkReceived, type CheckedPdu } from './check-received.js';
import type { KeyRing } from './key-ring.js';

/** What a sending server hands over for one room. */
export interface InboundBatch {
  /** Timeline events, in any order. */
  pdus: unknown[];
  /** Events to store without state: the auth chains and state events that go with `pdus`, invites. */
  outliers?: unknown[];
  /**
   * The state before an event whose prev events could not be fetched (from
   * the sending server's /state_ids): event id to room state. The state's
   * events must be stored already or among `outliers`.
   */
  stateBefore?: Map<string, StateMap>;
  /** `pdus` are out-of-band memberships (ReceivedBatch.outOfBand): no outliers or state go with them. */
  outOfBand?: boolean;
  /** With `outOfBand`: the stripped state the other server gave, kept with the events for clients. */
  strippedState?: StrippedStateEvent[];
  /** A join whose `stateBefore` lacks members (send_join with `omit_members`): ReceivedBatch.partialState. */
  partialState?: PartialState;
}

/** The room is not known here and the batch cannot start it. */
export class UnknownRoomError extends Error {
  constructor(readonly roomId: string) {
    super(`room ${roomId} is not known to this server`);
  }
}

/** An event dropped by checks 1-2 (invalid, or badly signed): not stored at all. */
export interface DroppedResult {
  eventId?: string;
  status: 'dropped';
  reason: string;
}

export type InboundResult = ReceivedResult | DroppedResult;

/**
 * The one inbound path for events made elsewhere, which federation calls:
 * checks 1-3 on receipt (format, signatures, content hash) here, then
 * checks 4-6, state, extremities and persistence in the room's queue
 * (ReceivedEventPlanner), through the same persistence code as local sends.
 */
export class InboundEvents {
  constructor(
    private readonly heads: RoomHeads,
    private readonly pipeline: EventPipeline,
    private readonly keyRing: KeyRing,
    private readonly logger: Logger,
  ) {}

  /**
   * Checks and stores a batch of one room's events. A room unknown here is
   * created from the batch when it holds the room's m.room.create event and
   * `roomVersion` says which version to check it against.
   */
  async receive(roomId: string, batch: InboundBatch, opts: { roomVersion?: string; creator?: string } = {}): Promise<InboundResult[]> {
    const head = await this.heads.get(roomId);
    const version = head?.version ?? (opts.roomVersion !== undefined ? getRoomVersion(opts.roomVersion) : undefined);
    if (!version) throw new UnknownRoomError(roomId);
    const results: InboundResult[] = [];
    const check = async (raw: unknown[]): Promise<CheckedPdu[]> => {
      const out: CheckedPdu[] = [];
      for (const r of await Promise.all(raw.map((p) => checkReceived(p, version, roomId, this.keyRing)))) {
        if (r.ok) out.push(r.event);
        else {
          this.logger.warn({ roomId, eventId: r.eventId, reason: r.reason }, 'dropped a received event');
          results.push({ eventId: r.eventId, status: 'dropped', reason: r.reason });
        }
      }
      return out;
    };
    const outliers = causalOrder(await check(batch.outliers ?? []));
    let events = causalOrder(await check(batch.pdus));
    if (batch.outOfBand && batch.strippedState) {
      const hints = batch.strippedState as unknown as JsonValue;
      events = events.map((e) => ({ ...e, pdu: { ...e.pdu, unsigned: { [STRIPPED_HINTS_KEY]: hints } } }));
    }
    if (outliers.length + events.length === 0) return results;
    let newRoom: ReceivedBatch['newRoom'];
    if (!head) {
      const create = [...outliers, ...events].find((e) => e.pdu.type === 'm.room.create' && e.pdu.state_key === '');
      if (create) {
        const creator = !version.implicitRoomCreator && typeof create.pdu.content.creator === 'string' ? create.pdu.content.creator : create.pdu.sender;
        newRoom = { version, creator };
      } else if (batch.outOfBand) {
        // Known only from a membership: the creator as the inviting server reported it, if it did.
        newRoom = { version, creator: opts.creator ?? events[0]!.pdu.sender };
      } else {
        throw new UnknownRoomError(roomId);
      }
    }
    const received = await this.pipeline.receive(roomId, { outliers, events, stateBefore: batch.stateBefore, newRoom, outOfBand: batch.outOfBand, partialState: batch.partialState });
    for (const r of received) {
      if (r.status === 'rejected' || r.status === 'soft_failed') this.logger.info({ roomId, eventId: r.eventId, status: r.status, reason: r.reason }, 'received event not accepted');
    }
    return [...results, ...received];
  }
}

/**
 * The events in an order where each comes after those of the batch it names
 * as prev or auth events (lower depth first among the ready ones, then id,
 * so the order does not depend on how they arrived). A cycle, which no valid
 * history has, leaves the rest in depth order.
 */
export function causalOrder(given: CheckedPdu[]): CheckedPdu[] {
  // An event given twice (in both the state and the auth chain of a send_join answer) is placed
  // once: counting its parents twice would release its children before it.
  const byId = new Map(given.map((e) => [e.eventId, e]));
  const events = [...byId.values()];
  const waitingOn = new Map<string, number>();
  const children = new Map<string, string[]>();
  for (const e of events) {
    const parents = new Set([...prevEventIds(e.pdu), ...authEventIds(e.pdu)].filter((id) => byId.has(id) && id !== e.eventId));
    waitingOn.set(e.eventId, parents.size);
    for (const p of parents) {
      let l = children.get(p);
      if (!l) children.set(p, (l = []));
      l.push(e.eventId);
    }
  }
  const cmp = (a: CheckedPdu, b: CheckedPdu) => a.pdu.depth - b.pdu.depth || (a.eventId < b.eventId ? -1 : a.eventId > b.eventId ? 1 : 0);
  const ready = events.filter((e) => waitingOn.get(e.eventId) === 0).sort(cmp);
  const out: CheckedPdu[] = [];
  const done = new Set<string>();
  while (ready.length > 0) {
    const e = ready.shift()!;
    out.push(e);
    done.add(e.eventId);
    let added = false;
    for (const c of children.get(e.eventId) ?? []) {
      const n = waitingOn.get(c)! - 1;
      waitingOn.set(c, n);
      if (n === 0) {
        ready.push(byId.get(c)!);
        added = true;
      }
    }
    if (added) ready.sort(cmp);
  }
  if (out.length < events.length) out.push(...events.filter((e) => !done.has(e.eventId)).sort(cmp));
  return out;
}
