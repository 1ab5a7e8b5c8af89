/**
 * The HTTP side of the media domain: its errors as the Matrix errors the spec names, and media
 * bodies sent with the safety headers (content-headers.ts).
 */
import type { Readable } from 'node:stream';
import type { FastifyReply } from 'fastify';
import { MatrixError } from '../http/errors.js';
import { MEDIA_CSP, mediaHeaders } from './content-headers.js';
import { MediaError } from './errors.js';
import type { ByteRange } from './media-store.js';

/** The spec's error for each media failure (authed-content-repo.yaml, content-repo.yaml). */
export function toMatrixError(e: MediaError, infoUri: string): MatrixError {
  switch (e.kind) {
    case 'not_found':
      return new MatrixError(404, 'M_NOT_FOUND', e.message);
    case 'not_yet_uploaded':
      return new MatrixError(504, 'M_NOT_YET_UPLOADED', e.message);
    case 'cannot_overwrite':
      return new MatrixError(409, 'M_CANNOT_OVERWRITE_MEDIA', e.message);
    case 'forbidden':
      return new MatrixError(403, 'M_FORBIDDEN', e.message);
    case 'too_large':
      return new MatrixError(413, 'M_TOO_LARGE', e.message);
    case 'quota_exceeded':
      // Matrix 1.18 names a storage quota M_USER_LIMIT_EXCEEDED; the upload endpoints answer 403 for a quota.
      return new MatrixError(403, 'M_USER_LIMIT_EXCEEDED', e.message, { info_uri: infoUri, can_upgrade: false });
    case 'cannot_thumbnail':
      return new MatrixError(400, 'M_UNKNOWN', e.message);
    case 'bad_request':
      return new MatrixError(400, 'M_INVALID_PARAM', e.message);
    case 'preview_failed':
      return new MatrixError(502, 'M_UNKNOWN', e.message);
    case 'remote_failed':
      return new MatrixError(502, e.errcode ?? 'M_UNKNOWN', e.message);
    case 'content_lost':
      return new MatrixError(503, 'M_UNKNOWN', e.message);
    case 'rate_limited':
      return new MatrixError(429, 'M_LIMIT_EXCEEDED', e.message, { retry_after_ms: 60_000 });
  }
}

/** Runs a media handler with the safety headers set first (errors carry them too) and domain errors mapped. */
export function mediaHandler<A extends unknown[], R>(infoUri: string, fn: (reply: FastifyReply, ...args: A) => Promise<R>) {
  return async (reply: FastifyReply, ...args: A): Promise<R> => {
    reply.header('content-security-policy', MEDIA_CSP);
    reply.header('cross-origin-resource-policy', 'cross-origin');
    reply.header('x-content-type-options', 'nosniff');
    try {
      return await fn(reply, ...args);
    } catch (e) {
      if (!(e instanceof MediaError)) throw e;
      // Answered here rather than thrown: a 502 from a previewed site or a 504 for content not yet
      // uploaded is the expected answer, not a server failure for the error log.
      const err = toMatrixError(e, infoUri);
      return reply.code(err.status).send(err.toJSON()) as R;
    }
  };
}

export function sendMedia(reply: FastifyReply, body: Readable, contentType: string, fileName: string | null, size: number): FastifyReply {
  return reply.code(200).headers(mediaHeaders(contentType, fileName, size)).header('accept-ranges', 'bytes').send(body);
}

/** The one byte range a `Range` header asks for; 'unsatisfiable', or undefined to send everything (RFC 9110 §14). */
export function requestedRange(header: string | undefined, size: number): ByteRange | 'unsatisfiable' | undefined {
  const m = header ? /^bytes=(\d*)-(\d*)$/.exec(header.trim()) : null;
  // Absent, malformed or multi-range requests get the whole content, which the RFC allows.
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  let start: number;
  let end: number;
  if (m[1] === '') {
    // A suffix: the last N bytes.
    const n = Number(m[2]);
    if (n === 0) return 'unsatisfiable';
    start = Math.max(0, size - n);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
    if (end < start && m[2] !== '') return undefined;
  }
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}

/** A 206 answer with the part of the content in `range`. */
export function sendMediaRange(reply: FastifyReply, body: Readable, contentType: string, fileName: string | null, size: number, range: ByteRange): FastifyReply {
  return reply
    .code(206)
    .headers(mediaHeaders(contentType, fileName, range.end - range.start + 1))
    .header('accept-ranges', 'bytes')
    .header('content-range', `bytes ${range.start}-${range.end}/${size}`)
    .send(body);
}
