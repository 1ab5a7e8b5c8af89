/**
 * What the rooms pipeline is given of events made elsewhere (a batch, checked for format,
 * signatures and hashes by the inbound path) and what it answers for each: the shapes shared by
 * the inbound path, the pipeline and the planner (apply-received.ts).
 */
import type { RoomVersion } from '../../core/room-versions.js';
import type { StateMap } from '../../core/types.js';
import type { CheckedPdu } from '../inbound/check-received.js';
import type { ChainOverlay } from '../state/auth-chain-index.js';
import type { RoomHead } from '../state/room-head.js';
import type { PartialState } from '../store/partial-state-table.js';
import type { AppliedEvent } from './apply-event.js';

/** What became of one received event. */
export type ReceivedStatus =
  /** Stored; clients see it (at the end of the timeline, or in its place in older history). */
  | 'accepted'
  /** Stored; valid by its own history but not by the room's current state, so clients never see it. */
  | 'soft_failed'
  /** Stored with the reason; never served, never built upon. */
  | 'rejected'
  /** Stored without state (an auth or state event of another event). */
  | 'outlier'
  /** Already stored: nothing done. */
  | 'duplicate'
  /** Not stored: events it needs are unknown here; the caller fetches them (or their state) and tries again. */
  | 'missing'
  /** Not stored: invalid in a way only the stored graph shows (a prev event in another room). */
  | 'dropped';

export interface ReceivedResult {
  eventId: string;
  status: ReceivedStatus;
  reason?: string;
  /** For `missing`: the events to fetch. */
  missing?: string[];
}


export interface ReceivedBatch {
  /** Events known without their state (auth chains, state of other events, invites): in auth order. */
  outliers: CheckedPdu[];
  /** Timeline events: in topological order (prev and auth events first). */
  events: CheckedPdu[];
  /**
   * The state before an event whose prev events are not all here (a gap the
   * caller could not fill): as the sending server reported it, its events
   * stored already or among the outliers.
   */
  stateBefore?: Map<string, StateMap>;
  /** The room is new here: the batch starts with its m.room.create event (or holds out-of-band memberships only). */
  newRoom?: { version: RoomVersion; creator: string };
  /**
   * The events are memberships known only on another server's word while no user of this server
   * is in the room (an invite signed here, a knock or leave a resident server took): stored
   * without auth or state checks, see `addOutOfBand`.
   */
  outOfBand?: boolean;
  /**
   * The batch is a join whose `stateBefore` the resident server sent without most members
   * (send_join with `omit_members`): the room keeps partial state from this join on.
   */
  partialState?: PartialState;
}

export interface ReceivedPlan {
  head: RoomHead;
  applied: AppliedEvent[];
  results: ReceivedResult[];
  backward: { added: string[]; removed: string[] };
  /** Stored outliers the batch stores again as timeline events (their rows are replaced). */
  upgradedOutliers: string[];
  /** The current-state keys the batch may have changed; null when resolution may have changed any. */
  touched: ReadonlySet<string> | null;
  /** The batch's state events placed on the auth chain index while planning. */
  chains: ChainOverlay;
}
