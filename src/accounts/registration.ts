import type { Context } from '../context.js';
import { MatrixError, forbidden, guestAccessForbidden, invalidUsername, missingParam, userInUse } from '../http/errors.js';
import { checkNewPassword, hashPassword } from './password-hash.js';
import { secretsEqual } from './secrets.js';
import { insertNewUser } from './new-user.js';
import { Sessions, type OpenedSession } from './sessions.js';
import type { ValidatedThreepid } from './email-validation.js';
import type { Threepids } from './threepids.js';
import { StageFailed, type UiaRequest, type UserInteractiveAuth } from './uia.js';
import { getUser, upgradeGuest } from './user-store.js';
import { checkRegistrationLocalpart, generateLocalpart, normaliseLocalpart } from './user-ids.js';

export interface RegisterBody {
  auth?: Record<string, unknown>;
  username?: string;
  password?: string;
  device_id?: string;
  initial_device_display_name?: string;
  inhibit_login?: boolean;
  refresh_token?: boolean;
  /** Upgrades this guest account to a full one (spec: modules/guest_access). */
  guest_access_token?: string;
}

/** What login and registration answer. */
export function sessionAnswer(serverName: string, s: OpenedSession): Record<string, unknown> {
  const out: Record<string, unknown> = {
    user_id: s.userId,
    access_token: s.accessToken,
    device_id: s.deviceId,
    home_server: serverName,
  };
  if (s.refreshToken !== undefined) {
    out.refresh_token = s.refreshToken;
    out.expires_in_ms = s.expiresInMs;
  }
  return out;
}

/** POST /register and its helpers (spec: "Account registration", "Token-authenticated registration"). */
export class Registration {
  constructor(
    private readonly ctx: Context,
    private readonly sessions: Sessions,
    private readonly uia: UserInteractiveAuth,
    private readonly threepids: Threepids,
  ) {}

  /** The `m.login.registration_token` stage. */
  readonly checkTokenStage = async (auth: Record<string, unknown>): Promise<void> => {
    if (typeof auth.token !== 'string') throw new StageFailed('M_MISSING_PARAM', 'Missing registration token');
    if (!this.tokenIsValid(auth.token)) throw new StageFailed('M_FORBIDDEN', 'Invalid registration token');
  };

  /** Every configured token is compared, in constant time each, so the answer time says nothing about near misses. */
  private tokenIsValid(token: string): boolean {
    let ok = false;
    for (const t of this.ctx.config.registration_tokens) ok = secretsEqual(t, token) || ok;
    return ok;
  }

  /**
   * With email configured, each flow may also end with `m.login.email.identity`: the validated
   * address is then added to the new account.
   */
  private flows(): string[][] {
    const base = this.ctx.config.registration === 'token' ? [['m.login.registration_token']] : [['m.login.dummy']];
    if (!this.ctx.config.email) return base;
    const withEmail = base.map((f) => [...f.filter((s) => s !== 'm.login.dummy'), 'm.login.email.identity']);
    return [...base, ...withEmail];
  }

  private ensureOpen(): void {
    if (this.ctx.config.registration === 'closed') throw forbidden('Registration is disabled on this homeserver');
  }

  async register(body: RegisterBody, kind: string, req: Omit<UiaRequest, 'body' | 'userId'> & { ip?: string }): Promise<Record<string, unknown>> {
    if (kind === 'guest') return this.registerGuest(body, req.ip);
    this.ensureOpen();
    const { serverName } = this.ctx;
    const guest = body.guest_access_token !== undefined ? await this.guestToUpgrade(body) : undefined;

    // The spec wants username problems reported before user-interactive auth.
    let localpart: string | undefined;
    if (guest !== undefined) {
      localpart = guest.slice(1, guest.indexOf(':'));
    } else if (body.username !== undefined) {
      localpart = normaliseLocalpart(body.username);
      checkRegistrationLocalpart(localpart, serverName);
      if (await getUser(this.ctx.db, `@${localpart}:${serverName}`)) throw userInUse();
    }
    if (body.device_id !== undefined) Sessions.validateDeviceId(body.device_id);
    // Checked once the client attempts auth, so that a stage is not spent on a request that cannot succeed.
    if (body.auth !== undefined && body.auth !== null) {
      if (body.password === undefined) throw missingParam('Missing password');
      checkNewPassword(body.password);
    }

    const results = await this.uia.check({ ...req, body: body as Record<string, unknown>, userId: null }, this.flows());
    const email = results['m.login.email.identity'] as ValidatedThreepid | undefined;
    const password = body.password!;

    const passwordHash = await hashPassword(password);
    for (let attempt = 0; ; attempt++) {
      const userId = `@${localpart ?? generateLocalpart()}:${serverName}`;
      try {
        const session = await this.ctx.db.transaction().execute(async (trx) => {
          if (guest === undefined) await insertNewUser(trx, { userId, passwordHash, admin: false, now: this.ctx.now() });
          else {
            // Upgraded once: a second request with the same guest token finds no guest left.
            if (!(await upgradeGuest(trx, userId, passwordHash))) throw userInUse();
            // The guest's cached tokens say "guest": every node reads them again.
            await this.sessions.revokeIn(trx, [userId]);
          }
          if (email) await this.threepids.addIn(trx, userId, email);
          if (body.inhibit_login === true) return null;
          return this.sessions.openIn(trx, {
            userId,
            deviceId: body.device_id,
            displayName: body.initial_device_display_name,
            withRefresh: body.refresh_token === true,
            ip: req.ip,
          });
        });
        if (guest !== undefined) this.sessions.publishRevoked([userId]);
        if (!session) return { user_id: userId, home_server: serverName };
        await this.sessions.finishOpen(session);
        return sessionAnswer(serverName, session);
      } catch (e) {
        // A generated name that collided is simply drawn again.
        if (localpart === undefined && e instanceof MatrixError && e.errcode === 'M_USER_IN_USE' && attempt < 5) continue;
        throw e;
      }
    }
  }

  /**
   * POST /register?kind=guest: a password-less account whose access token
   * serves only what guests may call. Every parameter but the device's
   * display name is ignored and the server picks the device id
   * (registration.yaml).
   */
  private async registerGuest(body: RegisterBody, ip: string | undefined): Promise<Record<string, unknown>> {
    if (!this.ctx.config.guests.enabled) throw guestAccessForbidden('Guest access is disabled on this homeserver');
    const { serverName } = this.ctx;
    for (let attempt = 0; ; attempt++) {
      const userId = `@${generateLocalpart()}:${serverName}`;
      try {
        const session = await this.ctx.db.transaction().execute(async (trx) => {
          await insertNewUser(trx, { userId, passwordHash: null, admin: false, guest: true, now: this.ctx.now() });
          const displayName = typeof body.initial_device_display_name === 'string' ? body.initial_device_display_name : undefined;
          return this.sessions.openIn(trx, { userId, displayName, withRefresh: false, ip });
        });
        await this.sessions.finishOpen(session);
        return sessionAnswer(serverName, session);
      } catch (e) {
        if (e instanceof MatrixError && e.errcode === 'M_USER_IN_USE' && attempt < 5) continue;
        throw e;
      }
    }
  }

  /** The guest a `guest_access_token` belongs to; the username, required, must be the guest's localpart. */
  private async guestToUpgrade(body: RegisterBody): Promise<string> {
    const who = await this.sessions.authenticate(body.guest_access_token!);
    if (!who.isGuest) throw forbidden('guest_access_token does not belong to a guest account');
    if (body.username === undefined) throw missingParam('Upgrading a guest account needs its username');
    const localpart = who.userId.slice(1, who.userId.indexOf(':'));
    if (normaliseLocalpart(body.username) !== localpart) throw invalidUsername('username must be the localpart of the guest account');
    return who.userId;
  }

  /** GET /register/available */
  async available(username: string): Promise<{ available: true }> {
    this.ensureOpen();
    const localpart = normaliseLocalpart(username);
    checkRegistrationLocalpart(localpart, this.ctx.serverName);
    if (await getUser(this.ctx.db, `@${localpart}:${this.ctx.serverName}`)) throw userInUse();
    return { available: true };
  }

  /** GET /register/m.login.registration_token/validity */
  tokenValidity(token: string): { valid: boolean } {
    this.ensureOpen();
    return { valid: this.tokenIsValid(token) };
  }
}
