import type { Context } from '../context.js';
import type { JsonObject } from '../core/types.js';
import { readStreamPositions } from '../db/stream-positions.js';
import { invalidParam } from '../http/errors.js';
import type { Requester } from '../http/requester.js';
import { MAX_THREAD_UPDATES } from './request.js';
import { formatThreadUpdatesToken, parseThreadUpdatesToken, updatesByRoom, type ThreadUpdatesCursor } from './threads-extension.js';

/**
 * GET /thread_updates (MSC4360's companion endpoint): pages back through
 * the threads of the user's joined rooms updated in a window, newest first,
 * each with its root. `from` is a `prev_batch` of the `threads` extension
 * or a `next_batch` of this endpoint, and carries the window it pages
 * through; without it, paging starts at the newest event. `to` is the
 * sliding-sync `pos` the client sent with the request that returned the
 * `prev_batch`: updates up to it are not sent again. A `pos` the server no
 * longer knows leaves the window's own lower bound in force.
 */

export interface ThreadUpdatesQuery {
  dir?: string;
  from?: string;
  to?: string;
  limit?: number;
}

export async function getThreadUpdates(ctx: Context, requester: Requester, q: ThreadUpdatesQuery): Promise<JsonObject> {
  if (q.dir !== undefined && q.dir !== 'b') throw invalidParam("dir must be 'b': thread updates page backwards only");
  if (q.limit !== undefined && q.limit < 1) throw invalidParam('limit must be a positive integer');
  const limit = Math.min(q.limit ?? MAX_THREAD_UPDATES, MAX_THREAD_UPDATES);
  let cursor: Omit<ThreadUpdatesCursor, 'before'> & { before: number | null };
  if (q.from !== undefined && q.from !== '') cursor = parseThreadUpdatesToken(q.from);
  else cursor = { before: null, upTo: (await readStreamPositions(ctx.db)).events, after: 0 };
  if (q.to !== undefined && q.to !== '') {
    const to = await ctx.services.slidingSync.eventsAt(requester, q.to);
    if (to !== null && to > cursor.after) cursor.after = to;
  }

  const memberships = await ctx.services.rooms.getMemberships(requester.userId);
  const page = await ctx.services.relations.threadUpdates(requester, {
    roomIds: memberships.filter((m) => m.membership === 'join').map((m) => m.roomId),
    after: cursor.after,
    upTo: cursor.upTo,
    before: cursor.before,
    limit,
    includeRoots: true,
  });
  const out: JsonObject = { chunk: updatesByRoom(page.updates) };
  if (page.next !== null) out.next_batch = formatThreadUpdatesToken({ before: page.next, upTo: cursor.upTo, after: cursor.after });
  return out;
}
