/**
 * A Matrix error: `{"errcode": "M_...", "error": "..."}` with the HTTP status
 * the spec names. Throw it anywhere in a request; the error handler answers it.
 */
export class MatrixError extends Error {
  constructor(
    readonly status: number,
    readonly errcode: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }

  toJSON(): Record<string, unknown> {
    return { errcode: this.errcode, error: this.message, ...this.extra };
  }
}

export const forbidden = (msg = 'Forbidden') => new MatrixError(403, 'M_FORBIDDEN', msg);
export const notFound = (msg = 'Not found') => new MatrixError(404, 'M_NOT_FOUND', msg);
export const badJson = (msg: string) => new MatrixError(400, 'M_BAD_JSON', msg);
export const notJson = (msg = 'Content not JSON.') => new MatrixError(400, 'M_NOT_JSON', msg);
export const missingParam = (msg: string) => new MatrixError(400, 'M_MISSING_PARAM', msg);
export const invalidParam = (msg: string) => new MatrixError(400, 'M_INVALID_PARAM', msg);
export const unknownToken = (msg = 'Unknown access token', softLogout = false) =>
  new MatrixError(401, 'M_UNKNOWN_TOKEN', msg, softLogout ? { soft_logout: true } : {});
export const missingToken = () => new MatrixError(401, 'M_MISSING_TOKEN', 'Missing access token');
export const limitExceeded = (retryAfterMs: number) =>
  new MatrixError(429, 'M_LIMIT_EXCEEDED', 'Too many requests', { retry_after_ms: retryAfterMs });
export const unrecognized = (msg = 'Unrecognized request') => new MatrixError(404, 'M_UNRECOGNIZED', msg);
export const tooLarge = (msg = 'Request too large') => new MatrixError(413, 'M_TOO_LARGE', msg);
export const userInUse = () => new MatrixError(400, 'M_USER_IN_USE', 'User ID already taken');
export const invalidUsername = (msg: string) => new MatrixError(400, 'M_INVALID_USERNAME', msg);
export const unsupportedRoomVersion = (v: string) =>
  new MatrixError(400, 'M_UNSUPPORTED_ROOM_VERSION', `Room version ${v} is not supported`);
/** A guest account called an endpoint guests may not use, or guest access is off (spec: modules/guest_access). */
export const guestAccessForbidden = (msg = 'Guest accounts may not use this endpoint') => new MatrixError(403, 'M_GUEST_ACCESS_FORBIDDEN', msg);
export const roomInUse = () => new MatrixError(400, 'M_ROOM_IN_USE', 'Room alias already taken');
export const unknownError = (msg: string) => new MatrixError(500, 'M_UNKNOWN', msg);
/** The database could not be reached (a failover, a cut link): temporary, worth retrying. */
export const databaseUnavailable = () => new MatrixError(503, 'M_UNKNOWN', 'The database is unavailable; try again shortly');
export const userLocked = () => new MatrixError(401, 'M_USER_LOCKED', 'This account has been locked', { soft_logout: true });
export const inviteBlocked = (userId: string) => new MatrixError(403, 'M_INVITE_BLOCKED', `${userId} does not accept invites`);
export const userSuspended = () => new MatrixError(403, 'M_USER_SUSPENDED', 'You cannot perform this action while suspended');
