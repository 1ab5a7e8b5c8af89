/**
 * The headers every media response carries (content_repo.md): a sandboxing
 * Content-Security-Policy, Cross-Origin-Resource-Policy, nosniff, and a Content-Disposition
 * that is `inline` only for types a browser cannot run as a page ("Serving inline content").
 */
import contentDisposition from 'content-disposition';

export const MEDIA_CSP =
  "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; style-src 'unsafe-inline'; media-src 'self'; object-src 'self';";

/** The spec's list of types that may be served inline (content_repo.md, "Serving inline content"). */
const INLINE_TYPES = new Set([
  'text/css',
  'text/plain',
  'text/csv',
  'application/json',
  'application/ld+json',
  'image/jpeg',
  'image/gif',
  'image/png',
  'image/apng',
  'image/webp',
  'image/avif',
  'video/mp4',
  'video/webm',
  'video/ogg',
  'video/quicktime',
  'audio/mp4',
  'audio/webm',
  'audio/aac',
  'audio/mpeg',
  'audio/ogg',
  'audio/wave',
  'audio/wav',
  'audio/x-wav',
  'audio/x-pn-wav',
  'audio/flac',
  'audio/x-flac',
]);

/** The media type without parameters, lowercased: `Text/Plain; charset=utf-8` -> `text/plain`. */
export function essence(contentType: string): string {
  return contentType.split(';')[0].trim().toLowerCase();
}

export function isInlineSafe(contentType: string): boolean {
  return INLINE_TYPES.has(essence(contentType));
}

/** `inline` or `attachment`, with the file name encoded per RFC 6266 / RFC 5987 when there is one. */
export function dispositionFor(contentType: string, fileName: string | null): string {
  const type = isInlineSafe(contentType) ? 'inline' : 'attachment';
  if (!fileName) return type;
  return contentDisposition(fileName, { type });
}

/** The headers for a media body of `contentType`, served under `fileName`. */
export function mediaHeaders(contentType: string, fileName: string | null, size?: number): Record<string, string> {
  const headers: Record<string, string> = {
    'content-type': contentType,
    'content-disposition': dispositionFor(contentType, fileName),
    'content-security-policy': MEDIA_CSP,
    'cross-origin-resource-policy': 'cross-origin',
    'x-content-type-options': 'nosniff',
    // Content under an mxc id never changes.
    'cache-control': 'private, max-age=31536000, immutable',
  };
  if (size !== undefined) headers['content-length'] = String(size);
  return headers;
}
