/**
 * The deprecated event stream (old_sync.yaml GET /events, peeking_events.yaml)
 * and GET /events/{eventId}. The stream is /sync seen as a flat list: its
 * tokens are sync tokens (interchangeable with /initialSync's `end`), and a
 * request waits up to `timeout` for something new, as /sync does.
 */
import type { Context } from '../context.js';
import { isValidRoomId } from '../core/ids.js';
import type { ClientEvent, JsonObject } from '../core/types.js';
import { guestAccessForbidden, invalidParam, notFound } from '../http/errors.js';
import type { Requester } from '../http/requester.js';
import { isPeek, peekEvents } from './peek.js';

const DEFAULT_TIMEOUT_MS = 30_000;
const TIMELINE_LIMIT = 100;

/** Long-polls must stop when the client goes away (the reply's close). */
type OnClose = (fn: () => void) => void;

export async function eventStream(
  ctx: Context,
  requester: Requester,
  q: { from?: string; timeout?: string; room_id?: string },
  onClose: OnClose,
): Promise<{ start: string; end: string; chunk: JsonObject[] }> {
  if (q.timeout !== undefined && !/^\d{1,9}$/.test(q.timeout)) throw invalidParam('timeout must be a non-negative integer');
  if (q.room_id !== undefined && !isValidRoomId(q.room_id)) throw invalidParam('room_id is not a room ID');
  const timeout = q.timeout === undefined ? DEFAULT_TIMEOUT_MS : Number(q.timeout);
  if (q.room_id !== undefined && (await isPeek(ctx, requester.userId, q.room_id))) {
    return peekEvents(ctx, requester, q.room_id, { from: q.from, timeoutMs: timeout }, onClose);
  }
  // Guests read the stream only to preview a room (spec: modules/guest_access).
  if (requester.isGuest === true && q.room_id === undefined) throw guestAccessForbidden('Guests may only use /events with room_id');
  const rooms = q.room_id !== undefined ? { rooms: [q.room_id] } : {};
  let from = q.from;
  if (from === undefined || from === '') {
    // No token: the stream starts now. A sync that asks for nothing gives the current token.
    const none = JSON.stringify({ room: { rooms: [] }, presence: { not_types: ['*'] }, account_data: { not_types: ['*'] } });
    from = ((await ctx.services.sync.sync(requester, { filter: none, timeout: 0 }, onClose)) as { next_batch: string }).next_batch;
  }
  const filter = JSON.stringify({ room: { ...rooms, timeline: { limit: TIMELINE_LIMIT }, state: { lazy_load_members: true } }, account_data: { not_types: ['*'] } });
  const body = (await ctx.services.sync.sync(requester, { since: from, filter, timeout }, onClose)) as unknown as {
    next_batch: string;
    rooms?: { join?: Record<string, { timeline?: { events?: ClientEvent[] } }> };
    presence?: { events?: JsonObject[] };
  };
  const chunk: JsonObject[] = [];
  for (const [roomId, r] of Object.entries(body.rooms?.join ?? {})) {
    for (const e of r.timeline?.events ?? []) chunk.push({ ...e, room_id: roomId } as unknown as JsonObject);
  }
  chunk.sort((a, b) => Number(a.origin_server_ts) - Number(b.origin_server_ts));
  if (q.room_id === undefined) chunk.push(...(body.presence?.events ?? []));
  return { start: from, end: body.next_batch, chunk };
}

/** GET /events/{eventId}: one event the user may see, whichever room it is in. */
export async function oneEvent(ctx: Context, requester: Requester, eventId: string): Promise<ClientEvent> {
  const found = (await ctx.services.rooms.getEvents([eventId], { userId: requester.userId })).get(eventId);
  if (!found?.room_id) throw notFound('Event not found');
  try {
    return await ctx.services.rooms.event(requester, found.room_id, eventId);
  } catch {
    // Not seeing the event and it not existing answer alike, so neither is revealed.
    throw notFound('Event not found');
  }
}
