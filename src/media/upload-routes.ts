/**
 * Uploads (content-repo.yaml): `POST /_matrix/media/v3/upload`, and the asynchronous pair
 * `POST /_matrix/media/v1/create` then `PUT /_matrix/media/v3/upload/{serverName}/{mediaId}`.
 * The body is streamed (rawBody), never parsed.
 */
import { Readable } from 'node:stream';
import type { Route } from '../http/router.js';
import type { AuthedRequest } from '../http/router.js';
import { mediaHandler } from './http-answers.js';
import type { MediaService } from './service.js';
import type { UploadInput } from './upload.js';

const fileNameQuery = { type: 'object', properties: { filename: { type: 'string' } } };

function uploadInput(req: AuthedRequest & { body: unknown; query: { filename?: string } }): UploadInput {
  const length = req.headers['content-length'];
  const declared = length !== undefined && /^\d+$/.test(length) ? Number(length) : undefined;
  return {
    userId: req.requester.userId,
    contentType: req.headers['content-type'],
    fileName: req.query.filename,
    body: req.body instanceof Readable ? req.body : req.raw,
    declaredLength: declared,
  };
}

export function uploadRoutes(media: MediaService, infoUri: string): Route[] {
  const upload = mediaHandler(infoUri, async (_reply, req: Parameters<typeof uploadInput>[0]) => ({
    content_uri: await media.upload(uploadInput(req)),
  }));
  const uploadTo = mediaHandler(infoUri, async (_reply, req: Parameters<typeof uploadInput>[0] & { params: { serverName: string; mediaId: string } }) => {
    await media.uploadTo(req.params.serverName, req.params.mediaId, uploadInput(req));
    return {};
  });
  const create = mediaHandler(infoUri, async (_reply, userId: string) => media.create(userId));
  return [
    {
      method: 'POST',
      path: '/upload',
      prefix: '/_matrix/media',
      versions: ['v3', 'r0'],
      rawBody: true,
      schema: { querystring: fileNameQuery },
      handler: (req, reply) => upload(reply, req),
    },
    {
      method: 'PUT',
      path: '/upload/:serverName/:mediaId',
      prefix: '/_matrix/media',
      versions: ['v3'],
      rawBody: true,
      schema: { querystring: fileNameQuery },
      handler: (req, reply) => uploadTo(reply, req),
    },
    {
      method: 'POST',
      path: '/create',
      prefix: '/_matrix/media',
      versions: ['v1'],
      handler: (req, reply) => create(reply, req.requester.userId),
    },
  ];
}
