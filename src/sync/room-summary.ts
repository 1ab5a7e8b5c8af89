import type { ClientEvent, JsonObject } from '../core/types.js';

/**
 * The room summary of /sync (`m.heroes`, `m.joined_member_count`,
 * `m.invited_member_count`) from the room's member events.
 */
export function roomSummary(memberEvents: Iterable<ClientEvent>, self: string, hasName: boolean): JsonObject {
  let joined = 0;
  let invited = 0;
  const active: ClientEvent[] = [];
  const gone: ClientEvent[] = [];
  for (const ev of memberEvents) {
    if (ev.type !== 'm.room.member' || ev.state_key === undefined) continue;
    const m = ev.content.membership;
    if (m === 'join') joined++;
    else if (m === 'invite') invited++;
    if (ev.state_key === self) continue;
    if (m === 'join' || m === 'invite') active.push(ev);
    else if (m === 'leave' || m === 'ban') gone.push(ev);
  }
  const out: JsonObject = { 'm.joined_member_count': joined, 'm.invited_member_count': invited };
  if (!hasName) {
    // "The first 5 members ... ordered by stream ordering": the event timestamps stand in for it.
    const pick = (list: ClientEvent[]) =>
      list
        .sort((a, b) => a.origin_server_ts - b.origin_server_ts || (a.state_key! < b.state_key! ? -1 : 1))
        .slice(0, 5)
        .map((e) => e.state_key!);
    out['m.heroes'] = active.length > 0 ? pick(active) : pick(gone);
  }
  return out;
}

/** Whether the room has a usable name or canonical alias (then heroes are not needed). */
export function hasRoomName(state: Iterable<ClientEvent>): boolean {
  for (const ev of state) {
    if (ev.state_key !== '') continue;
    if (ev.type === 'm.room.name' && typeof ev.content.name === 'string' && ev.content.name !== '') return true;
    if (ev.type === 'm.room.canonical_alias' && typeof ev.content.alias === 'string' && ev.content.alias !== '') return true;
  }
  return false;
}
