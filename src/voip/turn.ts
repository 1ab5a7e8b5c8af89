import { createHmac } from 'node:crypto';

/**
 * Time-limited TURN credentials in coturn's shared-secret mode
 * (`use-auth-secret` with `static-auth-secret`): the username is the expiry
 * (Unix seconds) and the user id, the password the base64 HMAC-SHA1 of the
 * username under the shared secret. coturn checks both without asking us.
 */
export interface TurnCredentials {
  username: string;
  password: string;
  uris: string[];
  /** Seconds the credentials stay valid. */
  ttl: number;
}

export function turnCredentials(secret: string, uris: string[], ttlSeconds: number, userId: string, nowMs: number): TurnCredentials {
  const expiry = Math.floor(nowMs / 1000) + ttlSeconds;
  const username = `${expiry}:${userId}`;
  const password = createHmac('sha1', secret).update(username).digest('base64');
  return { username, password, uris, ttl: ttlSeconds };
}
