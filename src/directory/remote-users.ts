import type { DirectoryHit } from '../accounts/profile-store.js';
import type { Context } from '../context.js';
import type { RoomSummary } from '../rooms/summaries.js';

/** Membership rows are read this many at a time... */
const PAGE = 100;
/** ...and no more than this many are looked at, visible or not. */
const MAX_SCANNED = 2000;
const MAX_WORDS = 8;

/** Lower-case words of letters and digits; the separators of user ids (`.`, `_`, `:`, `@`, ...) split words. */
function words(text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
}

/**
 * Users of other servers the searcher may find in the user directory (spec: "User Directory"):
 * joined to a room the searcher is joined to, or to a room with a public join rule or
 * world-readable history that a user of this server is joined to. Their display name and avatar
 * are those of their member event in such a room (the most recent one when several are visible).
 * Memberships are read as the rooms' current state has them, so a remote user appears once their
 * join arrives over federation and drops out when they leave the last such room.
 *
 * Every word of the term must start a word of the user id or display name, as for local users;
 * the words are compared in lower case as typed (accents kept), because they are first looked
 * for in SQL by lower-cased substring.
 */
export async function searchRemoteUsers(
  ctx: Context,
  searcher: string,
  searchTerm: string,
  maxHits: number,
): Promise<{ hits: DirectoryHit[]; exhausted: boolean }> {
  const termWords = [...new Set(words(searchTerm))].slice(0, MAX_WORDS);
  if (termWords.length === 0) return { hits: [], exhausted: true };
  const rooms = ctx.services.rooms;
  const shared = new Set((await rooms.getMemberships(searcher)).filter((m) => m.membership === 'join').map((m) => m.roomId));
  const summaries = new Map<string, RoomSummary | undefined>();
  const best = new Map<string, { hit: DirectoryHit; streamPos: number }>();
  let scanned = 0;
  while (best.size < maxHits && scanned < MAX_SCANNED) {
    const page = await rooms.searchRemoteMembers(termWords, PAGE, scanned);
    scanned += page.length;
    const unknown = [...new Set(page.map((r) => r.roomId).filter((r) => !shared.has(r) && !summaries.has(r)))];
    if (unknown.length > 0) {
      const got = await rooms.getRoomSummaries(unknown);
      for (const r of unknown) summaries.set(r, got.get(r));
    }
    for (const row of page) {
      const s = summaries.get(row.roomId);
      if (!shared.has(row.roomId) && !(s && (s.join_rule === 'public' || s.world_readable))) continue;
      const own = new Set([...words(row.userId), ...words(row.displayName ?? '')]);
      if (!termWords.every((w) => [...own].some((o) => o.startsWith(w)))) continue;
      const seen = best.get(row.userId);
      if (seen && seen.streamPos >= row.streamPos) continue;
      best.set(row.userId, { hit: { user_id: row.userId, displayname: row.displayName, avatar_url: row.avatarUrl }, streamPos: row.streamPos });
    }
    if (page.length < PAGE) return { hits: [...best.values()].map((b) => b.hit), exhausted: true };
  }
  return { hits: [...best.values()].map((b) => b.hit), exhausted: false };
}
