/**
 * What can go wrong in the media domain, named for the domain. The routes map each kind to
 * the Matrix error the spec names (see http-answers.ts).
 */
export type MediaErrorKind =
  | 'not_found'
  | 'not_yet_uploaded'
  | 'cannot_overwrite'
  | 'forbidden'
  | 'too_large'
  | 'quota_exceeded'
  | 'cannot_thumbnail'
  | 'bad_request'
  | 'preview_failed'
  | 'rate_limited'
  | 'remote_failed'
  /** The bytes a row was about to refer to were deleted meanwhile (content-lock.ts); a retry stores them again. */
  | 'content_lost';

export class MediaError extends Error {
  constructor(
    readonly kind: MediaErrorKind,
    message: string,
    /** The errcode to answer with, where the kind's usual one does not fit. */
    readonly errcode?: string,
  ) {
    super(message);
  }
}

export const mediaNotFound = (msg = 'Media not found') => new MediaError('not_found', msg);
