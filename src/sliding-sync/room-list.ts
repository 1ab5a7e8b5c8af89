import type { Context } from '../context.js';
import type { RoomMembership } from '../rooms/service.js';
import type { ListConfig, ListFilters } from './request.js';
import type { RoomFacts, RoomFactsView } from './room-facts.js';

/**
 * The server-maintained room list of MSC4186 ("Lists"): every room the user
 * is joined to, invited to or knocked on, those they were kicked or banned
 * from, and those they left that this connection was already sent; sorted
 * by recency (newest bump first). Lists are filtered views of it, cut by
 * their ranges.
 */

export interface ListedRoom {
  roomId: string;
  m: RoomMembership;
  /** `bump_stamp`: the newest bump event for joined rooms, the membership for the others. */
  bump: number;
}

export interface ListWindow {
  count: number;
  /** Rooms inside the list's ranges, in list order. */
  roomIds: string[];
}

export async function serverRoomList(
  ctx: Context,
  facts: RoomFacts,
  userId: string,
  memberships: RoomMembership[],
  sentBefore: (roomId: string) => boolean,
  upTo: number,
): Promise<ListedRoom[]> {
  const rooms = ctx.services.rooms;
  const gone = memberships.filter((m) => (m.membership === 'leave' || m.membership === 'ban') && !sentBefore(m.roomId));
  // A room the user left themselves is no news to them; a kick or a ban is.
  const goneEvents = gone.length > 0 ? await rooms.getEvents(gone.map((m) => m.eventId)) : new Map();
  const kept = memberships.filter((m) => {
    if (m.membership === 'join' || m.membership === 'invite' || m.membership === 'knock') return true;
    if (sentBefore(m.roomId)) return true;
    const ev = goneEvents.get(m.eventId);
    return ev !== undefined && ev.sender !== userId;
  });
  const joined = kept.filter((m) => m.membership === 'join').map((m) => m.roomId);
  const bumps = await facts.bumpStamps(joined, upTo);
  const out = kept.map((m) => ({
    roomId: m.roomId,
    m,
    bump: m.membership === 'join' ? (bumps.get(m.roomId) ?? m.streamPos) : m.streamPos,
  }));
  out.sort((a, b) => b.bump - a.bump || (a.roomId < b.roomId ? -1 : a.roomId > b.roomId ? 1 : 0));
  return out;
}

/** What the filters of the request's lists need to know, read once for all lists. */
export interface FilterInputs {
  facts: Map<string, RoomFactsView>;
  dmRooms: Set<string>;
  spaceChildren: Map<string, Set<string>>;
  tags: Map<string, Set<string>>;
}

export async function filterInputs(
  ctx: Context,
  facts: RoomFacts,
  dmRooms: Set<string>,
  userId: string,
  list: ListedRoom[],
  configs: ListConfig[],
  upTo: number,
): Promise<FilterInputs> {
  const f = configs.map((c) => c.filters);
  const needFacts = f.some((x) => x.isEncrypted !== undefined || x.roomTypes !== undefined || x.notRoomTypes !== undefined);
  const needTags = f.some((x) => x.tags !== undefined || x.notTags !== undefined);
  const spaces = new Set(f.flatMap((x) => x.spaces ?? []));
  const sync = ctx.services.sync;
  const joinedIds = new Set(list.filter((r) => r.m.membership === 'join').map((r) => r.roomId));
  const [factMap, spaceChildren, tags] = await Promise.all([
    needFacts ? facts.facts(list.map((r) => r.roomId), upTo) : Promise.resolve(new Map<string, RoomFactsView>()),
    (async () => {
      const out = new Map<string, Set<string>>();
      for (const space of spaces) {
        // Only spaces the user is joined to are looked into; subspaces are not followed.
        if (!joinedIds.has(space)) continue;
        const children = await ctx.services.rooms.getCurrentState(space, ['m.space.child']);
        out.set(space, new Set(children.filter((e) => Array.isArray(e.content.via) && e.content.via.length > 0).map((e) => e.state_key!)));
      }
      return out;
    })(),
    (async () => {
      const out = new Map<string, Set<string>>();
      if (!needTags) return out;
      await Promise.all(
        list.map(async (r) => {
          const content = await sync.accountData.get(userId, r.roomId, 'm.tag');
          const t = content?.tags;
          out.set(r.roomId, new Set(t && typeof t === 'object' && !Array.isArray(t) ? Object.keys(t) : []));
        }),
      );
      return out;
    })(),
  ]);
  return { facts: factMap, dmRooms, spaceChildren, tags };
}

function matches(r: ListedRoom, f: ListFilters, inputs: FilterInputs): boolean {
  if (f.isDm !== undefined && inputs.dmRooms.has(r.roomId) !== f.isDm) return false;
  if (f.isInvite !== undefined && (r.m.membership === 'invite') !== f.isInvite) return false;
  if (f.isEncrypted !== undefined && (inputs.facts.get(r.roomId)?.encrypted ?? false) !== f.isEncrypted) return false;
  if (f.roomTypes !== undefined || f.notRoomTypes !== undefined) {
    const type = inputs.facts.get(r.roomId)?.roomType ?? null;
    if (f.notRoomTypes?.includes(type)) return false;
    if (f.roomTypes !== undefined && !f.roomTypes.includes(type)) return false;
  }
  if (f.spaces !== undefined && !f.spaces.some((s) => inputs.spaceChildren.get(s)?.has(r.roomId))) return false;
  if (f.notTags !== undefined && f.notTags.some((t) => inputs.tags.get(r.roomId)?.has(t))) return false;
  if (f.tags !== undefined && !f.tags.some((t) => inputs.tags.get(r.roomId)?.has(t))) return false;
  return true;
}

/** The list's filtered count and the rooms its ranges cover. */
export function listWindow(list: ListedRoom[], config: ListConfig, inputs: FilterInputs): ListWindow {
  const filtered = list.filter((r) => matches(r, config.filters, inputs));
  if (config.ranges === null) return { count: filtered.length, roomIds: filtered.map((r) => r.roomId) };
  const picked = new Set<number>();
  for (const [start, end] of config.ranges) for (let i = start; i <= Math.min(end, filtered.length - 1); i++) picked.add(i);
  return { count: filtered.length, roomIds: [...picked].sort((a, b) => a - b).map((i) => filtered[i]!.roomId) };
}
