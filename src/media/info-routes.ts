/** `config` and `preview_url`, both authenticated, under the client and the legacy media prefixes. */
import type { Route } from '../http/router.js';
import { mediaHandler } from './http-answers.js';
import type { MediaService } from './service.js';

const previewQuery = { type: 'object', required: ['url'], properties: { url: { type: 'string', minLength: 1 }, ts: { type: 'integer' } } };

export function infoRoutes(media: MediaService, infoUri: string): Route[] {
  const preview = mediaHandler(infoUri, async (_reply, url: string) => media.previews.preview(url));
  const places = [
    { prefix: '/_matrix/client', versions: ['v1'] as Route['versions'], base: '/media' },
    { prefix: '/_matrix/media', versions: ['v3', 'r0'] as Route['versions'], base: '' },
  ];
  return places.flatMap((p): Route[] => [
    {
      method: 'GET',
      path: `${p.base}/config`,
      prefix: p.prefix,
      versions: p.versions,
      handler: () => ({ 'm.upload.size': media.maxUploadBytes }),
    },
    {
      method: 'GET',
      path: `${p.base}/preview_url`,
      prefix: p.prefix,
      versions: p.versions,
      schema: { querystring: previewQuery },
      handler: (req, reply) => preview(reply, req.query.url),
    },
  ]);
}
