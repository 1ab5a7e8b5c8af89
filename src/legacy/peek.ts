/**
 * Peeking (spec: modules/room_previews, peeking_events.yaml): GET /events
 * with `room_id` for a user who has not joined the room. Only the events
 * whose state had `world_readable` history are served (the rooms' history
 * visibility decides per event, as for every other read); the room must be
 * world-readable now to be peeked at all. Tokens are sync tokens, and a
 * room initialSync's `messages.end` (a pagination token) is accepted as
 * `from` too, since that is where a client starts peeking.
 */
import type { Context } from '../context.js';
import type { JsonObject } from '../core/types.js';
import { readStreamPositions } from '../db/stream-positions.js';
import { forbidden } from '../http/errors.js';
import type { Requester } from '../http/requester.js';
import { parseStreamToken } from '../rooms/tokens.js';
import { formatSyncToken, tryParseSyncToken } from '../sync/token.js';

/** Events per answer; a client asks again from `end` for the rest. */
const PEEK_LIMIT = 100;

type OnClose = (fn: () => void) => void;

/** Whether /events for this room is a peek: the user is not joined to it. */
export async function isPeek(ctx: Context, userId: string, roomId: string): Promise<boolean> {
  const m = (await ctx.services.rooms.getMemberships(userId)).find((r) => r.roomId === roomId);
  return m?.membership !== 'join';
}

export async function peekEvents(
  ctx: Context,
  requester: Requester,
  roomId: string,
  q: { from?: string; timeoutMs: number },
  onClose: OnClose,
): Promise<{ start: string; end: string; chunk: JsonObject[] }> {
  const rooms = ctx.services.rooms;
  if (!(await rooms.canSeeRoom(roomId, requester.userId))) throw forbidden('This room is not world-readable');
  const heads0 = await readStreamPositions(ctx.db);
  const fromToken = q.from !== undefined && q.from !== '' ? q.from : formatSyncToken(heads0);
  const parsed = tryParseSyncToken(fromToken);
  // A token from the future (another database) means "now".
  const fromPos = Math.min(parsed ? parsed.events : parseStreamToken(fromToken), heads0.events);
  // Registered before the heads are read again, so no event committed after that read is missed.
  const waiter = ctx.services.sync.notifier.register(requester.userId);
  onClose(() => waiter.cancel());
  const deadline = Date.now() + q.timeoutMs;
  try {
    for (;;) {
      const heads = await readStreamPositions(ctx.db);
      const end = { ...heads, events: Math.max(heads.events, fromPos) };
      if (heads.events > fromPos) {
        const page = await rooms.getTimeline({ roomId, fromPos, toPos: heads.events, limit: PEEK_LIMIT, viewer: requester });
        if (page.events.length > 0) {
          const chunk = page.events.map((e) => ({ ...e, room_id: roomId }) as unknown as JsonObject);
          return { start: fromToken, end: formatSyncToken(end), chunk };
        }
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) return { start: fromToken, end: formatSyncToken(end), chunk: [] };
      waiter.arm([roomId], { ...heads, events: Math.max(heads.events, fromPos) });
      if (!(await waiter.wait(remaining))) return { start: fromToken, end: formatSyncToken(end), chunk: [] };
    }
  } finally {
    waiter.close();
  }
}
