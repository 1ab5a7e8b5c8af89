/**
 * Serving media (authed-content-repo.yaml, content-repo.yaml): download and thumbnail, under
 * `/_matrix/client/v1/media` (authenticated) and the legacy `/_matrix/media/v3` (unauthenticated,
 * and frozen at `media.legacy_freeze_ts` when that is set: newer media is 404 there). Media of
 * other servers is fetched over federation for the authenticated endpoints only: the legacy
 * ones serve this server's media (as other servers' legacy fallbacks ask with allow_remote=false).
 */
import type { FastifyReply } from 'fastify';
import { isValidServerName } from '../core/ids.js';
import type { Route } from '../http/router.js';
import { mediaNotFound } from './errors.js';
import { mediaHandler, requestedRange, sendMedia, sendMediaRange } from './http-answers.js';
import type { MediaService } from './service.js';
import { isValidMediaId } from './media-id.js';
import { MAX_THUMBNAIL_DIMENSION } from './thumbnail-sizes.js';
import { normaliseFileName } from './upload.js';

const timeoutQuery = { type: 'object', properties: { timeout_ms: { type: 'integer', minimum: 0 }, allow_redirect: { type: 'boolean' } } };
const thumbnailQuery = {
  type: 'object',
  required: ['width', 'height'],
  properties: {
    width: { type: 'integer', minimum: 1 },
    height: { type: 'integer', minimum: 1 },
    method: { type: 'string', enum: ['crop', 'scale'] },
    animated: { type: 'boolean' },
    timeout_ms: { type: 'integer', minimum: 0 },
    allow_redirect: { type: 'boolean' },
  },
};

interface DownloadParams {
  serverName: string;
  mediaId: string;
  fileName?: string;
}

interface ThumbnailQuery {
  width: number;
  height: number;
  method?: 'crop' | 'scale';
  animated?: boolean;
  timeout_ms?: number;
}

/** How long the origin may take to have the content (its own `timeout_ms`), capped like local waits. */
const remoteWait = (timeoutMs: number | undefined) => Math.min(timeoutMs ?? 20_000, 60_000);

export function downloadRoutes(media: MediaService, infoUri: string, legacyFreezeTs: number | null): Route[] {
  /** The row to serve: local media, or the cached copy of another server's (authenticated endpoints only). */
  const served = async (p: DownloadParams, timeoutMs: number | undefined, legacy: boolean): Promise<{ sha256: string | null; size: number; content_type: string | null; upload_name: string | null }> => {
    if (media.isLocal(p.serverName)) return media.get(p.serverName, p.mediaId, { timeoutMs, uploadedBefore: legacy ? legacyFreezeTs : null });
    if (legacy || !isValidServerName(p.serverName) || !isValidMediaId(p.mediaId)) throw mediaNotFound();
    return media.remote.get(p.serverName, p.mediaId, remoteWait(timeoutMs));
  };
  const download = mediaHandler(infoUri, async (reply: FastifyReply, p: DownloadParams, q: { timeout_ms?: number }, legacy: boolean, rangeHeader: string | undefined) => {
    const row = await served(p, q.timeout_ms, legacy);
    const name = p.fileName === undefined ? row.upload_name : normaliseFileName(p.fileName);
    const type = row.content_type ?? 'application/octet-stream';
    // Ranges let browsers seek in audio and video (Safari plays video only with them).
    const range = requestedRange(rangeHeader, row.size);
    if (range === 'unsatisfiable') {
      return reply.code(416).header('content-range', `bytes */${row.size}`).send({ errcode: 'M_UNKNOWN', error: 'Requested range not satisfiable' });
    }
    if (range) return sendMediaRange(reply, await media.open(row.sha256!, range), type, name, row.size, range);
    return sendMedia(reply, await media.open(row.sha256!), type, name, row.size);
  });

  const thumbnail = mediaHandler(infoUri, async (reply: FastifyReply, p: DownloadParams, q: ThumbnailQuery, legacy: boolean) => {
    const want = {
      width: Math.min(q.width, MAX_THUMBNAIL_DIMENSION),
      height: Math.min(q.height, MAX_THUMBNAIL_DIMENSION),
      method: q.method ?? 'scale',
    };
    if (!media.isLocal(p.serverName)) {
      if (legacy || !isValidServerName(p.serverName) || !isValidMediaId(p.mediaId)) throw mediaNotFound();
      const t = await media.remote.thumbnail(p.serverName, p.mediaId, want, q.animated === true, remoteWait(q.timeout_ms));
      return sendMedia(reply, await media.open(t.sha256), t.content_type, `thumbnail.${t.content_type.split('/')[1]?.split(';')[0] ?? 'bin'}`, t.size);
    }
    const row = await media.get(p.serverName, p.mediaId, { timeoutMs: q.timeout_ms, uploadedBefore: legacy ? legacyFreezeTs : null });
    const answer = await media.thumbnails.thumbnail(row, want, q.animated === true);
    if (answer === 'original') {
      const type = row.content_type!;
      return sendMedia(reply, await media.open(row.sha256!), type, `thumbnail.${type.split('/')[1].split(';')[0]}`, row.size);
    }
    const ext = answer.contentType.split('/')[1];
    return sendMedia(reply, await media.open(answer.sha256), answer.contentType, `thumbnail.${ext}`, answer.size);
  });

  const routes: Route[] = [];
  for (const legacy of [false, true]) {
    const where = legacy
      ? { prefix: '/_matrix/media', versions: ['v3', 'r0'] as Route['versions'], auth: 'none' as const, base: '' }
      : { prefix: '/_matrix/client', versions: ['v1'] as Route['versions'], auth: 'required' as const, base: '/media' };
    // Guests may fetch media (spec: modules/guest_access).
    const common = { prefix: where.prefix, versions: where.versions, auth: where.auth, guestAllowed: true };
    routes.push(
      {
        ...common,
        method: 'GET',
        path: `${where.base}/download/:serverName/:mediaId`,
        schema: { querystring: timeoutQuery },
        handler: (req, reply) => download(reply, req.params, req.query, legacy, req.headers.range),
      },
      {
        ...common,
        method: 'GET',
        path: `${where.base}/download/:serverName/:mediaId/:fileName`,
        schema: { querystring: timeoutQuery },
        handler: (req, reply) => download(reply, req.params, req.query, legacy, req.headers.range),
      },
      {
        ...common,
        method: 'GET',
        path: `${where.base}/thumbnail/:serverName/:mediaId`,
        schema: { querystring: thumbnailQuery },
        handler: (req, reply) => thumbnail(reply, req.params, req.query, legacy),
      },
    );
  }
  return routes;
}
