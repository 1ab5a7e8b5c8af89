import { stateKey, splitStateKey, type StateMap } from '../../core/types.js';
import type { StoredEvent } from '../events/stored-event.js';
import type { Membership } from '../service.js';
import type { GroupRef, MemberInfo, RoomHead } from '../state/room-head.js';
import type { BuiltEvent } from './build-event.js';

/** Past this many deltas a new state group is written as a full snapshot, bounding read cost. */
export const MAX_DELTA_DEPTH = 50;

export interface NewGroupPlan {
  prev: GroupRef | null;
  deltaDepth: number;
  /** [type, state_key, event_id] rows: the full state for a snapshot, the change for a delta. */
  entries: Array<[string, string, string]>;
  /** The full state the group represents (cached after commit). */
  state: StateMap;
}

/** One event of a batch, ready to be written. */
export interface AppliedEvent {
  index: number;
  stored: StoredEvent;
  /** The group holding the state after this event. */
  group: GroupRef;
  newGroup?: NewGroupPlan;
  member?: { userId: string; membership: Membership; displayName: string | null; avatarUrl: string | null; sender: string };
  /** Redaction to apply to a stored event in the same transaction. */
  redactionTarget?: string;
  depth: number;
  json: string;
}

const MEMBERSHIPS = new Set(['join', 'invite', 'leave', 'ban', 'knock']);

function str(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}

/**
 * The head after `built` (auth-checked) is appended, and what must be written
 * for it: the state group (a delta on the parent, or a full snapshot when the
 * chain is deep or there is no parent), the membership row, the new forward
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
    replacesState: replaces,
    redactedBy: null,
    rejectedReason: null,
    outlier: false,
    softFailed: false,
    senderDevice: built.spec.txn?.deviceId ?? null,
    txnId: built.spec.txn?.txnId ?? null,
  };

  let state = head.state;
  let group = head.group;
  let groupDepth = head.groupDepth;
  let newGroup: NewGroupPlan | undefined;
  if (key !== undefined) {
    state = new Map(head.state);
    state.set(key, built.eventId);
    if (group !== null && groupDepth < MAX_DELTA_DEPTH) {
      newGroup = { prev: group, deltaDepth: groupDepth + 1, entries: [[pdu.type, pdu.state_key!, built.eventId]], state };
    } else {
      newGroup = { prev: null, deltaDepth: 0, entries: fullEntries(state), state };
    }
  } else if (group === null) {
    newGroup = { prev: null, deltaDepth: 0, entries: fullEntries(state), state };
  }
  if (newGroup) {
    group = { batchIndex: index };
    groupDepth = newGroup.deltaDepth;
  }

  let members = head.members;
  let member: AppliedEvent['member'];
  if (pdu.type === 'm.room.member' && isState && MEMBERSHIPS.has(String(pdu.content?.membership))) {
    const membership = pdu.content.membership as Membership;
    const info: MemberInfo = {
      membership,
      eventId: built.eventId,
      displayName: str(pdu.content.displayname),
      avatarUrl: str(pdu.content.avatar_url),
    };
    const next = new Map(members);
    next.set(pdu.state_key!, info);
    members = next;
    member = { userId: pdu.state_key!, membership, displayName: info.displayName, avatarUrl: info.avatarUrl, sender: pdu.sender };
  }

  const prevIds = new Set(pdu.prev_events.map((p) => (typeof p === 'string' ? p : p[0])));
  const extremities = head.extremities.filter((e) => !prevIds.has(e.eventId));
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
  };
  return {
    head: next,
    applied: { index, stored, group: group!, newGroup, member, redactionTarget, depth: pdu.depth, json: built.json },
  };
}

function fullEntries(state: StateMap): Array<[string, string, string]> {
  const out: Array<[string, string, string]> = [];
  for (const [k, id] of state) {
    const [t, sk] = splitStateKey(k);
    out.push([t, sk, id]);
  }
  return out;
}
