import type { ClientEvent } from '../core/types.js';
import type { Viewer } from '../rooms/events/client-format.js';
import { isServable, type StoredEvent } from '../rooms/events/stored-event.js';
import type { RoomsCore } from '../rooms/room-core.js';
import { topoToken } from '../rooms/tokens.js';
import { selectThreadRepliesAt, selectThreadWindow } from './relations-table.js';

/**
 * The threads that had replies in a window of the events stream (MSC4360,
 * the sliding-sync `threads` extension and its `/thread_updates` companion):
 * one update per thread however many replies it had, newest latest reply
 * first. A thread whose latest reply in the window the viewer may not see,
 * or was sent by a user they ignore, is left out.
 */

export interface ThreadWindow {
  roomIds: string[];
  /** Replies in (after, upTo]. */
  after: number;
  upTo: number;
  /** Only threads whose latest reply in the window is below this (a later page); null: from the newest. */
  before: number | null;
  limit: number;
  includeRoots: boolean;
}

export interface ThreadUpdate {
  roomId: string;
  root: string;
  /** Stream position of the oldest reply in the window. */
  oldest: number;
  /** A `/relations` `from` token (dir=b) for the thread's replies before the latest one, when the window holds more than one. */
  prevBatch?: string;
  /** The root with its bundled aggregations (the `m.thread` summary), when asked for and visible. */
  rootEvent?: ClientEvent;
}

export interface ThreadUpdatesPage {
  updates: ThreadUpdate[];
  /** The `before` of the next page, when threads were left out for the limit. */
  next: number | null;
}

export async function readThreadUpdates(
  core: RoomsCore,
  ignoredUsers: (userId: string) => Promise<Set<string>>,
  viewer: Viewer,
  w: ThreadWindow,
): Promise<ThreadUpdatesPage> {
  if (w.roomIds.length === 0 || w.upTo <= w.after) return { updates: [], next: null };
  const rows = await selectThreadWindow(core.ctx.db, w.roomIds, w.after, w.upTo, w.before, w.limit + 1);
  const page = rows.slice(0, w.limit);
  const next = rows.length > w.limit ? page[page.length - 1]!.latest : null;
  if (page.length === 0) return { updates: [], next };

  const replies = await selectThreadRepliesAt(
    core.ctx.db,
    page.map((r) => r.roomId),
    page.map((r) => r.latest),
  );
  const replyAt = new Map(replies.map((r) => [r.stream_pos, r]));
  const [loaded, ignored] = await Promise.all([core.events.getMany(replies.map((r) => r.event_id)), ignoredUsers(viewer.userId)]);
  const visible = new Set<string>();
  await Promise.all(
    [...new Set(page.map((r) => r.roomId))].map(async (roomId) => {
      const candidates = page
        .map((r) => (r.roomId === roomId ? loaded.get(replyAt.get(r.latest)?.event_id ?? '') : undefined))
        .filter((ev): ev is StoredEvent => ev !== undefined && ev.roomId === roomId && isServable(ev) && !ignored.has(ev.pdu.sender));
      for (const ev of (await core.visibility.filter(roomId, candidates, viewer.userId)).visible) visible.add(ev.eventId);
    }),
  );

  const updates: ThreadUpdate[] = [];
  for (const r of page) {
    const latest = replyAt.get(r.latest);
    if (!latest || !visible.has(latest.event_id)) continue;
    const u: ThreadUpdate = { roomId: r.roomId, root: r.root, oldest: r.oldest };
    // The cut just before the latest reply: /relations pages back through the others from there.
    if (r.count > 1) u.prevBatch = topoToken({ depth: latest.depth, stream: latest.stream_pos - 1 });
    updates.push(u);
  }
  if (w.includeRoots) await attachRoots(core, viewer, updates);
  return { updates, next };
}

/** Each update's root, formatted with its bundled aggregations, where the viewer may see it. */
async function attachRoots(core: RoomsCore, viewer: Viewer, updates: ThreadUpdate[]): Promise<void> {
  const loaded = await core.events.getMany(updates.map((u) => u.root));
  const visible: StoredEvent[] = [];
  const membershipAt = new Map<string, string>();
  await Promise.all(
    [...new Set(updates.map((u) => u.roomId))].map(async (roomId) => {
      const roots = updates
        .filter((u) => u.roomId === roomId)
        .map((u) => loaded.get(u.root))
        .filter((ev): ev is StoredEvent => ev !== undefined && ev.roomId === roomId && isServable(ev) && ev.streamPos !== null);
      const vis = await core.visibility.filter(roomId, roots, viewer.userId);
      visible.push(...vis.visible);
      for (const [id, m] of vis.membershipAt) membershipAt.set(id, m);
    }),
  );
  // One formatting pass for every room: the bundled aggregations are read in one batch.
  const byId = new Map((await core.format(visible, viewer, membershipAt)).map((ev) => [ev.event_id, ev]));
  for (const u of updates) {
    const ev = byId.get(u.root);
    if (ev) u.rootEvent = ev;
  }
}
