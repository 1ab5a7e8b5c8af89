import { stateKey, splitStateKey, type StateMap } from '../../core/types.js';
import type { StoredEvent } from '../events/stored-event.js';
import type { Membership } from '../service.js';
import type { GroupRef, MemberInfo, NewGroupPlan, RoomHead } from '../state/room-head.js';
import type { BuiltEvent } from './build-event.js';

/** Past this many deltas a new state group is written as a full snapshot, bounding read cost. */
export const MAX_DELTA_DEPTH = 50;

/**
 * Where an event goes in the room's stream: `new` events take the next
 * positions; `backfill` events (history older than what clients have seen)
 * take positions below every other; `none` is for events clients never see
 * (outliers, rejected and soft-failed events).
 */
export type StreamPlacement = 'new' | 'backfill' | 'none';

/** One event of a batch, ready to be written. */
export interface AppliedEvent {
  index: number;
  stored: StoredEvent;
  /** The groups holding the state before and after this event; null for outliers. */
  groupBefore: GroupRef | null;
  group: GroupRef | null;
  /** State groups this event creates (a snapshot of the state before it, and the state after it). */
  newGroups: NewGroupPlan[];
  /** Redaction to apply to a stored event in the same transaction. */
  redactionTarget?: string;
  depth: number;
  json: string;
  prevIds: string[];
  placement: StreamPlacement;
  /** For a client's send: the endpoint its transaction id belongs to. */
  txnEndpoint?: string;
  /** A state event that became the room's current value at its key when it was applied. */
  becameCurrent?: boolean;
}

const MEMBERSHIPS = new Set(['join', 'invite', 'leave', 'ban', 'knock']);

function str(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}

/** A member's entry for the head, when `pdu` is a valid membership event. */
export function memberInfoOf(eventId: string, pdu: StoredEvent['pdu']): MemberInfo | undefined {
  if (pdu.type !== 'm.room.member' || typeof pdu.state_key !== 'string' || !MEMBERSHIPS.has(String(pdu.content?.membership))) return undefined;
  return {
    membership: pdu.content.membership as Membership,
    eventId,
    sender: pdu.sender,
    displayName: str(pdu.content.displayname),
    avatarUrl: str(pdu.content.avatar_url),
  };
}

/**
 * A group for `state`: a delta on `parent` (entries may remove keys), or a
 * full snapshot when the chain is deep or there is no parent. `changedKey`:
 * the one key in which `state` differs from the parent's, when the caller
 * knows it (an appended state event), so the states need not be compared.
 */
export function planGroup(state: StateMap, parent: { ref: GroupRef; depth: number; state: StateMap } | null, changedKey?: string): NewGroupPlan {
  if (parent && parent.depth < MAX_DELTA_DEPTH) {
    if (changedKey !== undefined) return { prev: parent.ref, deltaDepth: parent.depth + 1, entries: [[...splitStateKey(changedKey), state.get(changedKey) ?? '']], state };
    const entries: Array<[string, string, string]> = [];
    for (const [k, id] of state) {
      if (parent.state.get(k) !== id) entries.push([...splitStateKey(k), id]);
    }
    for (const k of parent.state.keys()) if (!state.has(k)) entries.push([...splitStateKey(k), '']);
    return { prev: parent.ref, deltaDepth: parent.depth + 1, entries, state };
  }
  return { prev: null, deltaDepth: 0, entries: fullEntries(state), state };
}

export function groupDepthOf(ref: GroupRef | null, knownDepth: number): number {
  return ref !== null && 'plan' in ref ? ref.plan.deltaDepth : knownDepth;
}

/**
 * The head after a locally built, auth-checked event is appended to it, and
 * what must be written for it: the state before it (the head's group, or a
 * snapshot when no group equals the head's state, as after a resolved fork),
 * the state after it (a delta on that), the head's new members and forward
 * extremities.
 */
export function applyToHead(head: RoomHead, built: BuiltEvent, index: number, redactionTarget: string | undefined): { head: RoomHead; applied: AppliedEvent } {
  const pdu = built.pdu;
  const isState = typeof pdu.state_key === 'string';
  const key = isState ? stateKey(pdu.type, pdu.state_key!) : undefined;
  const replaces = key !== undefined ? (head.state.get(key) ?? null) : null;

  const stored: StoredEvent = {
    eventId: built.eventId,
    roomId: built.roomId,
    pdu,
    streamPos: null,
    stateGroup: null,
    stateGroupBefore: null,
    replacesState: replaces,
    redactedBy: null,
    rejectedReason: null,
    outlier: false,
    softFailed: false,
    senderDevice: built.spec.txn?.deviceId ?? null,
    txnId: built.spec.txn?.txnId ?? null,
    txnEndpoint: built.spec.txn?.endpoint ?? null,
  };

  const newGroups: NewGroupPlan[] = [];
  let before = head.group;
  let beforeDepth = head.groupDepth;
  if (before === null && head.state.size > 0) {
    const snapshot = planGroup(head.state, null);
    newGroups.push(snapshot);
    before = { plan: snapshot };
    beforeDepth = 0;
  }
  let state = head.state;
  let group = before;
  let groupDepth = beforeDepth;
  if (key !== undefined || group === null) {
    if (key !== undefined) {
      state = new Map(head.state);
      state.set(key, built.eventId);
    }
    const plan =
      before === null ? planGroup(state, null) : planGroup(state, { ref: before, depth: beforeDepth, state: head.state }, key);
    newGroups.push(plan);
    group = { plan };
    groupDepth = plan.deltaDepth;
  }

  let members = head.members;
  const info = isState ? memberInfoOf(built.eventId, pdu) : undefined;
  if (info) {
    const next = new Map(members);
    next.set(pdu.state_key!, info);
    members = next;
  }

  const prevIds = [...new Set(pdu.prev_events.map((p) => (typeof p === 'string' ? p : p[0])))];
  const extremities = head.extremities.filter((e) => !prevIds.includes(e.eventId));
  extremities.push({ eventId: built.eventId, depth: pdu.depth });

  const next: RoomHead = {
    roomId: built.roomId,
    version: head.version,
    creator: head.creator,
    state,
    group,
    groupDepth,
    extremities,
    members,
    lastPos: head.lastPos,
    partial: head.partial,
  };
  return {
    head: next,
    applied: {
      index,
      stored,
      groupBefore: before,
      group: group!,
      newGroups,
      redactionTarget,
      depth: pdu.depth,
      json: built.json,
      prevIds,
      placement: 'new',
      txnEndpoint: built.spec.txn?.endpoint,
      becameCurrent: isState,
    },
  };
}

export function fullEntries(state: StateMap): Array<[string, string, string]> {
  const out: Array<[string, string, string]> = [];
  for (const [k, id] of state) {
    const [t, sk] = splitStateKey(k);
    out.push([t, sk, id]);
  }
  return out;
}
