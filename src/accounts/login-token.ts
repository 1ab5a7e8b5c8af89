/**
 * Login tokens (client-server-api "Login", `POST /login/get_token`, spec v1.7): a logged-in user
 * makes a single-use, short-lived token with which another client logs in as them through the
 * `m.login.token` flow. Only the token's digest is stored; using it deletes it.
 */
import { randomBytes } from 'node:crypto';
import type { Context } from '../context.js';
import { MatrixError } from '../http/errors.js';
import type { Requester } from '../http/requester.js';
import { consumeLoginToken, insertLoginToken } from './login-tokens-table.js';
import { tokenHash } from './secrets.js';
import { deleteUiaSession } from './uia-session-store.js';
import type { UiaRequest, UserInteractiveAuth } from './uia.js';

const PASSWORD_FLOWS = [['m.login.password']];

export class LoginTokens {
  constructor(
    private readonly ctx: Context,
    private readonly uia: UserInteractiveAuth,
  ) {}

  get enabled(): boolean {
    return this.ctx.config.login_token.enabled;
  }

  /** POST /login/get_token: the user proves it is them (every time), then gets a token. */
  async generate(requester: Requester, body: { auth?: unknown }, req: Omit<UiaRequest, 'body' | 'userId'>): Promise<{ login_token: string; expires_in_ms: number }> {
    // The spec's answer when the user may not make tokens (the m.get_login_token capability says so too).
    if (!this.enabled) throw new MatrixError(400, 'M_FORBIDDEN', 'Login tokens are disabled on this server');
    await this.uia.check({ ...req, body, userId: requester.userId }, PASSWORD_FLOWS);
    // The spec requires a fresh prompt for every token: the completed session cannot be used again.
    const session = (body.auth as { session?: unknown } | undefined)?.session;
    if (typeof session === 'string') await deleteUiaSession(this.ctx.db, session);
    const token = `hlt_${randomBytes(32).toString('base64url')}`;
    const now = this.ctx.now();
    const lifetime = this.ctx.config.login_token.lifetime_ms;
    await insertLoginToken(this.ctx.db, { token_hash: tokenHash(token), user_id: requester.userId, expires_ts: now + lifetime }, now);
    return { login_token: token, expires_in_ms: lifetime };
  }

  /** The user a live token was made for; the token is used up. Null when unknown, used or expired. */
  consume(token: string): Promise<string | null> {
    return consumeLoginToken(this.ctx.db, tokenHash(token), this.ctx.now());
  }
}
