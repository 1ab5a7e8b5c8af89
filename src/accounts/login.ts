import type { Context } from '../context.js';
import { MatrixError, forbidden, missingParam, userLocked } from '../http/errors.js';
import { canonicalEmail } from '../threepid/address.js';
import { identifiedUserId, type NamedThreepid } from './identifiers.js';
import { selectThreepidOwner } from './threepids-table.js';
import { verifyPassword } from './password-hash.js';
import { sessionAnswer } from './registration.js';
import type { LoginTokens } from './login-token.js';
import type { Sessions } from './sessions.js';
import { StageFailed, type UiaRequest } from './uia.js';
import { getUser } from './user-store.js';

export interface LoginBody {
  type: string;
  identifier?: Record<string, unknown>;
  user?: string;
  medium?: string;
  address?: string;
  password?: string;
  /** The `m.login.token` flow's token. */
  token?: string;
  device_id?: string;
  initial_device_display_name?: string;
  refresh_token?: boolean;
}

/** POST /login with `m.login.password` or `m.login.token`, and the `m.login.password` stage of user-interactive auth. */
export class Login {
  constructor(
    private readonly ctx: Context,
    private readonly sessions: Sessions,
    private readonly tokens: LoginTokens,
  ) {}

  flows(): { flows: { type: string; get_login_token?: boolean }[] } {
    // `get_login_token` tells a client it can make tokens for the m.login.token flow itself.
    return { flows: [{ type: 'm.login.password' }, ...(this.tokens.enabled ? [{ type: 'm.login.token', get_login_token: true }] : [])] };
  }

  /** The account a named identifier means: a user id as is, a third-party identifier by the account it was added to. */
  private async resolveNamed(named: string | NamedThreepid | undefined): Promise<string | undefined> {
    if (named === undefined || typeof named === 'string') return named;
    if (named.medium !== 'email') return undefined;
    let address: string;
    try {
      address = canonicalEmail(named.address);
    } catch {
      return undefined;
    }
    return selectThreepidOwner(this.ctx.db, 'email', address);
  }

  /**
   * The user id when `password` is theirs, else undefined. Unknown users,
   * other servers' users and third-party ids cost the same scrypt work as a
   * real check, so timing does not reveal who has an account.
   */
  private async passwordOwner(userId: string | undefined, password: string): Promise<string | undefined> {
    const user = userId ? await getUser(this.ctx.db, userId) : undefined;
    const ok = await verifyPassword(password, user && !user.deactivated ? user.password_hash : null);
    return ok ? userId : undefined;
  }

  async login(body: LoginBody, ip: string | undefined): Promise<Record<string, unknown>> {
    const userId = body.type === 'm.login.token' && this.tokens.enabled ? await this.tokenOwner(body) : await this.passwordLogin(body);
    // A locked account gets no new access token until it is unlocked (client-server-api "Soft logout").
    if ((await getUser(this.ctx.db, userId))?.locked === 1) throw userLocked();
    const session = await this.sessions.open({
      userId,
      deviceId: body.device_id,
      displayName: body.initial_device_display_name,
      withRefresh: body.refresh_token === true,
      ip,
    });
    return sessionAnswer(this.ctx.serverName, session);
  }

  private async passwordLogin(body: LoginBody): Promise<string> {
    if (body.type !== 'm.login.password') throw new MatrixError(400, 'M_UNKNOWN', `Unknown login type ${body.type}`);
    if (body.password === undefined) throw missingParam('Missing password');
    const named = await this.resolveNamed(identifiedUserId(body as unknown as Record<string, unknown>, this.ctx.serverName));
    const userId = await this.passwordOwner(named, body.password);
    if (!userId) throw forbidden('Invalid username or password');
    return userId;
  }

  /** The spec: an invalid token is 403 M_FORBIDDEN. A token outlives nothing: it is used up here. */
  private async tokenOwner(body: LoginBody): Promise<string> {
    if (body.token === undefined) throw missingParam('Missing token');
    const userId = await this.tokens.consume(body.token);
    const user = userId ? await getUser(this.ctx.db, userId) : undefined;
    if (!userId || !user || user.deactivated) throw forbidden('Invalid or expired login token');
    return userId;
  }

  /** The `m.login.password` stage: the password must be the requesting user's own. */
  readonly checkPasswordStage = async (auth: Record<string, unknown>, req: UiaRequest): Promise<void> => {
    if (typeof auth.password !== 'string') throw new StageFailed('M_MISSING_PARAM', 'Missing password');
    // Password guesses through user-interactive auth spend the same budget as logins (a stolen token must not help guessing).
    await this.ctx.rateLimiter.check('login', req.userId ?? 'uia');
    // The requester is known; an auth dict that names nobody means them.
    const namesSomeone = ['identifier', 'user', 'medium', 'address'].some((k) => auth[k] !== undefined);
    let named: string | undefined;
    try {
      named = namesSomeone ? await this.resolveNamed(identifiedUserId(auth, this.ctx.serverName)) : (req.userId ?? undefined);
    } catch (e) {
      if (e instanceof MatrixError) throw new StageFailed(e.errcode, e.message);
      throw e;
    }
    const owner = await this.passwordOwner(named, auth.password);
    if (!owner || owner !== req.userId) throw new StageFailed('M_FORBIDDEN', 'Invalid password');
  };
}
