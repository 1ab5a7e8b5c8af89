/** Server admins' media commands (the Synapse admin API shape that deployment tools use). */
import { forbidden } from '../http/errors.js';
import type { Route } from '../http/router.js';
import { mediaHandler } from './http-answers.js';
import type { MediaService } from './service.js';

export function adminRoutes(media: MediaService, infoUri: string): Route[] {
  const remove = mediaHandler(infoUri, async (_reply, serverName: string, mediaId: string) => {
    await media.delete(serverName, mediaId);
    return { deleted_media: [mediaId], total: 1 };
  });
  return [
    {
      method: 'DELETE',
      path: '/media/:serverName/:mediaId',
      prefix: '/_synapse/admin',
      versions: ['v1'],
      handler: (req, reply) => {
        if (!req.requester.isAdmin) throw forbidden('You are not a server admin');
        return remove(reply, req.params.serverName, req.params.mediaId);
      },
    },
  ];
}
