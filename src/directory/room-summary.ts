/**
 * GET /_matrix/client/v1/room_summary/{roomIdOrAlias} (room_summary.yaml, spec v1.15): the
 * summary a space hierarchy shows for one room, to whoever may see it there, plus the caller's
 * membership. Without a token only rooms anyone may find are summarised (join rule public, knock
 * or knock_restricted, or world-readable history). A room this server does not hold, or the
 * caller may not see, is 404 M_NOT_FOUND alike, so the answer does not tell which.
 */
import type { Context } from '../context.js';
import type { JsonObject } from '../core/types.js';
import { notFound } from '../http/errors.js';
import { roomView } from './hierarchy.js';

export async function roomSummary(ctx: Context, userId: string | undefined, roomIdOrAlias: string): Promise<JsonObject> {
  let roomId = roomIdOrAlias;
  if (roomIdOrAlias.startsWith('#')) {
    const resolved = await ctx.services.directory.resolveAlias(roomIdOrAlias);
    if (!resolved) throw notFound(`Room alias ${roomIdOrAlias} not found`);
    roomId = resolved.roomId;
  }
  const memberships = new Map(userId ? (await ctx.services.rooms.getMemberships(userId)).map((m) => [m.roomId, m.membership as string]) : []);
  const view = await roomView(ctx, roomId, memberships);
  if (!view) throw notFound('Room not found');
  const membership = memberships.get(roomId);
  return { ...view.chunk, ...(membership ? { membership } : {}) };
}
