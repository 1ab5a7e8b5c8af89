import type { DirectoryHit } from '../accounts/profile-store.js';
import { searchWords } from '../accounts/search-text.js';
import type { Context } from '../context.js';
import { selectVisibleRemoteUsers } from './user-directory-store.js';

const MAX_WORDS = 8;
/** Rows read per search: a user visible through several rooms takes one row each. */
const ROWS_PER_HIT = 4;

/**
 * Users of other servers the searcher may find in the user directory (spec: "User Directory"):
 * joined to a room the searcher is joined to, or to a room with a public join rule or
 * world-readable history that a user of this server is joined to. Their display name and avatar
 * are those of their member event in such a room (the most recent one when several are visible).
 * They are read from the directory's own tables, which follow the rooms' current state
 * (remote-users-consumer.ts), so a remote user appears once their join arrives over federation
 * and drops out when they leave the last such room or a state reset removes them.
 *
 * Matching is that of local users: every word of the term (lower-cased, accents folded) must
 * start a word of the user id or display name, so "marq" finds "Márquez".
 */
export async function searchRemoteUsers(
  ctx: Context,
  searcher: string,
  searchTerm: string,
  maxHits: number,
): Promise<{ hits: DirectoryHit[]; exhausted: boolean }> {
  const words = [...new Set(searchWords(searchTerm))].slice(0, MAX_WORDS);
  if (words.length === 0) return { hits: [], exhausted: true };
  const limit = maxHits * ROWS_PER_HIT;
  const rows = await selectVisibleRemoteUsers(ctx.db, searcher, words, limit);
  const exhausted = rows.length < limit;
  // Rows come newest first within each user, so a read cut off inside a user's rows still has their newest profile.
  const hits = new Map<string, DirectoryHit>();
  for (const r of rows) {
    if (!hits.has(r.user_id)) hits.set(r.user_id, { user_id: r.user_id, displayname: r.display_name, avatar_url: r.avatar_url });
  }
  return { hits: [...hits.values()].slice(0, maxHits), exhausted: exhausted && hits.size <= maxHits };
}
