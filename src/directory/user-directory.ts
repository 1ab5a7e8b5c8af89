import type { Context } from '../context.js';
import type { DirectoryHit } from '../accounts/profile-store.js';
import type { Route } from '../http/router.js';
import { searchRemoteUsers } from './remote-users.js';

/** How many visible matches are ranked before the limit is applied. */
const MAX_CANDIDATES = 200;
/** Matches are read and filtered this many at a time... */
const PAGE = 100;
/** ...and no more than this many are looked at, visible or not. */
const MAX_SCANNED = 2000;
const DEFAULT_LIMIT = 10;
const MAX_LIMIT = 100;

export interface UserDirectoryResult {
  user_id: string;
  display_name?: string;
  avatar_url?: string;
}

/**
 * The user directory (spec: "User Directory", users.yaml). A searcher finds the users the spec
 * says they must at a minimum, and no others: users who share a room with them, and users
 * joined to a room with a public join rule or world-readable history. Memberships and room
 * state are read as they are now, so someone who leaves the last such room drops out of the
 * results. Local users are found by their profile, users of other servers by their member
 * events (remote-users.ts).
 *
 * Matching is case-insensitive by word prefix: every word of the search
 * term must start a word of the user id or of the display name.
 */
export async function searchUserDirectory(
  ctx: Context,
  searcher: string,
  searchTerm: string,
  limit: number,
): Promise<{ results: UserDirectoryResult[]; limited: boolean }> {
  const max = Math.min(Math.max(Math.trunc(limit), 0), MAX_LIMIT);
  const sharing = await ctx.services.rooms.getUsersSharingRooms(searcher);
  const hits: DirectoryHit[] = [];
  let scanned = 0;
  let exhausted = false;
  while (hits.length < MAX_CANDIDATES && scanned < MAX_SCANNED) {
    const page = await ctx.services.accounts.directoryCandidates(searchTerm, PAGE, scanned);
    scanned += page.length;
    const visible = await visibleAmong(ctx, sharing, page.map((h) => h.user_id));
    hits.push(...page.filter((h) => visible.has(h.user_id)));
    if (page.length < PAGE) {
      exhausted = true;
      break;
    }
  }
  const remote = await searchRemoteUsers(ctx, searcher, searchTerm, MAX_CANDIDATES);
  hits.push(...remote.hits);
  const term = searchTerm.trim().toLowerCase().replace(/^@/, '');
  const rank = (h: DirectoryHit): number => {
    let r = 0;
    if (h.user_id.slice(1).toLowerCase().startsWith(term)) r += 4;
    if (h.displayname?.toLowerCase().startsWith(term)) r += 4;
    if (h.displayname !== null) r += 1;
    if (h.avatar_url !== null) r += 1;
    return r;
  };
  const ranked = hits
    .map((h) => ({ h, r: rank(h) }))
    .sort((a, b) => b.r - a.r || (a.h.user_id < b.h.user_id ? -1 : a.h.user_id > b.h.user_id ? 1 : 0));
  const results = ranked.slice(0, max).map(({ h }) => {
    const out: UserDirectoryResult = { user_id: h.user_id };
    if (h.displayname !== null) out.display_name = h.displayname;
    if (h.avatar_url !== null) out.avatar_url = h.avatar_url;
    return out;
  });
  // Matches left unread (past MAX_SCANNED) may hold more results.
  return { results, limited: hits.length > max || !exhausted || !remote.exhausted };
}

/** Which of `userIds` the searcher may find: those in `sharing`, and members of public or world-readable rooms. */
async function visibleAmong(ctx: Context, sharing: Set<string>, userIds: string[]): Promise<Set<string>> {
  const out = new Set(userIds.filter((u) => sharing.has(u)));
  const others = userIds.filter((u) => !out.has(u));
  if (others.length === 0) return out;
  const joinedBy = new Map<string, string[]>();
  for (const [userId, memberships] of await ctx.services.rooms.getMembershipsOfUsers(others)) {
    for (const m of memberships) {
      if (m.membership !== 'join') continue;
      const users = joinedBy.get(m.roomId) ?? [];
      users.push(userId);
      joinedBy.set(m.roomId, users);
    }
  }
  const summaries = await ctx.services.rooms.getRoomSummaries([...joinedBy.keys()]);
  for (const [roomId, users] of joinedBy) {
    const s = summaries.get(roomId);
    if (s && (s.join_rule === 'public' || s.world_readable)) for (const u of users) out.add(u);
  }
  return out;
}

export function userDirectoryRoutes(ctx: Context): Route[] {
  return [
    {
      method: 'POST',
      path: '/user_directory/search',
      schema: {
        body: {
          type: 'object',
          required: ['search_term'],
          properties: { search_term: { type: 'string' }, limit: { type: 'integer' } },
        },
      },
      handler: (req) => searchUserDirectory(ctx, req.requester.userId, req.body.search_term, req.body.limit ?? DEFAULT_LIMIT),
    },
  ];
}
