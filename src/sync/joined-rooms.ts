/**
 * The `rooms.join` entries of /sync (spec: "Syncing", GET /sync): each
 * joined room from its timeline and its state, rendered a batch of rooms at
 * a time with one read per batch for the timelines, one for the states and
 * one for the unread counts. Also keeps, per device, which members' events
 * lazy loading already sent (spec: "Lazy-loading room members").
 */
import { boundedCache } from '../bounded-cache.js';
import type { Context } from '../context.js';
import type { ClientEvent, JsonObject, JsonValue } from '../core/types.js';
import type { TimelineChunk } from '../rooms/service.js';
import { hasRoomName, roomSummary } from './room-summary.js';
import {
  applyState,
  asJson,
  fields,
  limitList,
  memberKeys,
  roomAccountData,
  visibleTimeline,
  withoutRoomId,
  type JoinPlan,
  type Run,
  type SyncParams,
  SYNC_SHAPE,
} from './sync-run.js';
import { syncTokensWithEvents } from './token.js';

export type RoomEntry = [string, JsonObject];

export class JoinedRooms {
  /** Lazy loading: which members' events each device already has, per room (spec: "redundant membership events"). */
  private readonly knownMembers = boundedCache<string, Set<string>>(50000);

  constructor(private readonly ctx: Context) {}

  private get rooms() {
    return this.ctx.services.rooms;
  }

  /**
   * The entries of `plans` (rooms left out when an incremental sync has
   * nothing for them), in plan order: the timelines of all of them in one
   * batch, then the full state of those rendered in full in another.
   */
  async render(run: Run, plans: JoinPlan[], early?: Map<string, TimelineChunk>): Promise<RoomEntry[]> {
    const { p, heads, since } = run;
    const { filter, userId } = p;
    const viewer = { userId, deviceId: p.deviceId };
    const wanted = plans.filter((j) => (j.mode === 'full' || run.roomsWithEvents.has(j.roomId)) && filter.timeline.allowsRoom(j.roomId));
    // Timelines read early were read from the sync token: they serve the rooms whose timeline starts there.
    const reuse = (j: JoinPlan) => early !== undefined && since !== null && j.timelineFrom === since.events && early.has(j.roomId);
    // Rooms rendered in full show their whole state at one end of the timeline: it is read with the
    // timeline. The state after a filtered timeline is that of a later event than its last.
    const wholeState = !p.useStateAfter ? ('before' as const) : filter.timeline.restrictsEvents ? undefined : ('after' as const);
    const queries = wanted
      .filter((j) => !reuse(j))
      .map((j) => ({
        roomId: j.roomId,
        fromPos: j.timelineFrom,
        toPos: heads.events,
        limit: filter.timelineLimit,
        filter: filter.timeline.lists,
        viewer,
        ...(j.mode === 'full' && wholeState ? { wholeState } : {}),
      }));
    const chunks = queries.length > 0 ? await this.rooms.getTimelines(queries, SYNC_SHAPE) : new Map<string, TimelineChunk>();
    for (const j of wanted) if (reuse(j)) chunks.set(j.roomId, early!.get(j.roomId)!);
    const chunkOf = (roomId: string): TimelineChunk => chunks.get(roomId) ?? { events: [], limited: false, prevBatchPos: heads.events };
    // The full state of rooms rendered in full, and the state changes of the others, in one batch each.
    const full = plans.filter((j) => j.mode === 'full');
    const deltas: { roomId: string; fromPos: number; toPos: number }[] = [];
    for (const j of plans) {
      const range = j.mode === 'delta' ? deltaStateRange(run, j, chunkOf(j.roomId)) : null;
      if (range) deltas.push({ roomId: j.roomId, ...range });
    }
    const [states, changes] = await Promise.all([
      full.length > 0
        ? this.rooms.getStatesAtPositions(
            full.map((j) => ({ roomId: j.roomId, pos: p.useStateAfter ? heads.events : chunkOf(j.roomId).prevBatchPos })),
            SYNC_SHAPE,
          )
        : new Map<string, ClientEvent[]>(),
      deltas.length > 0 ? this.rooms.getStateChanges(deltas, SYNC_SHAPE) : new Map<string, ClientEvent[]>(),
    ]);
    const prevBatch = syncTokensWithEvents(heads);
    const entries = await Promise.all(plans.map((j) => this.joinedRoom(run, j, chunkOf(j.roomId), (j.mode === 'full' ? states : changes).get(j.roomId) ?? [], prevBatch)));
    return entries.filter((e): e is RoomEntry => e !== null);
  }

  /**
   * One joined room, from its timeline and its state: for a room rendered in
   * full, the state at the start of the timeline (at its end with
   * `use_state_after`); otherwise the changes deltaStateRange asks for.
   */
  private async joinedRoom(run: Run, j: JoinPlan, chunk: TimelineChunk, stateRead: ClientEvent[], prevBatch: (events: number) => string): Promise<RoomEntry | null> {
    const { p, heads } = run;
    const { filter, userId } = p;
    const roomId = j.roomId;
    const timeline = visibleTimeline(chunk.events, run.ignored, filter);

    // State: before the timeline (`state`) or after it (`state_after`).
    let state: ClientEvent[];
    let summary: JsonObject | undefined;
    const endPos = heads.events;
    if (j.mode === 'full') {
      const full = stateRead;
      const endState = p.useStateAfter ? full : applyState(full, chunk.events);
      summary = roomSummary(endState, userId, hasRoomName(endState));
      state = full;
      if (filter.lazyLoadMembers) {
        const needed = new Set<string>(timeline.map((e) => e.sender));
        needed.add(userId);
        for (const h of (summary['m.heroes'] as string[] | undefined) ?? []) needed.add(h);
        state = state.filter((e) => e.type !== 'm.room.member' || needed.has(e.state_key!));
        this.knownMembers.set(knownKey(p.userId, p.deviceId, roomId), new Set([...memberKeys(state), ...memberKeys(chunk.events)]));
      }
    } else {
      state = stateRead;
      if (filter.lazyLoadMembers && timeline.length > 0) {
        state = await this.addLazyMembers(p, roomId, state, timeline, chunk, p.useStateAfter ? endPos : chunk.prevBatchPos);
      }
      const memberEvents = [...state, ...chunk.events].filter((e) => e.type === 'm.room.member');
      if (memberEvents.length > 0) {
        run.memberChanges.set(roomId, memberEvents);
        const members = await this.rooms.getCurrentState(roomId, ['m.room.member']);
        summary = roomSummary(members, userId, false);
      }
    }
    if (!filter.state.allowsRoom(roomId)) state = [];
    state = state.filter((e) => filter.state.matches(e));

    const ephemeral: JsonObject[] = [];
    if (filter.ephemeral.allowsRoom(roomId)) {
      const typists = run.typing.get(roomId);
      if (typists) ephemeral.push({ type: 'm.typing', content: { user_ids: typists } });
      const receipt = run.receipts.get(roomId);
      if (receipt) ephemeral.push({ type: 'm.receipt', content: receipt });
    }
    const ephemeralEvents = limitList(
      ephemeral.filter((e) => filter.ephemeral.matches(e as { type: string })),
      filter.ephemeral.limit,
    );
    const accountData = roomAccountData(run, roomId);

    if (j.mode === 'delta' && timeline.length === 0 && state.length === 0 && ephemeralEvents.length === 0 && accountData.length === 0) {
      return null;
    }

    const entry: JsonObject = {
      timeline: {
        events: asJson(fields(timeline.map(withoutRoomId), filter)),
        limited: chunk.limited || j.stateFilled === true,
        prev_batch: prevBatch(chunk.prevBatchPos),
      },
      [p.useStateAfter ? 'state_after' : 'state']: { events: asJson(fields(state.map(withoutRoomId), filter)) },
      ephemeral: { events: ephemeralEvents as JsonValue[] },
      account_data: { events: accountData },
    };
    if (summary) entry.summary = summary;
    return [roomId, entry];
  }

  /** Lazy loading in an incremental sync: member events of timeline senders the device does not have yet. */
  private async addLazyMembers(
    p: SyncParams,
    roomId: string,
    state: ClientEvent[],
    timeline: ClientEvent[],
    chunk: TimelineChunk,
    statePos: number,
  ): Promise<ClientEvent[]> {
    const key = knownKey(p.userId, p.deviceId, roomId);
    const known = p.filter.includeRedundantMembers ? new Set<string>() : (this.knownMembers.get(key) ?? new Set<string>());
    const have = new Set([...memberKeys(state), ...memberKeys(chunk.events)]);
    const missing = [...new Set(timeline.map((e) => e.sender))].filter((u) => !known.has(u) && !have.has(u));
    let out = state;
    if (missing.length > 0) {
      const want = new Set(missing);
      const snapshot = await this.rooms.getStateAtPosition(roomId, statePos);
      const add = snapshot.filter((e) => e.type === 'm.room.member' && want.has(e.state_key!));
      out = [...state, ...add];
    }
    const next = this.knownMembers.get(key) ?? new Set<string>();
    for (const u of memberKeys(out)) next.add(u);
    for (const u of memberKeys(chunk.events)) next.add(u);
    this.knownMembers.set(key, next);
    return out;
  }
}

/**
 * The state section of a room rendered as a delta: the state changes from
 * the token to the start of the timeline when the timeline does not hold
 * them all (limited or filtered), or to its end with `use_state_after`.
 */
function deltaStateRange(run: Run, j: JoinPlan, chunk: TimelineChunk): { fromPos: number; toPos: number } | null {
  const sincePos = run.since!.events;
  if (!run.roomsWithEvents.has(j.roomId)) return null;
  if (run.p.useStateAfter) return { fromPos: sincePos, toPos: run.heads.events };
  if ((chunk.limited || run.p.filter.timeline.restrictsEvents) && chunk.prevBatchPos > sincePos) return { fromPos: sincePos, toPos: chunk.prevBatchPos };
  return null;
}

function knownKey(userId: string, deviceId: string, roomId: string): string {
  return `${userId}\u0000${deviceId}\u0000${roomId}`;
}
