/**
 * The deprecated snapshots that are still in the spec: GET /initialSync
 * (old_sync.yaml) and GET /rooms/{roomId}/initialSync (room_initial_sync.yaml).
 * Both are built from what /sync and the room reads already answer, so they
 * show exactly what those would: the same visibility, the same ignored users.
 */
import type { Context } from '../context.js';
import type { ClientEvent, JsonObject } from '../core/types.js';
import { invalidParam } from '../http/errors.js';
import type { Requester } from '../http/requester.js';

const DEFAULT_LIMIT = 10;
const MAX_LIMIT = 100;

type SyncRoom = {
  timeline?: { events?: ClientEvent[]; prev_batch?: string };
  state?: { events?: ClientEvent[] };
  account_data?: { events?: JsonObject[] };
};

function parseLimit(v: string | undefined): number {
  if (v === undefined) return DEFAULT_LIMIT;
  if (!/^\d{1,6}$/.test(v)) throw invalidParam('limit must be a non-negative integer');
  return Math.min(Number(v), MAX_LIMIT);
}

/** The room's state after the timeline: the state before it with the timeline's state events applied. */
function stateAfter(before: ClientEvent[], timeline: ClientEvent[]): ClientEvent[] {
  const byKey = new Map<string, ClientEvent>();
  for (const e of [...before, ...timeline]) if (e.state_key !== undefined) byKey.set(`${e.type}\u0000${e.state_key}`, e);
  return [...byKey.values()];
}

const withRoom = (roomId: string) => (e: ClientEvent): ClientEvent => ({ ...e, room_id: roomId });

/** GET /initialSync: every room of the user with its state and latest messages, presence and account data. */
export async function initialSync(ctx: Context, requester: Requester, q: { limit?: string; archived?: string }): Promise<JsonObject> {
  const limit = parseLimit(q.limit);
  if (q.archived !== undefined && q.archived !== 'true' && q.archived !== 'false') throw invalidParam('archived must be true or false');
  const filter = JSON.stringify({ room: { timeline: { limit }, include_leave: q.archived === 'true' } });
  const body = (await ctx.services.sync.sync(requester, { filter, timeout: 0 }, () => {})) as unknown as {
    next_batch: string;
    rooms?: { join?: Record<string, SyncRoom>; leave?: Record<string, SyncRoom>; invite?: Record<string, unknown> };
    presence?: { events?: JsonObject[] };
    account_data?: { events?: JsonObject[] };
  };
  const rooms: JsonObject[] = [];
  const memberships = new Map((await ctx.services.rooms.getMemberships(requester.userId)).map((m) => [m.roomId, m]));
  const roomInfo = async (roomId: string, r: SyncRoom, membership: string): Promise<JsonObject> => {
    const timeline = (r.timeline?.events ?? []).map(withRoom(roomId));
    const messages: JsonObject = { chunk: timeline as unknown as JsonObject[], end: body.next_batch };
    if (r.timeline?.prev_batch !== undefined) messages.start = r.timeline.prev_batch;
    return {
      room_id: roomId,
      membership,
      messages,
      state: stateAfter((r.state?.events ?? []).map(withRoom(roomId)), timeline) as unknown as JsonObject[],
      visibility: await ctx.services.directory.getVisibility(roomId),
      account_data: r.account_data?.events ?? [],
    };
  };
  for (const [roomId, r] of Object.entries(body.rooms?.join ?? {})) rooms.push(await roomInfo(roomId, r, 'join'));
  for (const [roomId, r] of Object.entries(body.rooms?.leave ?? {})) {
    rooms.push(await roomInfo(roomId, r, memberships.get(roomId)?.membership === 'ban' ? 'ban' : 'leave'));
  }
  for (const roomId of Object.keys(body.rooms?.invite ?? {})) {
    const m = memberships.get(roomId);
    const invite = m ? (await ctx.services.rooms.getEvents([m.eventId], { userId: requester.userId })).get(m.eventId) : undefined;
    const info: JsonObject = { room_id: roomId, membership: 'invite' };
    if (invite) info.invite = { ...invite, room_id: roomId } as unknown as JsonObject;
    rooms.push(info);
  }
  return { end: body.next_batch, rooms, presence: body.presence?.events ?? [], account_data: body.account_data?.events ?? [] };
}

/**
 * GET /rooms/{roomId}/initialSync: the room's state and latest messages for a
 * member, a former member (as the room reads show them: up to their leave),
 * or anyone peeking into a world-readable room; 403 otherwise.
 */
export async function roomInitialSync(ctx: Context, requester: Requester, roomId: string): Promise<JsonObject> {
  const rooms = ctx.services.rooms;
  const state = await rooms.roomState(requester, roomId);
  const page = (await rooms.messages(requester, roomId, { dir: 'b', limit: DEFAULT_LIMIT, filter: {} })) as { start: string; end?: string; chunk: ClientEvent[] };
  const membership = (await rooms.getMemberships(requester.userId)).find((m) => m.roomId === roomId)?.membership;
  const messages: JsonObject = { chunk: [...page.chunk].reverse().map(withRoom(roomId)) as unknown as JsonObject[], end: page.start };
  if (page.end !== undefined) messages.start = page.end;
  const out: JsonObject = {
    room_id: roomId,
    messages,
    state: state.map(withRoom(roomId)) as unknown as JsonObject[],
    visibility: await ctx.services.directory.getVisibility(roomId),
    presence: [],
  };
  if (membership !== undefined && membership !== 'knock') out.membership = membership;
  return out;
}
