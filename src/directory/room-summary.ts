/**
 * GET /_matrix/client/v1/room_summary/{roomIdOrAlias} (room_summary.yaml, spec v1.15): the
 * summary a space hierarchy shows for one room, to whoever may see it there, plus the caller's
 * membership. Without a token only rooms anyone may find are summarised (join rule public, knock
 * or knock_restricted, or world-readable history). A room this server is not in is asked of the
 * servers in `via` (then those the alias named, then the server in the room ID) through the
 * federation `/hierarchy`, and shown under the same rule. A room no server describes, or the
 * caller may not see, is 404 M_NOT_FOUND alike, so the answer does not tell which.
 */
import type { Context } from '../context.js';
import { serverNameOf } from '../core/ids.js';
import type { JsonObject } from '../core/types.js';
import { notFound } from '../http/errors.js';
import { localView, RemoteWalk } from './hierarchy.js';

export async function roomSummary(ctx: Context, userId: string | undefined, roomIdOrAlias: string, via: string[] = []): Promise<JsonObject> {
  let roomId = roomIdOrAlias;
  const servers = [...via];
  if (roomIdOrAlias.startsWith('#')) {
    const resolved = await ctx.services.directory.resolveAlias(roomIdOrAlias);
    if (!resolved) throw notFound(`Room alias ${roomIdOrAlias} not found`);
    roomId = resolved.roomId;
    servers.push(...resolved.servers);
  }
  const idServer = serverNameOf(roomId);
  if (idServer !== undefined) servers.push(idServer);
  const memberships = new Map(userId ? (await ctx.services.rooms.getMemberships(userId)).map((m) => [m.roomId, m.membership as string]) : []);
  const local = await localView(ctx, roomId, memberships);
  const view = local === 'unknown' ? await new RemoteWalk(ctx, memberships, false).view(roomId, servers) : local === 'hidden' ? null : local;
  if (!view) throw notFound('Room not found');
  const membership = memberships.get(roomId);
  return { ...view.chunk, ...(membership ? { membership } : {}) };
}
