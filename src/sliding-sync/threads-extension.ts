import type { Context } from '../context.js';
import type { JsonObject, JsonValue } from '../core/types.js';
import { invalidParam } from '../http/errors.js';
import type { ThreadUpdate, ThreadWindow } from '../relations/thread-updates.js';
import type { Extensions } from './request.js';

/**
 * MSC4360, the `threads` extension: the threads of the user's joined rooms
 * that had replies since the connection's previous response (all of them on
 * a new connection), one update per thread, the newest `limit`, with a
 * `prev_batch` for `/thread_updates` when some were left out. Without
 * `include_roots`, a thread whose replies all came in a room timeline of
 * the same response is news the client already has, and is left out.
 */

/** A `/thread_updates` token: threads whose latest reply in (after, upTo] is below `before`. */
export interface ThreadUpdatesCursor {
  before: number;
  upTo: number;
  after: number;
}

export function formatThreadUpdatesToken(c: ThreadUpdatesCursor): string {
  return `tu_${c.before}_${c.upTo}_${c.after}`;
}

export function parseThreadUpdatesToken(token: string): ThreadUpdatesCursor {
  const m = /^tu_(\d{1,16})_(\d{1,16})_(\d{1,16})$/.exec(token);
  if (!m) throw invalidParam('Unknown thread updates token');
  return { before: Number(m[1]), upTo: Number(m[2]), after: Number(m[3]) };
}

/** `{roomId: {rootId: {thread_root?, prev_batch?}}}`, the shape of the extension's `updates` and the endpoint's `chunk`. */
export function updatesByRoom(updates: ThreadUpdate[]): JsonObject {
  const out: Record<string, JsonObject> = {};
  for (const u of updates) {
    const entry: JsonObject = {};
    if (u.rootEvent) entry.thread_root = u.rootEvent as unknown as JsonValue;
    if (u.prevBatch !== undefined) entry.prev_batch = u.prevBatch;
    (out[u.roomId] ??= {})[u.root] = entry;
  }
  return out;
}

export interface ThreadsInput {
  userId: string;
  deviceId: string;
  joinedRooms: string[];
  /** Events position of the previous response; null on a new connection. */
  after: number | null;
  upTo: number;
  /** Per room sent with a timeline in this response: the position just before its first event. */
  timelineFrom: Map<string, number>;
}

/** The extension's body, or null when there is nothing to say (the MSC omits it then). */
export async function threadsExtension(ctx: Context, cfg: Extensions['threads'], input: ThreadsInput): Promise<JsonObject | null> {
  const w: ThreadWindow = {
    roomIds: input.joinedRooms,
    after: input.after ?? 0,
    upTo: input.upTo,
    before: null,
    limit: cfg.limit,
    includeRoots: cfg.includeRoots,
  };
  const page = await ctx.services.relations.threadUpdates({ userId: input.userId, deviceId: input.deviceId }, w);
  const updates = cfg.includeRoots
    ? page.updates
    : page.updates.filter((u) => {
        const from = input.timelineFrom.get(u.roomId);
        return from === undefined || u.oldest <= from;
      });
  if (updates.length === 0 && page.next === null) return null;
  const body: JsonObject = { updates: updatesByRoom(updates) };
  if (page.next !== null) body.prev_batch = formatThreadUpdatesToken({ before: page.next, upTo: w.upTo, after: w.after });
  return body;
}
