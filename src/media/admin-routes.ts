/**
 * Server admins' media commands, in the Synapse admin API shapes that deployment tools use:
 * delete one item; purge a user's media; purge media uploaded before a time; purge the cache of
 * other servers' media by last access; list and purge the media a room's events refer to.
 * Every one answers 403 M_FORBIDDEN to a user who is not a server admin.
 */
import { forbidden } from '../http/errors.js';
import type { AuthedRequest, Route } from '../http/router.js';
import { mediaHandler } from './http-answers.js';
import type { MediaService } from './service.js';

const beforeQuery = {
  type: 'object',
  required: ['before_ts'],
  properties: { before_ts: { type: 'integer', minimum: 0 }, size_gt: { type: 'integer', minimum: 0 } },
};

function requireAdmin(req: AuthedRequest): void {
  if (!req.requester.isAdmin) throw forbidden('You are not a server admin');
}

export function adminRoutes(media: MediaService, infoUri: string): Route[] {
  const admin = { prefix: '/_synapse/admin', versions: ['v1'] as Route['versions'] };
  const remove = mediaHandler(infoUri, async (_reply, serverName: string, mediaId: string) => {
    await media.delete(serverName, mediaId);
    return { deleted_media: [mediaId], total: 1 };
  });
  const deleted = (ids: string[]) => ({ deleted_media: ids, total: ids.length });
  return [
    {
      ...admin,
      method: 'DELETE',
      path: '/media/:serverName/:mediaId',
      handler: (req, reply) => {
        requireAdmin(req);
        return remove(reply, req.params.serverName, req.params.mediaId);
      },
    },
    {
      ...admin,
      method: 'DELETE',
      path: '/users/:userId/media',
      handler: async (req) => {
        requireAdmin(req);
        return deleted(await media.retention.purgeUser(req.params.userId));
      },
    },
    {
      // Local media uploaded before `before_ts` (and larger than `size_gt` bytes).
      ...admin,
      method: 'POST',
      path: '/media/delete',
      schema: { querystring: beforeQuery },
      handler: async (req) => {
        requireAdmin(req);
        const q = req.query as { before_ts: number; size_gt?: number };
        return deleted(await media.retention.purgeOlderThan(q.before_ts, q.size_gt ?? 0));
      },
    },
    {
      // Cached media of other servers last served before `before_ts`.
      ...admin,
      method: 'POST',
      path: '/purge_media_cache',
      schema: { querystring: beforeQuery },
      handler: async (req) => {
        requireAdmin(req);
        return { deleted: await media.retention.purgeRemoteCache((req.query as { before_ts: number }).before_ts) };
      },
    },
    {
      ...admin,
      method: 'GET',
      path: '/room/:roomId/media',
      handler: async (req) => {
        requireAdmin(req);
        return media.retention.mediaOfRoom(req.params.roomId);
      },
    },
    {
      ...admin,
      method: 'DELETE',
      path: '/room/:roomId/media',
      handler: async (req) => {
        requireAdmin(req);
        return deleted(await media.retention.purgeRoom(req.params.roomId));
      },
    },
  ];
}
