/**
 * This server's media for other servers (server-server content_repository.yaml):
 * `GET /_matrix/federation/v1/media/download/{mediaId}` and `.../thumbnail/{mediaId}`, X-Matrix
 * authenticated, answered as `multipart/mixed`: `{}` metadata, then the bytes with their
 * Content-Type and Content-Disposition. Only local media is served; what this server cached
 * from others is theirs to serve.
 */
import type { Readable } from 'node:stream';
import type { FederationRoute } from '../federation/router.js';
import { dispositionFor } from './content-headers.js';
import { MediaError } from './errors.js';
import { toMatrixError } from './http-answers.js';
import type { MediaService } from './service.js';
import { encodeMultipart, newBoundary } from './multipart.js';
import { MAX_THUMBNAIL_DIMENSION } from './thumbnail-sizes.js';

const timeoutQuery = { type: 'object', properties: { timeout_ms: { type: 'integer', minimum: 0 } } };
const thumbnailQuery = {
  type: 'object',
  required: ['width', 'height'],
  properties: {
    width: { type: 'integer', minimum: 1 },
    height: { type: 'integer', minimum: 1 },
    method: { type: 'string', enum: ['crop', 'scale'] },
    animated: { type: 'boolean' },
    timeout_ms: { type: 'integer', minimum: 0 },
  },
};

/** Domain errors as the spec's Matrix errors, thrown for the federation router to answer. */
async function mapped<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (e) {
    if (e instanceof MediaError) throw toMatrixError(e, '');
    throw e;
  }
}

export function federationMediaRoutes(media: MediaService): FederationRoute[] {
  const multipart = (reply: { header(k: string, v: string): unknown }, contentType: string, fileName: string | null, body: Readable): Readable => {
    const boundary = newBoundary();
    reply.header('content-type', `multipart/mixed; boundary=${boundary}`);
    return encodeMultipart(boundary, {}, { 'Content-Type': contentType, 'Content-Disposition': dispositionFor(contentType, fileName) }, body);
  };
  return [
    {
      method: 'GET',
      url: '/_matrix/federation/v1/media/download/:mediaId',
      schema: { querystring: timeoutQuery },
      handler: (req, reply) =>
        mapped(async () => {
          const row = await media.get(media.serverName, req.params.mediaId, { timeoutMs: req.query.timeout_ms });
          const type = row.content_type ?? 'application/octet-stream';
          return multipart(reply, type, row.upload_name, await media.open(row.sha256!));
        }),
    },
    {
      method: 'GET',
      url: '/_matrix/federation/v1/media/thumbnail/:mediaId',
      schema: { querystring: thumbnailQuery },
      handler: (req, reply) =>
        mapped(async () => {
          const row = await media.get(media.serverName, req.params.mediaId, { timeoutMs: req.query.timeout_ms });
          const want = {
            width: Math.min(req.query.width, MAX_THUMBNAIL_DIMENSION),
            height: Math.min(req.query.height, MAX_THUMBNAIL_DIMENSION),
            method: (req.query.method ?? 'scale') as 'crop' | 'scale',
          };
          const answer = await media.thumbnails.thumbnail(row, want, req.query.animated === true);
          if (answer === 'original') return multipart(reply, row.content_type!, null, await media.open(row.sha256!));
          return multipart(reply, answer.contentType, null, await media.open(answer.sha256));
        }),
    },
  ];
}
