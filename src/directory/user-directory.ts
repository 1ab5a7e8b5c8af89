import type { Context } from '../context.js';
import type { Route } from '../http/router.js';

/** How many matches are ranked before the limit is applied. */
const MAX_CANDIDATES = 200;
const DEFAULT_LIMIT = 10;
const MAX_LIMIT = 100;

export interface UserDirectoryResult {
  user_id: string;
  display_name?: string;
  avatar_url?: string;
}

/**
 * The user directory (spec: "User Directory"). Search scope: every active
 * local user, the "search all users" mode. The spec asks for at least the
 * users visible to the requester through shared and public rooms; all local
 * users is a superset of the local part of that, and needs no room
 * membership bookkeeping. Remote users are not searched yet.
 *
 * Matching is case-insensitive by word prefix: every word of the search
 * term must start a word of the user id or of the display name.
 */
export async function searchUserDirectory(
  ctx: Context,
  searchTerm: string,
  limit: number,
): Promise<{ results: UserDirectoryResult[]; limited: boolean }> {
  const max = Math.min(Math.max(Math.trunc(limit), 0), MAX_LIMIT);
  const hits = await ctx.services.accounts.directoryCandidates(searchTerm, MAX_CANDIDATES);
  const term = searchTerm.trim().toLowerCase().replace(/^@/, '');
  const rank = (h: { user_id: string; displayname: string | null; avatar_url: string | null }): number => {
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
  return { results, limited: hits.length > max };
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
      handler: (req) => searchUserDirectory(ctx, req.body.search_term, req.body.limit ?? DEFAULT_LIMIT),
    },
  ];
}
