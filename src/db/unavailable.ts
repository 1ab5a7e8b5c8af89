/**
 * Whether an error means the database could not be reached or lost the connection (a failover, a
 * restart, a cut link), as opposed to a statement that failed: the first is worth retrying in a
 * moment, on this node or another; the second is a bug or bad input.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 3; e = e.cause as typeof e, depth++) {
    const code = typeof e.code === 'string' ? e.code : '';
    if (CLIENT_CODES.has(code) || SQLSTATES.has(code) || code.startsWith('08')) return true;
  }
  return false;
}

/** postgres.js's connection errors, and the socket errors it passes on. */
const CLIENT_CODES = new Set([
  'CONNECTION_CLOSED',
  'CONNECTION_DESTROYED',
  'CONNECTION_ENDED',
  'CONNECT_TIMEOUT',
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

/**
 * PostgreSQL's own (class 08, connection exceptions, is matched by prefix): the server shutting
 * down or starting up, too many connections, and a standby reached during a failover refusing a
 * write (25006).
 */
const SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300', '25006']);
