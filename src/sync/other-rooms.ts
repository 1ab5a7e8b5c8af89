/**
 * The `rooms.invite`, `rooms.knock` and `rooms.leave` entries of /sync
 * (spec: "Syncing", GET /sync): stripped state for invites and knocks; for
 * left rooms the timeline up to the leave and the state that goes with it,
 * read for all left rooms in one batch each.
 */
import type { ClientEvent, JsonObject, JsonValue } from '../core/types.js';
import type { RoomMembership, RoomsService, TimelineChunk } from '../rooms/service.js';
import { asJson, fields, roomAccountData, visibleTimeline, withoutRoomId, type LeavePlan, type Run } from './sync-run.js';
import { formatSyncToken } from './token.js';

type Entry = [string, JsonObject];

/** An invited or knocked room: its stripped state; null for an invite from an ignored user. */
export async function strippedRoom(rooms: RoomsService, run: Run, m: RoomMembership, key: 'invite_state' | 'knock_state'): Promise<Entry | null> {
  const events = await rooms.getStrippedState(m.roomId, m.eventId);
  if (key === 'invite_state') {
    const invite = events.find((e) => e.type === 'm.room.member' && e.state_key === run.p.userId);
    if (invite && run.ignored.has(invite.sender)) return null;
  }
  return [m.roomId, { [key]: { events: events as unknown as JsonValue[] } }];
}

/** Left rooms: their timelines, and then their states, in one batch each. */
export async function leftRooms(rooms: RoomsService, run: Run, leaves: LeavePlan[]): Promise<Entry[]> {
  if (leaves.length === 0) return [];
  const { p } = run;
  const { filter, userId } = p;
  const viewer = { userId, deviceId: p.deviceId };
  const unseen = leaves.filter((l) => l.timelineFrom === null);
  const seen = leaves.filter((l) => l.timelineFrom !== null);
  const [leaveEvents, chunks] = await Promise.all([
    unseen.length > 0 ? rooms.getEvents(unseen.map((l) => l.m.eventId), viewer) : new Map<string, ClientEvent>(),
    seen.length > 0
      ? rooms.getTimelines(
          seen.map((l) => ({
            roomId: l.roomId,
            fromPos: l.timelineFrom!,
            toPos: l.m.streamPos,
            limit: filter.timelineLimit,
            filter: filter.timeline.lists,
            viewer,
          })),
        )
      : new Map<string, TimelineChunk>(),
  ]);
  const chunkOf = (l: LeavePlan): TimelineChunk => chunks.get(l.roomId) ?? { events: [], limited: false, prevBatchPos: l.m.streamPos };
  // State at the start of the timeline (at the leave with use_state_after): all of it for rooms
  // rendered from their start, what changed since the token for the others.
  const statePos = (l: LeavePlan) => (p.useStateAfter ? l.m.streamPos : chunkOf(l).prevBatchPos);
  const fromStart = seen.filter((l) => l.timelineFrom === 0);
  const changed = seen.filter(
    (l) => l.timelineFrom !== 0 && (p.useStateAfter || chunkOf(l).limited || filter.timeline.restrictsEvents) && statePos(l) > l.timelineFrom!,
  );
  const [states, changes] = await Promise.all([
    fromStart.length > 0 ? rooms.getStatesAtPositions(fromStart.map((l) => ({ roomId: l.roomId, pos: statePos(l) }))) : new Map<string, ClientEvent[]>(),
    changed.length > 0
      ? rooms.getStateChanges(changed.map((l) => ({ roomId: l.roomId, fromPos: l.timelineFrom!, toPos: statePos(l) })))
      : new Map<string, ClientEvent[]>(),
  ]);
  return leaves.map((l) => {
    let chunk: TimelineChunk;
    let state: ClientEvent[] = [];
    if (l.timelineFrom === null) {
      const ev = leaveEvents.get(l.m.eventId);
      chunk = { events: ev ? [ev] : [], limited: false, prevBatchPos: l.m.streamPos - 1 };
      if (p.useStateAfter && ev) state = [ev];
    } else {
      chunk = chunkOf(l);
      state = (l.timelineFrom === 0 ? states : changes).get(l.roomId) ?? [];
    }
    return leftRoom(run, l, chunk, state);
  });
}

function leftRoom(run: Run, l: LeavePlan, chunk: TimelineChunk, stateRead: ClientEvent[]): Entry {
  const { p, since } = run;
  const { filter, userId } = p;
  let state = stateRead;
  if (since && l.timelineFrom !== null && l.timelineFrom !== 0) {
    const members = [...state, ...chunk.events].filter((e) => e.type === 'm.room.member');
    if (members.length > 0) run.memberChanges.set(l.roomId, members);
  }
  if (filter.lazyLoadMembers) {
    const needed = new Set(chunk.events.map((e) => e.sender));
    needed.add(userId);
    state = state.filter((e) => e.type !== 'm.room.member' || needed.has(e.state_key!));
  }
  if (!filter.state.allowsRoom(l.roomId)) state = [];
  state = state.filter((e) => filter.state.matches(e));
  const timeline = visibleTimeline(chunk.events, run.ignored, filter);
  return [
    l.roomId,
    {
      timeline: {
        events: asJson(fields(timeline.map(withoutRoomId), filter)),
        limited: chunk.limited,
        prev_batch: formatSyncToken({ ...run.heads, events: chunk.prevBatchPos }),
      },
      [p.useStateAfter ? 'state_after' : 'state']: { events: asJson(fields(state.map(withoutRoomId), filter)) },
      account_data: { events: roomAccountData(run, l.roomId) },
    },
  ];
}
