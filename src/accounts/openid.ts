/**
 * OpenID tokens (client-server openid.yaml, server-server openid.yaml): a
 * user asks for a short-lived token and hands it to a third party, which
 * asks this server's federation API who the token belongs to. The token
 * proves only the user's identity: it is no access token, and only its
 * digest is stored.
 */
import type { Context } from '../context.js';
import { forbidden } from '../http/errors.js';
import type { Requester } from '../http/requester.js';
import { insertOpenIdToken, selectOpenIdUser } from './openid-tokens-table.js';
import { randomBytes } from 'node:crypto';
import { tokenHash } from './secrets.js';

const LIFETIME_S = 3600;

export async function requestOpenIdToken(
  ctx: Context,
  requester: Requester,
  userId: string,
): Promise<{ access_token: string; token_type: 'Bearer'; matrix_server_name: string; expires_in: number }> {
  if (userId !== requester.userId) throw forbidden('You may only ask for an OpenID token for yourself');
  const token = randomBytes(32).toString('base64url');
  const now = ctx.now();
  await insertOpenIdToken(ctx.db, { token_hash: tokenHash(token), user_id: userId, expires_ts: now + LIFETIME_S * 1000 }, now);
  return { access_token: token, token_type: 'Bearer', matrix_server_name: ctx.serverName, expires_in: LIFETIME_S };
}

/** The user a live OpenID token was issued to, or null. */
export function openIdTokenUser(ctx: Context, token: string): Promise<string | null> {
  return selectOpenIdUser(ctx.db, tokenHash(token), ctx.now());
}
